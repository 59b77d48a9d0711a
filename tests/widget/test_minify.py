"""The widget's light minification: comment lines and indentation go, while what sits in a
string, a template literal or a regular expression stays byte for byte."""

from __future__ import annotations

from bridge.widget.minify import minify_script


def test_comment_lines_and_indentation_go_and_code_stays() -> None:
    source = (
        "(() => {\n  // why\n    const a = 1; // kept: not a whole line\n  return a / 2;\n})();\n"
    )
    assert (
        minify_script(source)
        == "(() => {\nconst a = 1; // kept: not a whole line\nreturn a / 2;\n})();\n"
    )


def test_lines_inside_a_template_literal_are_kept_exactly() -> None:
    source = "const css = `\n  // not a comment\n  a{b:c}\n  ${ {x: 1}.x }\n  d`;\n  // gone\n"
    kept = "const css = `\n  // not a comment\n  a{b:c}\n  ${ {x: 1}.x }\n  d`;\n"
    assert minify_script(source) == kept


def test_quotes_and_slashes_in_regular_expressions_and_strings_do_not_confuse_it() -> None:
    source = "const r = /[`'/]/g;\nconst s = '`';\n  // gone\nconst t = `\n  kept`;\n"
    assert minify_script(source) == "const r = /[`'/]/g;\nconst s = '`';\nconst t = `\n  kept`;\n"


def test_a_script_it_cannot_follow_is_served_as_written() -> None:
    source = "const t = `never closed\n  // stays\n"
    assert minify_script(source) == source


def test_a_block_comments_lines_lose_only_their_indentation() -> None:
    source = "/*\n   * why\n   // still the comment */\nconst a = 1;\n"
    assert minify_script(source) == "/*\n* why\n// still the comment */\nconst a = 1;\n"
