"""Translation end to end: a real bridge and Synapse, deep-translator's LibreTranslate client
talking to a local server that speaks the LibreTranslate API, a seller's Matrix client and
a buyer's widget client. The original is kept on every side; a failing provider never
holds a message back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import pytest_asyncio

from bridge.app import Bridge
from bridge.config import TranslationConfig
from tests.conftest import SITE, TRANSLATION_PAUSE_OVER, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.libretranslate import FakeLibreTranslate
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

QUESTION_RU = "Здравствуйте, этот товар есть в наличии?"
QUESTION_PL = "Dzień dobry, czy ten produkt jest dostępny?"


@pytest_asyncio.fixture(loop_scope="session")
async def libre() -> AsyncIterator[FakeLibreTranslate]:
    server = FakeLibreTranslate()
    await server.start()
    yield server
    await server.close()


@dataclass
class Chat:
    """A translating bridge, a seller's member in Matrix and a buyer in the widget API,
    in one conversation."""

    bridge: Bridge
    owner: SellerClient
    buyer: BuyerClient
    conversation_id: str
    room_id: str

    async def ask(self, text: str, client_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The buyer writes; returns the stored message and its event in the seller's room."""
        sent: dict[str, Any] = await self.buyer.ok(
            "POST",
            f"/conversations/{self.conversation_id}/messages",
            {"text": text, "client_id": client_id},
        )
        event = await self.owner.wait_until(
            lambda: next(
                (
                    m
                    for m in self.owner.messages(self.room_id)
                    if m["content"].get("io.bazaar.message_id") == sent["message_id"]
                ),
                None,
            ),
            what=f"the buyer's message {client_id!r} in the seller's room",
        )
        return sent, event

    async def in_history(self, condition: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The latest message of the buyer's history that meets the condition."""

        async def found() -> dict[str, Any] | None:
            listed = await self.buyer.ok("GET", f"/conversations/{self.conversation_id}/messages")
            matching = [m for m in listed["messages"] if condition(m)]
            return matching[-1] if matching else None

        return await eventually(found, within=30, what="the message in the buyer's history")

    def notices(self) -> list[str]:
        return [
            m["content"]["body"]
            for m in self.owner.messages(self.room_id)
            if m["content"].get("msgtype") == "m.notice"
        ]


OpenChat = Callable[[str, str, str | None], Awaitable[Chat]]


@pytest_asyncio.fixture(loop_scope="session")
async def open_chat(
    runner: BridgeRunner,
    libre: FakeLibreTranslate,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> AsyncIterator[OpenChat]:
    """Start a bridge that translates through the local LibreTranslate; the seller writes
    English, the buyer whatever `lang` says (None: the token carries no language)."""
    runner.config = replace(
        runner.config,
        translation=TranslationConfig(provider="libre", url=libre.url, timeout_seconds=1),
    )
    bridge = await runner.start()
    buyers: list[BuyerClient] = []

    async def open_one(buyer_id: str, name: str, lang: str | None) -> Chat:
        owner = await new_seller("owner")
        buyer = BuyerClient(
            runner.config.web.public_url,
            buyer_token(sites.widget_secret, SITE, buyer_id, name=name, lang=lang),
        )
        buyers.append(buyer)
        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {
                "name": "ACME",
                "language": "en",
                "members": [{"user_id": owner.user_id, "role": "owner"}],
            },
        )
        started = await buyer.ok(
            "POST", "/conversations", {"seller_id": "acme", "context": product()}
        )
        conversation = await marketplace.ok("GET", f"/conversations/{started['conversation_id']}")
        await owner.accept_invite(conversation["room_id"])
        return Chat(bridge, owner, buyer, started["conversation_id"], conversation["room_id"])

    yield open_one
    for buyer in buyers:
        await buyer.close()
    libre.fail_with_status = None
    libre.delay = 0.0


async def test_buyer_and_seller_each_read_their_own_language(
    open_chat: OpenChat, libre: FakeLibreTranslate
) -> None:
    chat = await open_chat("ivan", "Иван", "ru")
    _, event = await chat.ask(QUESTION_RU, "q1")
    content = event["content"]
    expected = libre.expected(QUESTION_RU, "ru", "en")
    assert content["body"] == expected != QUESTION_RU
    assert content["io.bazaar.original"] == {"body": QUESTION_RU, "lang": "ru"}
    assert content["io.bazaar.translation"] == {"from": "ru", "to": "en", "provider": "libre"}
    assert f"<span data-mx-spoiler>{QUESTION_RU}</span>" in content["formatted_body"]

    # The buyer's own view keeps what they wrote; the API keeps both.
    stored = await chat.in_history(lambda m: m["original"] is not None)
    assert stored["original"] == {"text": QUESTION_RU, "lang": "ru"}
    assert stored["text"] == expected

    # The seller answers in English; the buyer reads Russian with the original kept.
    await chat.owner.send_text(chat.room_id, "Yes, two left.")
    reply = await chat.in_history(lambda m: m["sender"] == "seller")
    assert reply["text"] == libre.expected("Yes, two left.", "en", "ru")
    assert reply["original"] == {"text": "Yes, two left.", "lang": "en"}
    assert reply["translation"] == {
        "source": "en",
        "target": "ru",
        "provider": "libre",
        "failed": False,
    }

    # The same words again cost no second call: the translation comes from the store.
    calls = len(libre.calls)
    _, event = await chat.ask(QUESTION_RU, "q2")
    assert event["content"]["body"] == expected
    assert len(libre.calls) == calls
    assert chat.bridge.translations.cache_hits >= 1


async def test_a_failing_provider_never_holds_a_message_back(
    open_chat: OpenChat, libre: FakeLibreTranslate
) -> None:
    chat = await open_chat("olga", "Ольга", "ru")

    async def arrives_untranslated(client_id: str, text: str) -> None:
        _, event = await chat.ask(text, client_id)
        content = event["content"]
        assert content["body"] == text
        assert "io.bazaar.original" not in content
        assert content["io.bazaar.translation"]["failed"] is True
        assert "not translated" in content["formatted_body"]
        # Delivered (the seller has it), and the buyer's history says it went untranslated.
        stored = await chat.in_history(
            lambda m: m["text"] == text and m["status"] in ("sent", "read")
        )
        assert stored["translation"]["failed"] is True

    # The provider answers with an error: the message goes as written.
    libre.fail_with_status = 500
    calls = len(libre.calls)
    await arrives_untranslated("broken", "Почему заказ ещё не отправлен?")
    assert len(libre.calls) == calls + 1
    # While it is down, the next message doesn't even wait for it.
    await arrives_untranslated("still-broken", "Вы меня слышите?")
    assert len(libre.calls) == calls + 1

    # Later the provider answers too slowly: the message goes as written after the
    # timeout, and isn't lost.
    libre.fail_with_status = None
    libre.delay = 3.0
    await asyncio.sleep(TRANSLATION_PAUSE_OVER)
    await arrives_untranslated("slow", "Когда будет доставка?")
    assert len(libre.calls) == calls + 2

    # Once it is back, messages are translated again.
    libre.delay = 0.0
    await asyncio.sleep(TRANSLATION_PAUSE_OVER)
    _, event = await chat.ask(QUESTION_RU, "back")
    assert event["content"]["body"] == libre.expected(QUESTION_RU, "ru", "en")


async def test_a_buyer_without_a_language_is_recognised_and_answered_in_it(
    open_chat: OpenChat, libre: FakeLibreTranslate
) -> None:
    chat = await open_chat("marta", "Marta", None)
    sent, event = await chat.ask(QUESTION_PL, "pl1")
    assert sent["lang"] == "pl"
    assert event["content"]["io.bazaar.original"]["lang"] == "pl"
    await chat.owner.send_text(chat.room_id, "It ships tomorrow.")
    reply = await chat.in_history(lambda m: m["sender"] == "seller")
    assert reply["translation"]["target"] == "pl"
    assert reply["text"] == libre.expected("It ships tomorrow.", "en", "pl")


async def test_the_seller_asks_for_the_original_and_turns_translation_off(
    open_chat: OpenChat, libre: FakeLibreTranslate, marketplace: MarketplaceClient
) -> None:
    chat = await open_chat("pavel", "Павел", "ru")
    _, event = await chat.ask(QUESTION_RU, "q")

    # A reply to the buyer's message, with the fallback quote older clients add.
    await chat.owner.send(
        chat.room_id,
        {
            "msgtype": "m.text",
            "body": f"> <{event['sender']}> {event['content']['body']}\n\n!original",
            "m.relates_to": {"m.in_reply_to": {"event_id": event["event_id"]}},
        },
    )
    await chat.owner.wait_until(
        lambda: any(QUESTION_RU in n and "Original (ru)" in n for n in chat.notices()),
        what="the original in a notice",
    )

    await chat.owner.send_text(chat.room_id, "!translation off")
    await chat.owner.wait_until(
        lambda: any(n.startswith("Translation is off") for n in chat.notices()),
        what="translation switched off",
    )
    conversation = await marketplace.ok("GET", f"/conversations/{chat.conversation_id}")
    assert conversation["translation_enabled"] is False
    calls = len(libre.calls)
    await chat.owner.send_text(chat.room_id, "Sending it as is.")
    reply = await chat.in_history(lambda m: m["text"] == "Sending it as is.")
    assert (reply["original"], reply["translation"]) == (None, None)
    assert len(libre.calls) == calls
