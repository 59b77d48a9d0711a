"""Vendor ↔ marketplace rooms, and a broadcast from the admins' room reaching each seller once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest

from bridge.core.ids import SellerID, SiteID
from tests.conftest import SITE, BridgeRunner
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def test_a_broadcast_reaches_every_seller_once(
    runner: BridgeRunner, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    admin = await new_seller("admin")
    runner.config = replace(
        runner.config,
        sites=tuple(
            replace(site, admins=(admin.user_id,)) if site.id == SITE else site
            for site in runner.config.sites
        ),
    )
    bridge = await runner.start()
    acme, globex = await new_seller("acme"), await new_seller("globex")
    for seller_id, owner in (("acme", acme), ("globex", globex)):
        await marketplace.ok(
            "PUT",
            f"/sellers/{seller_id}",
            {"name": seller_id.upper(), "members": [{"user_id": owner.user_id, "role": "owner"}]},
        )

    # The admins are invited to the control room and to each seller's marketplace room, in
    # whatever order the homeserver delivers them: wait for the control room's.
    async def control_room_invite() -> str | None:
        control = await bridge.repository.site_room(SiteID(SITE), "admins")
        await admin.sync_once(timeout_ms=200)
        return control if control is not None and control in admin.invites else None

    control = await eventually(control_room_invite, what="the admins' control room invite")
    await admin.accept_invite(control)
    await admin.send_text(control, "!broadcast New fees from Monday.")
    await admin.wait_until(
        lambda: any(
            m["content"].get("body") == "Sent to 2 sellers." for m in admin.messages(control)
        ),
        what="the broadcast's receipt",
    )

    for seller_id, owner in (("acme", acme), ("globex", globex)):
        space = await bridge.repository.seller_space(SiteID(SITE), SellerID(seller_id))
        assert space is not None and space.marketplace_id is not None
        room_id = space.marketplace_id
        await owner.wait_until(
            lambda r=room_id, o=owner: r in o.invites, what="the marketplace room"
        )
        await owner.accept_invite(room_id)
        await owner.wait_until(
            lambda r=room_id, o=owner: [
                m for m in o.messages(r) if "New fees" in m["content"]["body"]
            ],
            what="the broadcast",
        )
        await owner.sync_once()
        news = [m for m in owner.messages(room_id) if "New fees" in m["content"]["body"]]
        assert [m["content"]["body"] for m in news] == ["📣 Test Shop: New fees from Monday."]
        # The site's admin shares the room and can answer there.
        member = await owner.state(room_id, "m.room.member", admin.user_id)
        assert member["membership"] in ("invite", "join")
