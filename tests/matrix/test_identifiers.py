"""Ghost ids: any buyer id maps into the Matrix user-id grammar and back."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bridge.core.ids import BuyerID, SiteID
from bridge.matrix.identifiers import (
    MatrixNames,
    escape_localpart,
    unescape_localpart,
)

LOCALPART = re.compile(r"^[a-z0-9._=/-]+$")
names = MatrixNames("example.org", "bazaar_", "bazaarbot")


def test_known_escapes() -> None:
    assert escape_localpart("anna") == "anna"
    assert escape_localpart("Anna_K") == "_anna___k"
    assert escape_localpart("id 7/é") == "id=207=2f=c3=a9"
    assert names.ghost(SiteID("shop"), BuyerID("Anna_K")) == "@bazaar_shop__anna___k:example.org"


@given(st.text(min_size=1, max_size=80))
def test_any_buyer_id_round_trips_through_a_valid_localpart(buyer_id: str) -> None:
    escaped = escape_localpart(buyer_id)
    assert LOCALPART.match(escaped)
    assert unescape_localpart(escaped) == buyer_id
    ghost = names.ghost(SiteID("shop-2"), BuyerID(buyer_id))
    assert names.parse_ghost(ghost) == ("shop-2", buyer_id)


def test_foreign_ids_are_not_ghosts() -> None:
    assert names.parse_ghost("@alice:example.org") is None
    assert names.parse_ghost("@bazaar_shop_anna:other.org") is None
    assert names.parse_ghost("@bazaar_shopanna:example.org") is None
    assert names.parse_ghost("@bazaar_shop_Anna:example.org") is None
    assert names.is_ours("@bazaarbot:example.org")
    assert not names.is_ours("@bazaarbot:other.org")


def test_a_ghost_id_over_matrix_s_255_bytes_is_named_too_long() -> None:
    # "@bazaar_shop_" and ":example.org" leave 230 bytes for the escaped buyer id.
    shop = SiteID("shop")
    for fits, over in [("a" * 230, "a" * 231), ("A" * 115, "A" * 116), ("é" * 38, "é" * 39)]:
        assert len(names.ghost(shop, BuyerID(fits)).encode()) <= 255
        assert names.ghost_too_long(shop, BuyerID(fits)) is None
        assert len(names.ghost(shop, BuyerID(over)).encode()) > 255
        problem = names.ghost_too_long(shop, BuyerID(over))
        assert problem is not None and "255 bytes" in problem


@given(st.text(min_size=1, max_size=200))
def test_every_id_said_to_fit_makes_a_ghost_within_the_limit(buyer_id: str) -> None:
    ghost = names.ghost(SiteID("shop"), BuyerID(buyer_id))
    fits = names.ghost_too_long(SiteID("shop"), BuyerID(buyer_id)) is None
    assert fits == (len(ghost.encode()) <= 255)
