"""A light minification of the widget's script for the wire: its `//` comment lines and
leading indentation go, nothing else changes, so the browser runs the file we wrote.

A line is touched only where it starts outside every string, template literal and regular
expression (inside a block comment only its indentation goes); a line inside a multi-line
template literal (the stylesheet) is kept byte for byte. When the scan can't follow the
file to a clean end, the file is served as it is.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

# After one of these (or at the start), a `/` begins a regular expression, not a division.
_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^")
_REGEX_KEYWORDS = ("return", "typeof", "case", "of", "in", "delete", "void", "throw")


class _Scanner:
    """Follows where each line of a script starts: in code, or inside a literal."""

    def __init__(self) -> None:
        self.quote: str | None = None  # ' " or ` while inside that literal
        self.block_comment = False
        # One entry per open template literal `${`: the depth of `{` inside it.
        self.templates: list[int] = []
        self.last_code = ""  # the last code character or word seen, for the regex rule

    @property
    def in_code(self) -> bool:
        return self.quote is None and not self.block_comment

    def line(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if self.block_comment:
                end = text.find("*/", i)
                if end < 0:
                    return
                self.block_comment, i = False, end + 2
            elif self.quote is not None:
                i = self._in_literal(text, i)
            elif c in "'\"`":
                self.quote, i = c, i + 1
            elif text.startswith("//", i):
                return
            elif text.startswith("/*", i):
                self.block_comment, i = True, i + 2
            elif c == "/" and self._regex_may_start():
                i = self._skip_regex(text, i)
                self.last_code = ")"
            else:
                i = self._code(text, i)

    def _in_literal(self, text: str, i: int) -> int:
        c = text[i]
        if c == "\\":
            return i + 2
        if c == self.quote:
            self.quote, self.last_code = None, ")"
            return i + 1
        if self.quote == "`" and text.startswith("${", i):
            self.quote = None
            self.templates.append(0)
            self.last_code = "{"
            return i + 2
        return i + 1

    def _code(self, text: str, i: int) -> int:
        c = text[i]
        if self.templates and c == "{":
            self.templates[-1] += 1
        elif self.templates and c == "}":
            if self.templates[-1] == 0:
                self.templates.pop()
                self.quote = "`"
                return i + 1
            self.templates[-1] -= 1
        if c.isalnum() or c in "_$":
            end = i
            while end < len(text) and (text[end].isalnum() or text[end] in "_$"):
                end += 1
            self.last_code = text[i:end]
            return end
        if not c.isspace():
            self.last_code = c
        return i + 1

    def _regex_may_start(self) -> bool:
        return (
            self.last_code == ""
            or self.last_code in _BEFORE_REGEX
            or self.last_code in _REGEX_KEYWORDS
        )

    def _skip_regex(self, text: str, i: int) -> int:
        i += 1
        in_class = False
        while i < len(text):
            c = text[i]
            if c == "\\":
                i += 2
                continue
            if c == "[":
                in_class = True
            elif c == "]":
                in_class = False
            elif c == "/" and not in_class:
                return i + 1
            i += 1
        raise ValueError("a regular expression runs past its line")


def minify_script(source: str) -> str:
    """The script without its `//` comment lines and leading indentation; the source
    itself when its literals can't be followed to a clean end."""
    scanner = _Scanner()
    kept: list[str] = []
    try:
        for line in source.splitlines(keepends=True):
            if scanner.in_code:
                bare = line.lstrip(" \t")
                if not bare.startswith("//"):
                    kept.append(bare)
            elif scanner.block_comment:
                # Its indentation is a comment's too; the line stays, it may end the comment.
                kept.append(line.lstrip(" \t"))
            else:
                kept.append(line)
            scanner.line(line.rstrip("\r\n"))
    except ValueError as error:
        logger.warning("widget script served unminified: %s", error)
        return source
    if not scanner.in_code or scanner.templates:
        logger.warning("widget script served unminified: a literal is left open at its end")
        return source
    return "".join(kept)
