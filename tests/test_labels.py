"""The seller's desk in a real room: labels as Space sections, notes the buyer never sees,
hand-over with a mention, and reports that reach the marketplace."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import nio
import pytest

from bridge.core.ids import SellerID, SiteID
from bridge.core.models import ConversationState
from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.journeys import anna_in, joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]


async def state_events(owner: SellerClient, room_id: str) -> list[dict[str, Any]]:
    response = await owner.client.room_get_state(room_id)
    assert isinstance(response, nio.RoomGetStateResponse), response
    return list(response.events)


async def children(owner: SellerClient, space_id: str) -> set[str]:
    return {
        event["state_key"]
        for event in await state_events(owner, space_id)
        if event["type"] == "m.space.child" and event["content"].get("via")
    }


def notices(owner: SellerClient, room_id: str) -> list[dict[str, Any]]:
    return [
        m["content"] for m in owner.messages(room_id) if m["content"].get("msgtype") == "m.notice"
    ]


async def said(owner: SellerClient, room_id: str, text: str, answer: Callable[[str], bool]) -> None:
    """The owner says `text`; waits for the bot's notice that `answer` accepts."""
    await owner.send_text(room_id, text)
    await owner.wait_until(
        lambda: any(answer(n["body"]) for n in notices(owner, room_id)), what=f"answer to {text}"
    )


async def test_a_label_puts_the_room_into_its_space_section_and_unlabel_takes_it_out(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    space = await bridge.repository.seller_space(SiteID(SITE), SellerID("acme"))
    assert space is not None
    await owner.wait_until(lambda: space.space_id in owner.invites, what="the Space's invite")
    await owner.accept_invite(space.space_id)
    before = await children(owner, space.space_id)

    await said(owner, room_id, "!label Zone-North", lambda n: n.startswith("Labelled zone-north"))

    async def section_made() -> bool:
        return len(await children(owner, space.space_id) - before) == 1

    await owner.wait_until_async(section_made, what="a new section in the Space")
    (section,) = await children(owner, space.space_id) - before
    await owner.wait_until(lambda: section in owner.invites, what="the section's invite")
    await owner.accept_invite(section)
    assert (await owner.state(section, "m.room.create")).get("type") == "m.space"
    assert (await owner.state(section, "m.room.name"))["name"] == "zone-north · ACME · Test Shop"

    async def in_section() -> bool:
        return await children(owner, section) == {room_id}

    await owner.wait_until_async(in_section, what="the room in section zone-north")
    # Still in the section of its state as well.
    active = space.sections[ConversationState.ACTIVE]
    await owner.wait_until(lambda: active in owner.invites, what="the section's invite")
    await owner.accept_invite(active)
    assert room_id in await children(owner, active)

    async def labelled_north() -> bool:
        state = await owner.state(room_id, "io.bazaar.conversation")
        return bool(state["labels"] == ["zone-north"])

    await owner.wait_until_async(labelled_north, what="the label in the room's state")

    listed = await marketplace.ok("GET", "/conversations", params={"label": "zone-north"})
    assert [c["conversation_id"] for c in listed["conversations"]] == [conversation_id]
    assert await marketplace.ok("GET", "/conversations", params={"label": "zone-south"}) == {
        "conversations": []
    }
    (update,) = await webhooks.wait_for("conversation.updated")
    assert update["conversation"]["labels"] == ["zone-north"]

    # The marketplace replaces the labels: the room joins a second section.
    answer = await marketplace.ok(
        "PUT", f"/conversations/{conversation_id}/labels", {"labels": ["zone-north", "vip"]}
    )
    assert answer["labels"] == ["vip", "zone-north"]

    async def labelled_twice() -> bool:
        state = await owner.state(room_id, "io.bazaar.conversation")
        return bool(state["labels"] == ["vip", "zone-north"])

    await owner.wait_until_async(labelled_twice, what="both labels in the room's state")

    await said(owner, room_id, "!unlabel zone-north", lambda n: n.startswith("Took off"))

    async def out_of_section() -> bool:
        return await children(owner, section) == set()

    await owner.wait_until_async(out_of_section, what="the room out of section zone-north")
    child = await owner.state(section, "m.space.child", room_id)
    assert child == {}
    # The empty section stays in the Space, ready for the next room with that label.
    assert section in await children(owner, space.space_id)

    async def labelled_vip() -> bool:
        state = await owner.state(room_id, "io.bazaar.conversation")
        return bool(state["labels"] == ["vip"])

    await owner.wait_until_async(labelled_vip, what="the label gone from the room's state")
    assert (await marketplace.ok("GET", f"/conversations/{conversation_id}"))["labels"] == ["vip"]

    await said(owner, room_id, "!label zone north", lambda n: "is not a label" in n)
    assert (await marketplace.ok("GET", f"/conversations/{conversation_id}"))["labels"] == ["vip"]


async def test_notes_assign_and_report_stay_with_the_seller_and_the_marketplace(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    anna = await anna_in(runner, sites)
    try:
        await said(owner, room_id, "!note Call before delivery", lambda n: n.startswith("📝 Note"))
        (note,) = [n for n in notices(owner, room_id) if n["body"].startswith("📝")]
        assert note["body"].endswith(": Call before delivery")
        # An answer that did reach the buyer, so the note had every chance to.
        await owner.send_text(room_id, "Hello Anna")
        widget = await anna.ok("GET", f"/conversations/{conversation_id}/messages")

        async def reply_arrived() -> bool:
            nonlocal widget
            widget = await anna.ok("GET", f"/conversations/{conversation_id}/messages")
            return any(m["text"] == "Hello Anna" for m in widget["messages"])

        await owner.wait_until_async(reply_arrived, what="the reply in the widget")
        texts = [m["text"] for m in widget["messages"]]
        assert not any("delivery" in text for text in texts), texts
        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        assert not any("delivery" in m["text"] for m in listed["messages"])

        await said(
            owner, room_id, "!assign me", lambda n: n.endswith("answers this conversation now.")
        )
        (mention,) = [n for n in notices(owner, room_id) if "answers this" in n["body"]]
        assert mention["m.mentions"] == {"user_ids": [owner.user_id]}
        assert f'href="https://matrix.to/#/{owner.user_id}"' in mention["formatted_body"]

        async def assigned_in_room() -> bool:
            state = await owner.state(room_id, "io.bazaar.conversation")
            return bool(state["assignee"] == owner.user_id)

        await owner.wait_until_async(assigned_in_room, what="the assignee in the room's state")
        mine = await marketplace.ok("GET", "/conversations", params={"assignee": owner.user_id})
        assert [c["conversation_id"] for c in mine["conversations"]] == [conversation_id]
        assert mine["conversations"][0]["assignee"] == owner.user_id
        nobody = await marketplace.ok("GET", "/conversations", params={"assignee": "@x:localhost"})
        assert nobody == {"conversations": []}
        await said(owner, room_id, "!assign @stranger:localhost", lambda n: "does not answer" in n)
        assert (await marketplace.ok("GET", f"/conversations/{conversation_id}"))[
            "assignee"
        ] == owner.user_id

        await said(owner, room_id, "!report Asks to pay by card", lambda n: "!report confirm" in n)
        assert webhooks.of_type("buyer.reported") == []
        await said(owner, room_id, "!report confirm", lambda n: n.startswith("Reported"))
        (report,) = await webhooks.wait_for("buyer.reported")
        assert report["conversation_id"] == conversation_id
        assert report["report"]["reason"] == "Asks to pay by card"
        assert report["report"]["reported_by"] == owner.user_id
        assert report["report"]["buyer_id"] == "Anna_K"
        assert report["report"]["seller_id"] == "acme"
    finally:
        await anna.close()
