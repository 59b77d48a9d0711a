"""The buyer's profile: what the marketplace may send, what a site shares of it in the rooms'
`io.bazaar.buyer` state, and the card the bot posts. No I/O."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer
from bridge.core.profile import (
    MAX_SUMMARY_BYTES,
    parse_phone,
    parse_summary,
    profile_card,
)
from bridge.errors import BadRequest, TooLarge
from bridge.matrix.content import BUYER_STATE, buyer_card_content, buyer_state

SUMMARY = {
    "orders_count": 7,
    "last_order": {
        "id": "1001",
        "date": "2026-11-30",
        "total": "42.00 EUR",
        "status": "shipped",
        "url": "https://shop.example/orders/1001",
    },
    "address": "Gedimino pr. 1, Vilnius",
    "zone": "LT-1",
}

ANNA = Buyer(
    site=SiteID("shop"),
    buyer_id=BuyerID("anna"),
    name="Anna <b>K</b>",
    email="anna@example.com",
    phone="+370 (600) 12-345",
    avatar_url="https://shop.example/a.png",
    profile_url="https://shop.example/buyers/anna",
    summary=SUMMARY,
)


def test_the_state_leaves_contacts_out_unless_the_site_shares_them() -> None:
    assert BUYER_STATE == "io.bazaar.buyer"
    private = buyer_state(ANNA, share_contact=False)
    assert private == {
        "buyer_id": "anna",
        "name": "Anna <b>K</b>",
        "profile_url": "https://shop.example/buyers/anna",
        "summary": SUMMARY,
    }
    shared = buyer_state(ANNA, share_contact=True)
    assert shared == {**private, "email": "anna@example.com", "phone": "+370 (600) 12-345"}


def test_a_buyer_with_nothing_but_a_name_shares_only_that() -> None:
    bare = Buyer(site=SiteID("shop"), buyer_id=BuyerID("bo"), name="Bo")
    assert buyer_state(bare, share_contact=True) == {"buyer_id": "bo", "name": "Bo"}
    assert profile_card(bare, share_contact=True) == "Buyer: Bo"


def test_the_card_names_the_summary_in_words_and_keeps_text_as_given() -> None:
    card = profile_card(ANNA, share_contact=False)
    assert card.splitlines() == [
        "Buyer: Anna <b>K</b>",
        "Profile: https://shop.example/buyers/anna",
        "Orders: 7",
        "Last order: #1001 · 2026-11-30 · 42.00 EUR · shipped · https://shop.example/orders/1001",
        "Address: Gedimino pr. 1, Vilnius",
        "Zone: LT-1",
    ]
    assert "anna@example.com" not in card and "600" not in card
    shared = profile_card(ANNA, share_contact=True)
    assert "E-mail: anna@example.com" in shared and "Phone: +370 (600) 12-345" in shared


def test_other_summary_keys_follow_on_one_line_each() -> None:
    buyer = Buyer(
        site=SiteID("shop"),
        buyer_id=BuyerID("bo"),
        name="Bo",
        summary={"vip": True, "notes": "line one\nline two", "tags": ["a", "b"], "gone": None},
    )
    assert profile_card(buyer, share_contact=False).splitlines()[1:] == [
        "vip: true",
        "notes: line one line two",
        "tags: a, b",
    ]


@pytest.mark.parametrize("phone", ["+370 600 12345", "(8) 600-12-345", "0"])
def test_phones_of_digits_spaces_plus_dash_and_parentheses_pass(phone: str) -> None:
    assert parse_phone(phone) == phone
    assert parse_phone(None) is None


@pytest.mark.parametrize("phone", ["call me", "+370<script>", "---", "1" * 41, 37060012345])
def test_other_phones_are_refused(phone: Any) -> None:
    with pytest.raises(BadRequest):
        parse_phone(phone)


def test_a_summary_is_an_object_of_at_most_16_kb() -> None:
    assert parse_summary(SUMMARY) == SUMMARY
    assert parse_summary(None) is None
    edge = {"x": "a" * (MAX_SUMMARY_BYTES - len('{"x":""}'))}
    assert parse_summary(edge) == edge
    with pytest.raises(TooLarge) as raised:
        parse_summary({"x": "a" * MAX_SUMMARY_BYTES})
    assert raised.value.errcode == "BAZAAR_SUMMARY_TOO_LARGE"
    # Counted in UTF-8 bytes: 9000 Cyrillic letters are 18 000 bytes.
    with pytest.raises(TooLarge):
        parse_summary({"x": "ж" * 9000})
    for bad in ([1, 2], "text", 3):
        with pytest.raises(BadRequest):
            parse_summary(bad)


def test_the_card_notice_is_plain_text_and_marked() -> None:
    card = profile_card(ANNA, share_contact=False)
    assert buyer_card_content(card) == {
        "msgtype": "m.notice",
        "body": card,
        "io.bazaar.card": "buyer",
    }
