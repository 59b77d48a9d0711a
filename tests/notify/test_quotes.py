"""The new words of a mailed reply: quotes and signatures cut, HTML read as text."""

from __future__ import annotations

import pytest

from bridge.notify.reply_text import html_to_text, new_words, unflow


def test_a_gmail_reply_loses_the_attribution_and_the_quote() -> None:
    text = (
        "Yes, the blue one please.\r\n"
        "\r\n"
        "On Tue, 1 Dec 2026 at 10:00, ACME <reply+abc@mail.shop.example> wrote:\r\n"
        "> Which colour would you like?\r\n"
        ">\r\n"
        "> ACME\r\n"
    )
    assert new_words(text) == "Yes, the blue one please."


def test_a_wrapped_attribution_is_cut_from_its_first_line() -> None:
    text = (
        "Thanks!\n\nOn Tue, 1 Dec 2026 at 10:00, ACME shop with a long name\n"
        "<reply+abc@mail.shop.example> wrote:\n\n> Which colour?\n"
    )
    assert new_words(text) == "Thanks!"


@pytest.mark.parametrize(
    "attribution",
    [
        "1 декабря 2026 г., в 10:00, ACME <shop@example.com> пишет:",
        "01.12.2026 10:00, ACME написал(а):",
        "пн, 1 дек. 2026 г. в 10:00, ACME <shop@example.com>:",
    ],
)
def test_russian_attributions_are_cut(attribution: str) -> None:
    text = f"Да, синий, пожалуйста.\n\n{attribution}\n> Какой цвет вы хотите?\n"
    assert new_words(text) == "Да, синий, пожалуйста."


def test_the_signature_goes_and_so_does_a_mobile_trailer() -> None:
    assert new_words("Two, please.\n-- \nAnna K.\n+49 170 000000\n") == "Two, please."
    assert new_words("Two, please.\n\nSent from my iPhone\n") == "Two, please."


def test_an_outlook_block_with_its_rule_is_cut() -> None:
    text = (
        "Please send it on Monday.\n\n"
        "________________________________\n"
        "From: ACME <reply+abc@mail.shop.example>\n"
        "Sent: Tuesday, December 1, 2026 10:00\n"
        "To: Anna K. <anna@example.com>\n"
        "Subject: Your question\n\n"
        "When should we send it?\n"
    )
    assert new_words(text) == "Please send it on Monday."
    assert new_words("Ok.\n-----Original Message-----\nFrom: ACME\nWhen?\n") == "Ok."


def test_interleaved_answers_keep_the_writer_s_lines() -> None:
    text = "> Colour?\nBlue.\n> Size?\nLarge.\n"
    assert new_words(text) == "Blue.\nLarge."


def test_a_buyer_s_own_words_that_end_in_wrote_stay() -> None:
    text = "My friend wrote:\nthe kettle leaks. Is that normal?"
    assert new_words(text) == text


def test_a_mail_of_only_a_quote_leaves_nothing() -> None:
    assert new_words("On Tue, 1 Dec 2026, ACME wrote:\n> Hello\n") == ""
    assert new_words("\n\n-- \nAnna\n") == ""


def test_html_becomes_text_without_scripts_and_with_quotes_marked() -> None:
    html = (
        "<html><head><style>p{color:red}</style><title>x</title></head><body>"
        "<p>Yes, <b>blue</b> &amp; large.</p><script>alert(1)</script>"
        "<div>On Tue, 1 Dec 2026, ACME wrote:</div>"
        "<blockquote><p>Which colour?</p></blockquote></body></html>"
    )
    text = html_to_text(html)
    assert "alert" not in text and "color" not in text
    assert new_words(text) == "Yes, blue & large."


def test_a_blockquote_alone_is_quoted_away() -> None:
    assert new_words(html_to_text("<p>Fine.</p><blockquote>old<br>mail</blockquote>")) == "Fine."


def test_flowed_text_is_joined() -> None:
    assert unflow("a long \nline\n-- \nsig", delsp=False) == "a long line\n-- \nsig"
    assert unflow("split wo \nrd", delsp=True) == "split word"
