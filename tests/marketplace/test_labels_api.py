"""The marketplace labels conversations and filters by label and assignee; a bad label is
refused by name and leaves the stored labels as they were."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.conftest import BridgeRunner
from tests.support.journeys import two_conversations
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_labels_are_set_filtered_and_bad_ones_store_nothing(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    first, second = await two_conversations(marketplace, owner)
    labels = f"/conversations/{first['conversation_id']}/labels"

    answer = await marketplace.ok("PUT", labels, {"labels": ["Zone-North", "vip", "vip"]})
    assert answer["conversation_id"] == first["conversation_id"]
    assert answer["labels"] == ["vip", "zone-north"]
    (update,) = await webhooks.wait_for("conversation.updated")
    assert update["conversation"]["labels"] == ["vip", "zone-north"]

    for bad in (
        {"labels": ["zone north"]},
        {"labels": ["ok", "x" * 33]},
        {"labels": [f"l{n}" for n in range(11)]},
        {"labels": "zone-north"},
        {"labels": [7]},
        {},
    ):
        status, error = await marketplace.call("PUT", labels, bad)
        assert (status, error["errcode"]) == (400, "BAZAAR_BAD_LABEL"), (bad, error)
        assert error["error"]
    stored = await marketplace.ok("GET", f"/conversations/{first['conversation_id']}")
    assert stored["labels"] == ["vip", "zone-north"]

    status, error = await marketplace.call("PUT", "/conversations/nope/labels", {"labels": []})
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_CONVERSATION")

    await marketplace.ok(
        "PUT", f"/conversations/{second['conversation_id']}/labels", {"labels": ["vip"]}
    )
    vip = await marketplace.ok("GET", "/conversations", params={"label": "VIP"})
    assert {c["conversation_id"] for c in vip["conversations"]} == {
        first["conversation_id"],
        second["conversation_id"],
    }
    north = await marketplace.ok("GET", "/conversations", params={"label": "zone-north"})
    assert [c["conversation_id"] for c in north["conversations"]] == [first["conversation_id"]]
    # A label is matched whole, never as part of a longer one.
    assert await marketplace.ok("GET", "/conversations", params={"label": "zone"}) == {
        "conversations": []
    }
    status, error = await marketplace.call("GET", "/conversations", params={"label": "a%"})
    assert (status, error["errcode"]) == (400, "BAZAAR_BAD_LABEL")

    # Taking every label off.
    answer = await marketplace.ok("PUT", labels, {"labels": []})
    assert answer["labels"] == []
    north = await marketplace.ok("GET", "/conversations", params={"label": "zone-north"})
    assert north == {"conversations": []}
    assert await marketplace.ok("GET", "/conversations", params={"assignee": owner.user_id}) == {
        "conversations": []
    }
