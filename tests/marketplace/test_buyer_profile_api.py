"""The buyer's profile through the marketplace API: a good one is stored and answered back,
a bad one is refused with a named error and the stored buyer stays as it was."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.core.ids import BuyerID, SiteID
from bridge.core.views import buyer_json
from tests.conftest import SITE, BridgeRunner
from tests.support.marketplace import MarketplaceClient

pytestmark = pytest.mark.synapse

GOOD = {
    "name": "Anna K.",
    "email": "anna@example.com",
    "phone": "+370 (600) 12-345",
    "avatar_url": "https://shop.example/avatars/anna.png",
    "profile_url": "https://shop.example/buyers/anna",
    "summary": {
        "orders_count": 3,
        "last_order": {"id": "1001", "date": "2026-11-30", "total": "42.00", "status": "paid"},
        "address": "Vilnius",
    },
}


@pytest.mark.parametrize(
    ("change", "status", "errcode"),
    [
        ({"summary": {"notes": "x" * 17_000}}, 413, "BAZAAR_SUMMARY_TOO_LARGE"),
        ({"summary": ["not", "an", "object"]}, 400, "M_INVALID_PARAM"),
        ({"phone": "call me maybe"}, 400, "M_INVALID_PARAM"),
        ({"phone": "1" * 41}, 413, "M_TOO_LARGE"),
        ({"avatar_url": "javascript:alert(1)"}, 400, "M_INVALID_PARAM"),
        ({"profile_url": "ftp://shop.example/anna"}, 400, "M_INVALID_PARAM"),
    ],
)
async def test_a_bad_profile_is_refused_and_the_buyer_stays_as_it_was(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    change: dict[str, Any],
    status: int,
    errcode: str,
) -> None:
    bridge = await runner.start()
    stored = await marketplace.ok("PUT", "/buyers/anna", GOOD)
    assert {key: stored[key] for key in GOOD} == GOOD

    answer_status, error = await marketplace.call(
        "PUT", "/buyers/anna", {**GOOD, "name": "Renamed", "phone": "+1 555", **change}
    )

    assert (answer_status, error["errcode"]) == (status, errcode), error
    assert error["error"]
    # Read from the database itself, past the buyer cache.
    bridge.repository._buyers.clear()
    buyer = await bridge.repository.get_buyer(SiteID(SITE), BuyerID("anna"))
    assert buyer is not None and buyer_json(buyer) == stored
