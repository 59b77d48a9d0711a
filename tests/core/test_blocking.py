"""Blocking: one side's block shuts the pair's rooms, tells the sellers when the buyer did
it, and lifting it leaves the other side's block standing."""

from __future__ import annotations

from bridge.core.blocking import Blocking
from bridge.core.ids import BuyerID, SellerID
from bridge.core.models import ConversationState, Side
from bridge.core.ports import HomeserverUnavailable
from tests.core.fakes import SITE, World, conversation, world

ACME, ANNA = SellerID("acme"), BuyerID("anna")


def blocking_world() -> tuple[World, Blocking]:
    w = world()
    w.store.seed_conversation(conversation(1))
    w.store.seed_conversation(conversation(2))
    w.store.seed_conversation(conversation(3, buyer_id="boris"))
    return w, Blocking(w.store, w.homeserver, w.courier, w.announcer)


async def test_a_buyers_block_shuts_all_the_pairs_rooms_and_tells_the_sellers() -> None:
    w, blocking = blocking_world()
    outcome = await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    await w.settled()

    assert (outcome.changed, outcome.blocked_by) == (True, frozenset({Side.BUYER}))
    for number in (1, 2):
        room = w.homeserver.room(conversation(number).room_id)
        assert room.notices == ["The buyer has blocked this conversation: messages can't be sent."]
        assert (room.blocked_by, room.state) == ({Side.BUYER}, ConversationState.BLOCKED)
    # Boris's conversation with the same seller is untouched.
    other = w.homeserver.room(conversation(3).room_id)
    assert (other.notices, other.state) == ([], None)


async def test_a_repeated_block_changes_nothing_and_tells_nobody() -> None:
    w, blocking = blocking_world()
    await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    again = await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    await w.settled()
    assert (again.changed, again.blocked_by) == (False, frozenset({Side.BUYER}))
    assert len(w.homeserver.room(conversation(1).room_id).notices) == 1


async def test_the_buyer_lifting_their_block_leaves_the_sellers_standing() -> None:
    w, blocking = blocking_world()
    await blocking.set(SITE, ACME, ANNA, Side.SELLER, True)
    await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    lifted = await blocking.set(SITE, ACME, ANNA, Side.BUYER, False)
    await w.settled()

    assert (lifted.changed, lifted.blocked_by) == (True, frozenset({Side.SELLER}))
    room = w.homeserver.room(conversation(1).room_id)
    assert room.notices[-1] == (
        "The buyer has lifted their block; yours still stands. "
        "Say !unblock to let them write again."
    )
    assert room.state == ConversationState.BLOCKED


async def test_a_buyer_cannot_lift_the_sellers_block() -> None:
    w, blocking = blocking_world()
    await blocking.set(SITE, ACME, ANNA, Side.SELLER, True)
    outcome = await blocking.set(SITE, ACME, ANNA, Side.BUYER, False)
    assert (outcome.changed, outcome.blocked_by) == (False, frozenset({Side.SELLER}))
    assert w.store.conversations[conversation(1).conversation_id].blocked_by == {Side.SELLER}


async def test_the_sellers_own_block_is_not_announced_to_them() -> None:
    w, blocking = blocking_world()
    await blocking.set(SITE, ACME, ANNA, Side.SELLER, True)
    await w.settled()
    room = w.homeserver.room(conversation(1).room_id)
    assert (room.notices, room.blocked_by) == ([], {Side.SELLER})


async def test_an_unblock_by_both_makes_the_rooms_active_again() -> None:
    w, blocking = blocking_world()
    await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    await blocking.set(SITE, ACME, ANNA, Side.BUYER, False)
    await w.settled()
    room = w.homeserver.room(conversation(1).room_id)
    assert room.notices[-1] == "The buyer has unblocked this conversation."
    assert (room.blocked_by, room.state) == (frozenset(), ConversationState.ACTIVE)


async def test_the_block_holds_when_the_notice_cannot_be_said() -> None:
    w, blocking = blocking_world()
    w.homeserver.notice_answers = [HomeserverUnavailable("down"), HomeserverUnavailable("down")]
    outcome = await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    await w.settled()
    assert outcome.changed
    assert w.homeserver.room(conversation(1).room_id).state == ConversationState.BLOCKED


async def test_the_buyers_stream_hears_of_the_block() -> None:
    w, blocking = blocking_world()
    await blocking.set(SITE, ACME, ANNA, Side.BUYER, True)
    await w.settled()
    states = {
        f.conversation_id: f.payload["conversation"]["state"]
        for f in w.frames("conversation.updated")
    }
    assert states == {"c1": "blocked", "c2": "blocked"}
