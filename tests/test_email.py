"""Mail out, on the real Synapse and a real SMTP relay (aiosmtpd on loopback): the owner's
mail for a new conversation, copies of buyer messages, the feedback mail, the buyer's
digest of unread replies (not while a stream is open), a relay that is down or refuses a
recipient, and header injection through names and titles."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio

from bridge.app import Bridge
from bridge.config.sections import EmailConfig, InboundConfig, SmtpConfig
from bridge.core.ids import BuyerID, SiteID
from bridge.demo.synapse import free_port
from bridge.notify.sender import MailRetry
from tests.conftest import FAST, SITE, BridgeRunner, Sites, product
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.mailbox import Mailbox, Received
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
OWNER_MAIL = "owner@acme.example"
FROM = "bridge@shop.example"
LATER = timedelta(minutes=2)  # past `buyer_delay_minutes: 1`


@pytest_asyncio.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    relay = Mailbox(refuse=["nobody@acme.example"])
    yield relay
    relay.stop()


def with_email(runner: BridgeRunner, relay: Mailbox) -> None:
    """Mail through `relay`; the digest is swept by the test (`Bridge.digest.sweep`)."""
    runner.config = replace(
        runner.config,
        email=EmailConfig(
            smtp=SmtpConfig(**relay.smtp_config()),
            from_address=FROM,
            buyer_delay_minutes=1,
            inbound=InboundConfig(
                domain="reply.shop.example", hostname="127.0.0.1", port=free_port()
            ),
        ),
    )
    runner.tuning = replace(
        FAST, mail_retry=MailRetry(first=0.2, longest=1.0), digest_every_seconds=3600
    )


async def seller_with_room(
    marketplace: MarketplaceClient,
    owner: SellerClient,
    manager: SellerClient | None = None,
    *,
    seller_id: str = "acme",
    name: str = "ACME",
    email: str = OWNER_MAIL,
    buyer_id: str = "anna",
    buyer: dict[str, str] | None = None,
    title: str = "Electric kettle 1.7 l",
) -> dict[str, str]:
    members = [{"user_id": owner.user_id, "role": "owner"}]
    if manager is not None:
        members.append({"user_id": manager.user_id, "role": "manager"})
    await marketplace.ok(
        "PUT",
        f"/sellers/{seller_id}",
        {"name": name, "language": "en", "email": email, "email_copies": True, "members": members},
    )
    await marketplace.ok(
        "PUT",
        f"/buyers/{buyer_id}",
        buyer or {"name": "Anna", "language": "en", "email": "anna@example.org"},
    )
    conversation = await marketplace.ok(
        "POST",
        "/conversations",
        {"seller_id": seller_id, "buyer_id": buyer_id, "context": product(title=title)},
    )
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    return dict(conversation)


async def mailed_buyer(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
    buyer_id: str,
    name: str,
    language: str,
    address: str,
) -> tuple[Bridge, SellerClient, BuyerClient, str, str]:
    """A bridge that mails through `mailbox`, a seller's owner in the room of a conversation
    with a buyer who has an address, and that buyer's widget client."""
    mailbox.start()
    with_email(runner, mailbox)
    bridge = await runner.start()
    assert bridge.digest is not None
    owner = await new_seller("owner")
    conversation = await seller_with_room(
        marketplace,
        owner,
        buyer_id=buyer_id,
        buyer={"name": name, "language": language, "email": address},
    )
    client = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, buyer_id, name=name, lang=language),
    )
    return bridge, owner, client, conversation["room_id"], conversation["conversation_id"]


async def mails_to(relay: Mailbox, address: str, count: int) -> list[Received]:
    async def arrived() -> list[Received]:
        found = relay.to(address)
        return found if len(found) >= count else []

    return await eventually(arrived, what=f"{count} mail(s) to {address}")


def header_names(mail: Received) -> list[str]:
    block = mail.raw.split(b"\r\n\r\n", 1)[0].decode()
    return [line.split(":", 1)[0] for line in block.split("\r\n") if line and not line[0].isspace()]


async def test_the_owner_hears_of_a_conversation_and_gets_copies_and_feedback(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
) -> None:
    mailbox.start()
    with_email(runner, mailbox)
    await runner.start()
    owner, manager = await new_seller("owner"), await new_seller("manager")
    conversation = await seller_with_room(
        marketplace,
        owner,
        manager,
        name="ACME\r\nBcc: evil@attacker.example",
        title="Kettle\r\nX-Injected: yes",
    )
    [opened] = await mails_to(mailbox, OWNER_MAIL, 1)
    assert opened.recipients == (OWNER_MAIL,) and opened.mail_from == FROM
    assert opened.message["Subject"] == "New conversation from Anna: Kettle X-Injected: yes"
    assert opened.message["From"].addresses[0].display_name == "Test Shop"
    names = header_names(opened)
    assert "Bcc" not in names and "X-Injected" not in names
    assert "https://shop.example/p/kettle-1" in opened.body()

    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    path = f"/conversations/{conversation['conversation_id']}/messages"
    try:
        await anna.ok("POST", path, {"text": "Is it <b>in stock</b>?", "client_id": "q-1"})
        await anna.ok("POST", path, {"text": "And the colour?", "client_id": "q-2"})
        # A repeat of the same client id is the same message: no second copy.
        await anna.ok("POST", path, {"text": "And the colour?", "client_id": "q-2"})
        copies = (await mails_to(mailbox, OWNER_MAIL, 3))[1:]
        assert [c.message["Subject"] for c in copies] == [
            "Anna wrote about Kettle X-Injected: yes"
        ] * 2
        assert "Is it <b>in stock</b>?" in copies[0].body()
        assert "&lt;b&gt;in stock&lt;/b&gt;" in copies[0].body("html")
        assert "And the colour?" in copies[1].body()

        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {
                "name": "ACME",
                "email": OWNER_MAIL,
                "chat_enabled": False,
                "members": [{"user_id": owner.user_id, "role": "owner"}],
            },
        )
        await anna.ok("POST", "/sellers/acme/feedback", {"text": "Call me", "contact": "+370 6"})
        feedback = (await mails_to(mailbox, OWNER_MAIL, 4))[3]
        assert feedback.message["Subject"] == "Feedback from Anna (chat is off)"
        assert "Call me" in feedback.body() and "+370 6" in feedback.body()
    finally:
        await anna.close()
    # Everything went to the owner's address, once each: none to the manager.
    assert [m.recipients for m in mailbox.received] == [(OWNER_MAIL,)] * 4


async def seller_reply(
    owner: SellerClient, room_id: str, anna: BuyerClient, path: str, text: str
) -> str:
    await owner.send_text(room_id, text)

    async def seen() -> str:
        listed = (await anna.ok("GET", path))["messages"]
        return next((str(m["message_id"]) for m in listed if m["text"] == text), "")

    return await eventually(seen, what=f"the reply {text!r} in the widget")


async def test_the_buyer_gets_a_digest_of_unread_replies_only_with_no_stream_open(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
) -> None:
    ivan_mail = "ivan@example.org"
    bridge, owner, ivan, room_id, conversation_id = await mailed_buyer(
        runner, sites, marketplace, new_seller, mailbox, "ivan", "Иван", "ru", ivan_mail
    )
    path = f"/conversations/{conversation_id}/messages"
    try:
        await seller_reply(owner, room_id, ivan, path, "Yes, in stock <today>")
        stream = await ivan.stream()
        await eventually(
            lambda: _now(bridge.feed.has_stream(SiteID(SITE), BuyerID("ivan"))),
            what="the stream open",
        )
        assert await bridge.digest.sweep(datetime.now(UTC) + LATER) == 0
        await stream.close()
        await eventually(
            lambda: _now(not bridge.feed.has_stream(SiteID(SITE), BuyerID("ivan"))),
            what="the stream closed",
        )
        # Too early: the reply is younger than `buyer_delay_minutes`.
        assert await bridge.digest.sweep(datetime.now(UTC)) == 0
        assert await bridge.digest.sweep(datetime.now(UTC) + LATER) == 1
        [digest] = await mails_to(mailbox, ivan_mail, 1)
        assert digest.message["Subject"] == "ACME ответил(а): Electric kettle 1.7 l"
        assert digest.message["From"].addresses[0].display_name == "Test Shop"
        token = digest.message["Reply-To"].addresses[0].username.removeprefix("reply+")
        assert digest.message["Reply-To"].addresses[0].domain == "reply.shop.example"
        assert digest.message["List-Unsubscribe"] == (
            f"<{runner.config.web.public_url}/mail/v1/unsubscribe/{token}>"
        )
        assert digest.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        text = digest.body()
        assert "Yes, in stock <today>" in text and "Открыть чат" in text
        assert "https://shop.example/p/kettle-1" in text
        assert "Yes, in stock &lt;today&gt;" in digest.body("html")
        # Once per batch: nothing new, nothing more.
        assert await bridge.digest.sweep(datetime.now(UTC) + LATER) == 0

        # A reply the buyer reads is not mailed.
        read_id = await seller_reply(owner, room_id, ivan, path, "Shipping is free")
        await ivan.ok("POST", f"/conversations/{conversation_id}/read", {"up_to": read_id})
        assert await bridge.digest.sweep(datetime.now(UTC) + LATER) == 0
        assert len(mailbox.to(ivan_mail)) == 1
    finally:
        await ivan.close()


async def test_mail_waits_for_a_relay_that_is_down_and_the_chat_goes_on(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
) -> None:
    with_email(runner, mailbox)  # not started: nothing listens on its port
    await runner.start()
    owner = await new_seller("owner")
    conversation = await seller_with_room(marketplace, owner)
    anna = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "anna"))
    room_id = conversation["room_id"]
    try:
        await anna.ok(
            "POST",
            f"/conversations/{conversation['conversation_id']}/messages",
            {"text": "Hello while mail is down", "client_id": "q-1"},
        )
        await owner.wait_until(
            lambda: any(
                m["content"].get("body") == "Hello while mail is down"
                for m in owner.messages(room_id)
            ),
            what="the buyer's message in the room",
        )
        assert mailbox.received == []
        mailbox.start()
        mails = await mails_to(mailbox, OWNER_MAIL, 2)
        assert [m.message["Subject"] for m in mails] == [
            "New conversation from Anna: Electric kettle 1.7 l",
            "Anna wrote about Electric kettle 1.7 l",
        ]
    finally:
        await anna.close()


async def test_mail_queued_while_the_relay_is_down_survives_a_restart(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
) -> None:
    with_email(runner, mailbox)
    bridge = await runner.start()
    owner = await new_seller("owner")
    await seller_with_room(marketplace, owner)
    await runner.stop(bridge)
    mailbox.start()
    await runner.start()
    [mail] = await mails_to(mailbox, OWNER_MAIL, 1)
    assert mail.message["Subject"] == "New conversation from Anna: Electric kettle 1.7 l"


async def test_a_refused_recipient_fails_alone_and_is_logged(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="bridge.notify.sender")
    mailbox.start()
    with_email(runner, mailbox)
    await runner.start()
    owner = await new_seller("owner")
    await seller_with_room(marketplace, owner, seller_id="gone", email="nobody@acme.example")
    await seller_with_room(marketplace, owner, seller_id="acme", buyer_id="boris")
    [mail] = await mails_to(mailbox, OWNER_MAIL, 1)
    assert mail.message["Subject"] == "New conversation from Anna: Electric kettle 1.7 l"
    await eventually(
        lambda: _now("nobody@acme.example" in caplog.text and "550" in caplog.text),
        what="the refusal logged",
    )
    assert mailbox.to("nobody@acme.example") == []


async def test_no_email_section_no_mail(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge: Bridge = await runner.start()
    assert bridge.mail_sender is None and bridge.digest is None
    owner = await new_seller("owner")
    await seller_with_room(marketplace, owner)
    assert await bridge.repository.due_mails(datetime.now(UTC) + LATER, 10) == []


async def _now(value: bool) -> bool:
    return value


async def test_the_digest_links_the_sellers_pictures_for_that_buyer_only(
    runner: BridgeRunner,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
    mailbox: Mailbox,
) -> None:
    olga_mail = "olga@example.org"
    bridge, owner, olga, room_id, conversation_id = await mailed_buyer(
        runner, sites, marketplace, new_seller, mailbox, "olga", "Olga", "en", olga_mail
    )
    picture = files.png(40, 30)
    try:
        await owner.send(
            room_id,
            {
                "msgtype": "m.image",
                "body": "back.png",
                "url": await owner.upload(picture, "image/png", "back.png"),
                "info": {"mimetype": "image/png", "size": len(picture), "w": 40, "h": 30},
            },
        )

        async def listed() -> list[dict[str, str]]:
            found = await olga.ok("GET", f"/conversations/{conversation_id}/messages")
            return [a for m in found["messages"] for a in m["attachments"]]

        [attachment] = await eventually(listed, what="the seller's picture in the widget")
        assert await bridge.digest.sweep(datetime.now(UTC) + LATER) == 1
        [digest] = await mails_to(mailbox, olga_mail, 1)
        token = digest.message["List-Unsubscribe"].split("/unsubscribe/")[1].rstrip(">")
        link = f"{runner.config.web.public_url}/mail/v1/files/{token}/{attachment['attachment_id']}"
        assert f"back.png: {link}" in digest.body()
        assert f'href="{link}"' in digest.body("html")

        # The link gives the picture as the buyer's widget does, to no other token.
        _, _, widget_bytes = await olga.fetch(conversation_id, attachment["attachment_id"])
        async with marketplace.session.get(link) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "image/png"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert await response.read() == widget_bytes
        other = await marketplace.ok(
            "POST",
            "/conversations",
            {"seller_id": "acme", "buyer_id": "olga", "context": product("mug-3")},
        )
        other_token = await bridge.repository.reply_token(
            SiteID(SITE), BuyerID("olga"), other["conversation_id"]
        )
        for wrong in (other_token, "x" * 32, "not-a-token"):
            async with marketplace.session.get(
                link.replace(f"/{token}/", f"/{wrong}/")
            ) as response:
                assert response.status == 404
                assert (await response.json())["errcode"] == "BAZAAR_UNKNOWN_ATTACHMENT"
    finally:
        await olga.close()
