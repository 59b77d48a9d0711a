"""Reading a mailed reply, I/O-free: hostile mail ends as a refusal, never a crash."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from bridge.notify.inbound_mail import MAX_DEPTH, MAX_FILES, UnreadableMail, read_reply


def mail(text: str | None = "Hello", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Anna <Anna@Example.com>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    if text is not None:
        message.set_content(text)
    return message


def test_the_sender_is_the_address_only_lower_cased() -> None:
    reply = read_reply(mail().as_bytes())
    assert reply.from_address == "anna@example.com"
    assert reply.text == "Hello"
    assert not reply.automatic


def test_two_from_addresses_name_no_sender() -> None:
    raw = mail(From="anna@example.com, mallory@evil.example").as_bytes()
    assert read_reply(raw).from_address is None


def test_the_client_id_follows_the_message_id() -> None:
    first = read_reply(mail("one", Message_ID="<a@b>").as_bytes())
    again = read_reply(mail("one", Message_ID="<a@b>").as_bytes())
    other = read_reply(mail("one", Message_ID="<c@d>").as_bytes())
    assert first.client_id == again.client_id != other.client_id
    assert first.client_id.startswith("mail:") and len(first.client_id) == 5 + 32


def test_html_only_mail_is_read_as_text() -> None:
    message = mail(None)
    message.set_content("<p>Blue, <i>please</i></p><blockquote>Which?</blockquote>", subtype="html")
    assert read_reply(message.as_bytes()).text == "Blue, please"


def test_plain_text_wins_over_html_and_embedded_pictures_are_no_files() -> None:
    message = mail("Plain words")
    message.add_alternative("<p>HTML words</p>", subtype="html")
    html = message.get_payload()[1]
    html.add_related(b"\x89PNG logo", maintype="image", subtype="png", cid="<logo@x>")
    reply = read_reply(message.as_bytes())
    assert reply.text == "Plain words"
    assert reply.files == ()


def test_an_unknown_charset_is_read_with_replacement_marks() -> None:
    raw = (
        b"From: anna@example.com\r\nContent-Type: text/plain; charset=x-klingon\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nHello \xff there\r\n"
    )
    assert read_reply(raw).text == "Hello \ufffd there"


def test_deep_nesting_is_refused() -> None:
    boundary = "b{}"
    raw = b"From: anna@example.com\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for depth in range(MAX_DEPTH + 2):
        raw += (
            f"--{boundary.format(depth)}\r\n"
            f"Content-Type: multipart/mixed; boundary={boundary.format(depth + 1)}\r\n\r\n"
        ).encode()
    with pytest.raises(UnreadableMail, match="nested"):
        read_reply(raw)


def test_too_many_files_are_refused() -> None:
    message = mail("Photos")
    for number in range(MAX_FILES + 1):
        message.add_attachment(b"x", maintype="image", subtype="png", filename=f"{number}.png")
    with pytest.raises(UnreadableMail, match="attachments"):
        read_reply(message.as_bytes())


def test_injected_headers_stay_one_header() -> None:
    raw = b"From: anna@example.com\r\nSubject: hi\r\n\tBcc: x@y\r\n\r\nHello\r\n"
    reply = read_reply(raw)
    assert reply.text == "Hello" and reply.from_address == "anna@example.com"


@pytest.mark.parametrize(
    "header", [{"Auto_Submitted": "auto-replied"}, {"Precedence": "bulk"}, {"X_Autoreply": "yes"}]
)
def test_automatic_answers_are_known(header: dict[str, str]) -> None:
    assert read_reply(mail("I am away", **header).as_bytes()).automatic


def test_garbage_is_read_without_a_crash() -> None:
    for raw in (
        b"",
        b"\x00\xff" * 100,
        b"From: <<<@@@>>>\r\n\r\n",
        b"Content-Type: multipart/x\r\n",
    ):
        try:
            reply = read_reply(raw)
        except UnreadableMail:
            continue
        assert reply.from_address is None
