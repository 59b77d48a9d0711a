"""Translation end to end: a real bridge and Synapse, deep-translator's LibreTranslate client
talking to a local server that speaks the LibreTranslate API, a seller's Matrix client and
a buyer's widget client. The original is kept on every side; a failing provider never
holds a message back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio

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


def translating(runner: BridgeRunner, libre: FakeLibreTranslate) -> BridgeRunner:
    runner.config = replace(
        runner.config,
        translation=TranslationConfig(provider="libre", url=libre.url, timeout_seconds=1),
    )
    return runner


async def seller_and_room(
    marketplace: MarketplaceClient, owner: SellerClient, buyer: BuyerClient
) -> tuple[str, str]:
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {
            "name": "ACME",
            "language": "en",
            "members": [{"user_id": owner.user_id, "role": "owner"}],
        },
    )
    started = await buyer.ok("POST", "/conversations", {"seller_id": "acme", "context": product()})
    conversation_id = started["conversation_id"]
    conversation = await marketplace.ok("GET", f"/conversations/{conversation_id}")
    await owner.accept_invite(conversation["room_id"])
    return conversation_id, conversation["room_id"]


def ghost_message(owner: SellerClient, room_id: str, message_id: str) -> Any:
    return next(
        (
            m
            for m in owner.messages(room_id)
            if m["content"].get("io.bazaar.message_id") == message_id
        ),
        None,
    )


async def buyer_message(
    buyer: BuyerClient, conversation_id: str, condition: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        listed = await buyer.ok("GET", f"/conversations/{conversation_id}/messages")
        matching = [m for m in listed["messages"] if condition(m)]
        return matching[-1] if matching else None

    return await eventually(found, within=30, what="the message in the buyer's history")


async def test_buyer_and_seller_each_read_their_own_language(
    runner: BridgeRunner,
    libre: FakeLibreTranslate,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    bridge = await translating(runner, libre).start()
    owner = await new_seller("owner")
    buyer = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "ivan", name="Иван", lang="ru"),
    )
    try:
        conversation_id, room_id = await seller_and_room(marketplace, owner, buyer)
        sent = await buyer.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": QUESTION_RU, "client_id": "q1"},
        )
        event = await owner.wait_until(
            lambda: ghost_message(owner, room_id, sent["message_id"]), what="the question"
        )
        content = event["content"]
        expected = libre.expected(QUESTION_RU, "ru", "en")
        assert content["body"] == expected != QUESTION_RU
        assert content["io.bazaar.original"] == {"body": QUESTION_RU, "lang": "ru"}
        assert content["io.bazaar.translation"] == {"from": "ru", "to": "en", "provider": "libre"}
        assert f"<span data-mx-spoiler>{QUESTION_RU}</span>" in content["formatted_body"]

        # The buyer's own view keeps what they wrote; the API keeps both.
        stored = await buyer_message(buyer, conversation_id, lambda m: m["original"] is not None)
        assert stored["original"] == {"text": QUESTION_RU, "lang": "ru"}
        assert stored["text"] == expected

        # The seller answers in English; the buyer reads Russian with the original kept.
        await owner.send_text(room_id, "Yes, two left.")
        reply = await buyer_message(buyer, conversation_id, lambda m: m["sender"] == "seller")
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
        again = await buyer.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": QUESTION_RU, "client_id": "q2"},
        )
        event = await owner.wait_until(
            lambda: ghost_message(owner, room_id, again["message_id"]), what="the repeat"
        )
        assert event["content"]["body"] == expected
        assert len(libre.calls) == calls
        assert bridge.translations.cache_hits >= 1
    finally:
        await buyer.close()


async def test_a_failing_provider_never_holds_a_message_back(
    runner: BridgeRunner,
    libre: FakeLibreTranslate,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await translating(runner, libre).start()
    owner = await new_seller("owner")
    buyer = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "olga", name="Ольга", lang="ru"),
    )

    async def arrives_untranslated(client_id: str, text: str) -> None:
        sent = await buyer.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": text, "client_id": client_id},
        )
        event = await owner.wait_until(
            lambda: ghost_message(owner, room_id, sent["message_id"]),
            within=20,
            what=f"the message {client_id!r} the provider failed on",
        )
        content = event["content"]
        assert content["body"] == text
        assert "io.bazaar.original" not in content
        assert content["io.bazaar.translation"]["failed"] is True
        assert "not translated" in content["formatted_body"]
        stored = await buyer_message(buyer, conversation_id, lambda m: m["text"] == text)
        assert stored["translation"]["failed"] is True
        assert stored["status"] in ("sent", "read")

    try:
        conversation_id, room_id = await seller_and_room(marketplace, owner, buyer)
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
        sent = await buyer.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": QUESTION_RU, "client_id": "back"},
        )
        event = await owner.wait_until(
            lambda: ghost_message(owner, room_id, sent["message_id"]), what="a translated one"
        )
        assert event["content"]["body"] == libre.expected(QUESTION_RU, "ru", "en")
    finally:
        libre.fail_with_status = None
        libre.delay = 0.0
        await buyer.close()


async def test_a_buyer_without_a_language_is_recognised_and_answered_in_it(
    runner: BridgeRunner,
    libre: FakeLibreTranslate,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await translating(runner, libre).start()
    owner = await new_seller("owner")
    buyer = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "marta", name="Marta", lang=None),
    )
    try:
        conversation_id, room_id = await seller_and_room(marketplace, owner, buyer)
        sent = await buyer.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": QUESTION_PL, "client_id": "pl1"},
        )
        assert sent["lang"] == "pl"
        event = await owner.wait_until(
            lambda: ghost_message(owner, room_id, sent["message_id"]), what="the question"
        )
        assert event["content"]["io.bazaar.original"]["lang"] == "pl"
        await owner.send_text(room_id, "It ships tomorrow.")
        reply = await buyer_message(buyer, conversation_id, lambda m: m["sender"] == "seller")
        assert reply["translation"]["target"] == "pl"
        assert reply["text"] == libre.expected("It ships tomorrow.", "en", "pl")
    finally:
        await buyer.close()


async def test_the_seller_asks_for_the_original_and_turns_translation_off(
    runner: BridgeRunner,
    libre: FakeLibreTranslate,
    sites: Sites,
    marketplace: MarketplaceClient,
    new_seller: NewSeller,
) -> None:
    await translating(runner, libre).start()
    owner = await new_seller("owner")
    buyer = BuyerClient(
        runner.config.web.public_url,
        buyer_token(sites.widget_secret, SITE, "pavel", name="Павел", lang="ru"),
    )
    try:
        conversation_id, room_id = await seller_and_room(marketplace, owner, buyer)
        sent = await buyer.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": QUESTION_RU, "client_id": "q"},
        )
        event = await owner.wait_until(
            lambda: ghost_message(owner, room_id, sent["message_id"]), what="the question"
        )

        def notices() -> list[str]:
            return [
                m["content"]["body"]
                for m in owner.messages(room_id)
                if m["content"].get("msgtype") == "m.notice"
            ]

        # A reply to the buyer's message, with the fallback quote older clients add.
        await owner.send(
            room_id,
            {
                "msgtype": "m.text",
                "body": f"> <{event['sender']}> {event['content']['body']}\n\n!original",
                "m.relates_to": {"m.in_reply_to": {"event_id": event["event_id"]}},
            },
        )
        await owner.wait_until(
            lambda: any(QUESTION_RU in n and "Original (ru)" in n for n in notices()),
            what="the original in a notice",
        )

        await owner.send_text(room_id, "!translation off")
        await owner.wait_until(
            lambda: any(n.startswith("Translation is off") for n in notices()),
            what="translation switched off",
        )
        conversation = await marketplace.ok("GET", f"/conversations/{conversation_id}")
        assert conversation["translation_enabled"] is False
        calls = len(libre.calls)
        await owner.send_text(room_id, "Sending it as is.")
        reply = await buyer_message(
            buyer, conversation_id, lambda m: m["text"] == "Sending it as is."
        )
        assert (reply["original"], reply["translation"]) == (None, None)
        assert len(libre.calls) == calls
    finally:
        await buyer.close()
