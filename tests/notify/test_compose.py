"""Composed mails, without I/O: headers safe from injected line breaks, HTML escaped, the
recipient's language, and the digest's Reply-To and one-click unsubscribe."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_string
from email.message import EmailMessage
from email.policy import default

from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, SiteID
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    Buyer,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Feedback,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
    Site,
)
from bridge.notify.compose import MailComposer

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SITE = Site(site_id=SiteID("shop"), name="Test Shop", language="en", has_webhook=False)
SELLER = Seller(SiteID("shop"), SellerID("acme"), "ACME", "en", email="owner@acme.example")
BUYER = Buyer(SiteID("shop"), BuyerID("anna"), "Anna", "en", email="anna@example.org")


def conversation(
    title: str = "Kettle", url: str | None = "https://shop.example/p/1"
) -> Conversation:
    return Conversation(
        site=SiteID("shop"),
        conversation_id=ConversationID("c1"),
        seller_id=SellerID("acme"),
        buyer_id=BuyerID("anna"),
        context=Context(ContextType.PRODUCT, "p1", title, url=url),
        state=ConversationState.ACTIVE,
        room_id=None,
        created_at=NOW,
    )


def reply(text: str, files: int = 0) -> Message:
    return Message(
        message_id=MessageID("m1"),
        conversation_id=ConversationID("c1"),
        sender=SenderKind.SELLER,
        sender_name="Jo",
        text=text,
        lang="en",
        status=MessageStatus.SENT,
        created_at=NOW,
        attachments=tuple(
            Attachment(f"a{n}", AttachmentKind.IMAGE, "p.png", "image/png", 10)
            for n in range(files)
        ),
    )


def parsed(raw: str) -> EmailMessage:
    mail = message_from_string(raw, policy=default)
    assert isinstance(mail, EmailMessage)
    return mail


def body(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body(preferencelist=(subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content


COMPOSER = MailComposer("bridge@shop.example", "https://bridge.example/", "reply.example")


def test_line_breaks_in_names_and_titles_add_no_header() -> None:
    seller = Seller(SiteID("shop"), SellerID("acme"), "ACME\r\nBcc: evil@x.example", "en")
    hostile = conversation("Kettle\r\nX-Injected: yes\nBcc: evil@x.example")
    site = Site(SiteID("shop"), "Shop\r\nX-Site: 1", "en", False)
    raw = COMPOSER.new_conversation(site, seller, BUYER, hostile, "owner@acme.example")
    header_block = raw.split("\r\n\r\n", 1)[0]
    names = [line.split(":", 1)[0] for line in header_block.split("\r\n") if not line[0].isspace()]
    assert "Bcc" not in names and "X-Injected" not in names and "X-Site" not in names
    mail = parsed(raw)
    assert "X-Injected: yes" in str(mail["Subject"])
    assert mail["To"] == "owner@acme.example"
    assert mail["From"].addresses[0].addr_spec == "bridge@shop.example"
    assert mail["Message-ID"] and mail["Date"]


def test_html_part_escapes_what_buyers_and_sellers_wrote() -> None:
    raw = COMPOSER.message_copy(
        SITE,
        SELLER,
        BUYER,
        conversation('<b onmouseover="x">'),
        reply("<script>alert(1)</script>"),
        "owner@acme.example",
    )
    html = body(parsed(raw), "html")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b onmouseover" not in html
    assert "<script>alert(1)</script>" in body(parsed(raw), "plain")


def test_the_digest_speaks_russian_to_a_russian_buyer_with_reply_to_and_unsubscribe() -> None:
    buyer = Buyer(SiteID("shop"), BuyerID("ivan"), "Иван", "ru", email="ivan@example.org")
    raw = COMPOSER.buyer_digest(
        SITE,
        SELLER,
        buyer,
        conversation(),
        [reply("Есть в наличии", files=2)],
        "tok123",
        "ivan@example.org",
    )
    mail = parsed(raw)
    assert raw.isascii()
    assert mail["Subject"] == "ACME ответил(а): Kettle"
    assert mail["Reply-To"] == "reply+tok123@reply.example"
    assert mail["List-Unsubscribe"] == "<https://bridge.example/mail/v1/unsubscribe/tok123>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = body(mail, "plain")
    assert "Есть в наличии" in text
    # Each picture as a link the mail's token opens, in the text and in the HTML.
    links = [f"https://bridge.example/mail/v1/files/tok123/a{n}" for n in range(2)]
    assert all(f"p.png: {link}" in text for link in links)
    assert all(f'<a href="{link}">p.png</a>' in body(mail, "html") for link in links)
    assert "https://shop.example/p/1" in text


def test_no_inbound_no_reply_to_and_english_by_default() -> None:
    composer = MailComposer("bridge@shop.example", "https://bridge.example")
    buyer = Buyer(SiteID("shop"), BuyerID("x"), "X", None, email="x@example.org")
    mail = parsed(
        composer.buyer_digest(
            SITE, SELLER, buyer, conversation(url=None), [reply("Hi")], "t", "x@example.org"
        )
    )
    assert mail["Reply-To"] is None
    assert mail["Subject"] == "ACME replied: Kettle"
    assert mail["List-Unsubscribe"] == "<https://bridge.example/mail/v1/unsubscribe/t>"


def test_feedback_mail_names_the_contact() -> None:
    feedback = Feedback("f1", SiteID("shop"), SellerID("acme"), "Deliver to Kaunas?", "+370 6", NOW)
    mail = parsed(COMPOSER.feedback(SITE, SELLER, BUYER, feedback, "owner@acme.example"))
    assert mail["Subject"] == "Feedback from Anna (chat is off)"
    assert "Contact: +370 6" in body(mail, "plain")
