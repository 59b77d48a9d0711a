"""Buyers' replies by e-mail, through the bridge's own SMTP listener, and the one-click
unsubscribe: a real bridge and Synapse, aiosmtplib as the buyer's mail server."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from email.message import EmailMessage
from typing import Any

import aiohttp
import aiosmtplib
import pytest
import pytest_asyncio

from bridge.app import Bridge
from bridge.config.sections import EmailConfig, InboundConfig, SmtpConfig
from bridge.core.ids import BuyerID, ConversationID, SiteID
from bridge.demo.synapse import free_port
from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

DOMAIN = "mail.shop.example"
ANNA = "Anna.K@Example.com"
MAX_BYTES = 1024 * 1024


@dataclasses.dataclass
class Mailbox:
    """A running bridge with a conversation of Anna's, and her reply address in it."""

    bridge: Bridge
    owner: SellerClient
    anna: BuyerClient
    conversation_id: str
    room_id: str
    token: str
    port: int

    @property
    def address(self) -> str:
        return f"reply+{self.token}@{DOMAIN}"

    def room_texts(self) -> list[str]:
        return [
            m["content"]["body"]
            for m in self.owner.messages(self.room_id)
            if m["sender"].startswith("@bazaar_shop_")
        ]

    async def widget_texts(self) -> list[str]:
        listed = await self.anna.ok("GET", f"/conversations/{self.conversation_id}/messages")
        return [m["text"] for m in listed["messages"] if m["sender"] == "buyer"]

    async def send(
        self, mail: EmailMessage, *, sender: str = ANNA, to: str | None = None
    ) -> tuple[int, str]:
        """The mail as a mail server delivers it; the listener's final answer."""
        try:
            _, answer = await aiosmtplib.send(
                mail,
                sender=sender,
                recipients=[to or self.address],
                hostname="127.0.0.1",
                port=self.port,
                start_tls=False,
                use_tls=False,
                timeout=30,
            )
        except aiosmtplib.SMTPRecipientsRefused as refused:
            [error] = refused.recipients
            return error.code, error.message
        except aiosmtplib.SMTPResponseException as error:
            return error.code, error.message
        return 250, answer


def reply(text: str, *, sender: str = ANNA, message_id: str | None = None) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = f"Anna K. <{sender}>"
    mail["To"] = "ACME"
    mail["Subject"] = "Re: Electric kettle 1.7 l"
    if message_id:
        mail["Message-ID"] = message_id
    mail.set_content(text)
    return mail


QUOTED = (
    "Yes, the blue one please.\n"
    "\n"
    "On Tue, 1 Dec 2026 at 10:00, ACME <reply+x@mail.shop.example> wrote:\n"
    "> Which colour would you like?\n"
    "-- \n"
    "Anna K., Berlin\n"
)


@pytest_asyncio.fixture(loop_scope="session")
async def mailbox(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> AsyncIterator[Mailbox]:
    port = free_port()
    runner.config = dataclasses.replace(
        runner.config,
        email=EmailConfig(
            # Mail out is not under test: its relay is a port nobody listens on.
            smtp=SmtpConfig(host="127.0.0.1", port=free_port(), security="none"),
            from_address="chat@shop.example",
            inbound=InboundConfig(
                domain=DOMAIN, hostname="127.0.0.1", port=port, max_message_bytes=MAX_BYTES
            ),
        ),
    )
    bridge = await runner.start()
    owner = await new_seller("owner")
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/Anna_K", {"name": "Anna K.", "email": ANNA.lower()})
    conversation = await marketplace.ok(
        "POST",
        "/conversations",
        {"seller_id": "acme", "buyer_id": "Anna_K", "context": product()},
    )
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    # What mail out puts into the buyer's Reply-To.
    token = await bridge.repository.reply_token(
        SiteID(SITE), BuyerID("Anna_K"), ConversationID(conversation["conversation_id"])
    )
    anna = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "Anna_K", name="Anna K."),
    )
    try:
        yield Mailbox(bridge, owner, anna, conversation["conversation_id"], room_id, token, port)
    finally:
        await anna.close()


async def test_a_mailed_reply_reaches_the_seller_without_its_quote_and_signature(
    mailbox: Mailbox,
) -> None:
    assert mailbox.token.isalnum() and mailbox.token == mailbox.token.lower()
    code, answer = await mailbox.send(reply(QUOTED, message_id="<r1@example.com>"))
    assert code == 250, answer

    await mailbox.owner.wait_until(
        lambda: "Yes, the blue one please." in mailbox.room_texts(), what="the mailed reply"
    )
    assert not any("Which colour" in text or "Berlin" in text for text in mailbox.room_texts())
    assert await mailbox.widget_texts() == ["Yes, the blue one please."]


async def test_russian_quoting_is_stripped(mailbox: Mailbox) -> None:
    text = (
        "Да, синий, пожалуйста.\n\n"
        "1 декабря 2026 г., в 10:00, ACME <reply+x@mail.shop.example> пишет:\n"
        "> Какой цвет вы хотите?\n"
    )
    code, answer = await mailbox.send(reply(text))
    assert code == 250, answer
    await mailbox.owner.wait_until(
        lambda: "Да, синий, пожалуйста." in mailbox.room_texts(), what="the Russian reply"
    )
    assert await mailbox.widget_texts() == ["Да, синий, пожалуйста."]


async def test_the_same_mail_delivered_twice_is_one_message(mailbox: Mailbox) -> None:
    mail = reply("Is it in stock?", message_id="<twice@example.com>")
    assert (await mailbox.send(mail))[0] == 250
    code, answer = await mailbox.send(mail)
    assert code == 250, answer
    assert "already" in answer
    # A later mail shows the first two have been handled in order.
    assert (await mailbox.send(reply("And in red?")))[0] == 250
    await mailbox.owner.wait_until(
        lambda: "And in red?" in mailbox.room_texts(), what="the later reply"
    )
    assert await mailbox.widget_texts() == ["Is it in stock?", "And in red?"]
    assert mailbox.room_texts().count("Is it in stock?") == 1


async def test_a_forged_sender_is_refused_and_nothing_is_stored(mailbox: Mailbox) -> None:
    # The envelope sender is someone else's: refused at RCPT TO.
    code, message = await mailbox.send(reply("Send it to me"), sender="mallory@evil.example")
    assert (code, message.split()[0]) == (550, "5.7.1")
    # The envelope is right but the From header is someone else's: refused after DATA.
    assert "another sender" in message
    code, message = await mailbox.send(reply("Send it to me", sender="mallory@evil.example"))
    assert (code, message.split()[0]) == (550, "5.7.1")
    assert "From header" in message
    assert await mailbox.widget_texts() == []


async def test_a_blocked_conversation_takes_no_mailed_reply(
    mailbox: Mailbox, marketplace: MarketplaceClient
) -> None:
    await marketplace.ok("POST", f"/conversations/{mailbox.conversation_id}/block", {})
    code, message = await mailbox.send(reply("Why?"))
    assert (code, message) == (550, "5.7.1 This conversation is blocked")
    assert await mailbox.widget_texts() == []


async def test_the_listener_stops_with_the_bridge(mailbox: Mailbox, runner: BridgeRunner) -> None:
    assert (await mailbox.send(reply("Before the stop")))[0] == 250
    await runner.stop(mailbox.bridge)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await mailbox.send(reply("After the stop"))


async def test_unknown_addresses_are_refused(mailbox: Mailbox) -> None:
    for to in (f"reply+{'z' * 32}@{DOMAIN}", f"someone@{DOMAIN}", f"{mailbox.token}@{DOMAIN}"):
        code, message = await mailbox.send(reply("Hello?"), to=to)
        assert (code, message.split()[0]) == (550, "5.1.1"), to
    assert await mailbox.widget_texts() == []


async def test_an_oversize_mail_is_refused(mailbox: Mailbox) -> None:
    mail = reply("Here is everything.")
    mail.add_attachment(b"\0" * MAX_BYTES, maintype="application", subtype="octet-stream")
    code, message = await mailbox.send(mail)
    assert (code, message.split()[0]) == (552, "5.3.4")
    assert await mailbox.widget_texts() == []


async def test_a_reply_of_only_a_quote_is_refused(mailbox: Mailbox) -> None:
    code, message = await mailbox.send(reply("On Tue, ACME wrote:\n> Which colour?\n"))
    assert (code, message.split()[0]) == (550, "5.6.0")
    assert await mailbox.widget_texts() == []


async def test_an_attachment_that_is_really_html_refuses_the_mail(mailbox: Mailbox) -> None:
    mail = reply("Here is the photo")
    mail.add_attachment(
        files.html_named_png(), maintype="image", subtype="png", filename="photo.png"
    )
    code, message = await mailbox.send(mail)
    assert (code, message.split()[0]) == (550, "5.7.1")
    assert "photo.png" in message
    assert await mailbox.widget_texts() == []


async def test_a_real_picture_comes_with_the_reply(mailbox: Mailbox) -> None:
    mail = reply("The scratch is here")
    mail.add_attachment(files.png(), maintype="image", subtype="png", filename="scratch.png")
    code, answer = await mailbox.send(mail)
    assert code == 250, answer
    event = await mailbox.owner.wait_until(
        lambda: next(
            (
                m
                for m in mailbox.owner.messages(mailbox.room_id)
                if m["content"].get("msgtype") == "m.image"
            ),
            None,
        ),
        what="the mailed picture as m.image",
    )
    assert event["content"]["body"] == "The scratch is here"
    listed = await mailbox.anna.ok("GET", f"/conversations/{mailbox.conversation_id}/messages")
    [message] = listed["messages"]
    assert [a["content_type"] for a in message["attachments"]] == ["image/png"]


async def _page(mailbox: Mailbox, method: str, token: str, **kwargs: Any) -> tuple[int, str]:
    url = f"{mailbox.bridge.config.web.public_url}/mail/v1/unsubscribe/{token}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, **kwargs) as response,
    ):
        return response.status, await response.text()


async def test_one_click_unsubscribe(mailbox: Mailbox) -> None:
    store = mailbox.bridge.repository
    site, anna = SiteID(SITE), BuyerID("Anna_K")
    status, page = await _page(mailbox, "GET", mailbox.token)
    assert status == 200
    assert '<form method="post">' in page and "Unsubscribe" in page
    assert not await store.is_unsubscribed(site, anna)

    status, text = await _page(
        mailbox, "POST", mailbox.token, data={"List-Unsubscribe": "One-Click"}
    )
    assert (status, text.startswith("You are unsubscribed")) == (200, True)
    assert await store.is_unsubscribed(site, anna)
    # A repeat is harmless.
    assert (await _page(mailbox, "POST", mailbox.token))[0] == 200

    # Writing stays the buyer's choice: a reply after unsubscribing is still posted.
    assert (await mailbox.send(reply("One more question")))[0] == 250
    await eventually(
        lambda: _has(mailbox, "One more question"), what="the reply after unsubscribing"
    )

    for method in ("GET", "POST"):
        status, body = await _page(mailbox, method, "z" * 32)
        assert status == 404
        assert '"errcode": "BAZAAR_UNKNOWN_TOKEN"' in body


async def _has(mailbox: Mailbox, text: str) -> bool:
    return text in await mailbox.widget_texts()
