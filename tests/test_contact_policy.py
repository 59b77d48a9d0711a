"""The contact policy: phone numbers, e-mail addresses, messenger handles and payment
details before an order are masked for the other side (`mask`) or let through (`warn`),
both sides are told once, and the marketplace gets `message.flagged` with the words as
written. After an order, nothing is checked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from bridge.core.contact_policy import ContactKind, find_contacts, masked
from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.journeys import anna_in, joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

NewSeller = Callable[[str], Awaitable[SellerClient]]


@pytest.mark.parametrize(
    ("text", "kinds", "shown"),
    [
        ("Call me: +7 777 123 45 67", ["phone"], "Call me: [phone hidden]"),
        ("or 8 (777) 123-45-67 after six", ["phone"], "or [phone hidden] after six"),
        ("anna.k+shop@example.org", ["email"], "[email hidden]"),
        ("tg @anna_kettle, t.me/annak", ["messenger", "messenger"], None),
        ("write me on WhatsApp", ["messenger"], "write me on [messenger hidden]"),
        ("card 4111 1111 1111 1111", ["card"], "card [card hidden]"),
        ("IBAN DE89 3704 0044 0532 0130 00", ["iban"], "IBAN [iban hidden]"),
        # Not contacts: an order number, a price, a date, a card number failing Luhn.
        ("order 12345678, 24.90 EUR, 2026-12-01", [], None),
        ("4111 1111 1111 1112", [], None),
        ("DE89 3704 0044 0532 0130 02", [], None),
    ],
)
def test_what_counts_as_a_contact(text: str, kinds: list[str], shown: str | None) -> None:
    found = find_contacts(text, "KZ")
    assert [item.kind.value for item in found] == kinds
    if shown is not None:
        assert masked(text, found) == shown


def test_national_numbers_need_the_sites_region() -> None:
    assert find_contacts("8 (777) 123-45-67", None) == []
    assert [f.kind for f in find_contacts("8 (777) 123-45-67", "KZ")] == [ContactKind.PHONE]


def with_policy(runner: BridgeRunner, policy: str) -> None:
    runner.config = replace(
        runner.config,
        sites=tuple(
            replace(site, contact_policy=policy, phone_region="KZ") if site.id == SITE else site
            for site in runner.config.sites
        ),
    )


def notices(owner: SellerClient, room_id: str) -> list[str]:
    return [
        m["content"]["body"]
        for m in owner.messages(room_id)
        if m["content"].get("msgtype") == "m.notice" and "holds contact" in m["content"]["body"]
    ]


@pytest.mark.synapse
async def test_masked_both_ways_before_an_order_and_not_after(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
) -> None:
    with_policy(runner, "mask")
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    anna = await anna_in(runner, sites)
    try:
        await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": "Cheaper direct? +7 777 123 45 67", "client_id": "c-1"},
        )
        await owner.wait_until(
            lambda: any(
                m["content"].get("body") == "Cheaper direct? [phone hidden]"
                for m in owner.messages(room_id)
            ),
            what="the buyer's message, masked",
        )
        assert not any("777" in m["content"].get("body", "") for m in owner.messages(room_id))
        await owner.wait_until(lambda: notices(owner, room_id), what="the room's notice")
        assert notices(owner, room_id) == [
            "The buyer's message above holds contact or payment details (phone): hidden from "
            "the other side. Before an order, keep the deal on the marketplace; the "
            "marketplace was told."
        ]

        await owner.send_text(room_id, "Pay to DE89 3704 0044 0532 0130 00 or mail me a@b.org")
        await owner.wait_until(lambda: len(notices(owner, room_id)) == 2, what="the second notice")
        assert "(iban, email)" in notices(owner, room_id)[1]
        listed = (await anna.ok("GET", f"/conversations/{conversation_id}/messages"))["messages"]
        texts = [(m["sender"], m["text"]) for m in listed]
        assert ("seller", "Pay to [iban hidden] or mail me [email hidden]") in texts
        assert not any("DE89" in text or "a@b.org" in text for _, text in texts)
        system = [text for sender, text in texts if sender == "system"]
        assert len(system) == 2 and "keep contacts and payments" in system[0]

        flagged = [e["flagged"] for e in await webhooks.wait_for("message.flagged", 2)]
        assert [(f["side"], f["kinds"], f["text"]) for f in flagged] == [
            ("buyer", ["phone"], "Cheaper direct? +7 777 123 45 67"),
            ("seller", ["iban", "email"], "Pay to DE89 3704 0044 0532 0130 00 or mail me a@b.org"),
        ]

        # Once there is an order, contacts are the buyer's and the seller's business.
        await marketplace.ok(
            "PUT",
            f"/conversations/{conversation_id}/orders/A-1",
            {"status": "placed", "total": "24.90", "currency": "EUR"},
        )
        await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": "Courier can call +7 777 123 45 67", "client_id": "c-2"},
        )
        await owner.wait_until(
            lambda: any(
                m["content"].get("body") == "Courier can call +7 777 123 45 67"
                for m in owner.messages(room_id)
            ),
            what="the buyer's message as written",
        )
        await owner.sync_once()
        assert len(notices(owner, room_id)) == 2
        assert len(webhooks.of_type("message.flagged")) == 2
    finally:
        await anna.close()


@pytest.mark.synapse
async def test_warn_lets_the_words_through_and_tells_both(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
) -> None:
    with_policy(runner, "warn")
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    anna = await anna_in(runner, sites)
    try:
        text = "my telegram is @anna_kettle"
        await anna.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            {"text": text, "client_id": "w-1"},
        )
        await owner.wait_until(lambda: notices(owner, room_id), what="the room's notice")
        assert any(m["content"].get("body") == text for m in owner.messages(room_id))
        assert "(messenger): sent as written" in notices(owner, room_id)[0]
        (event,) = await webhooks.wait_for("message.flagged")
        assert (event["flagged"]["policy"], event["flagged"]["shown"]) == ("warn", text)
        listed = (await anna.ok("GET", f"/conversations/{conversation_id}/messages"))["messages"]
        assert [m["sender"] for m in listed] == ["buyer", "system"]
    finally:
        await anna.close()
