"""What a conversation room needs to match its conversation, worked out from its state
alone: no homeserver needed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bridge.core.ids import BuyerID, ConversationID, SellerID, SiteID, UserID
from bridge.core.models import (
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Member,
    Side,
)
from bridge.matrix.content import CONVERSATION_STATE, conversation_state
from bridge.matrix.power_levels import BLOCKED_LEVEL, BOT_LEVEL, BUYER_LEVEL, MEMBER_LEVEL
from bridge.matrix.room_changes import room_changes

BOT = UserID("@bazaar:localhost")
GHOST = UserID("@bazaar_shop_anna:localhost")
OWNER = Member(UserID("@owner:localhost"), "owner")
MANAGER = Member(UserID("@manager:localhost"), "manager")
STRANGER = UserID("@stranger:localhost")

CONVERSATION = Conversation(
    conversation_id=ConversationID("c1"),
    site=SiteID("shop"),
    seller_id=SellerID("acme"),
    buyer_id=BuyerID("anna"),
    context=Context(ContextType.PRODUCT, "p-1", "Kettle"),
    state=ConversationState.ACTIVE,
    room_id=None,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def room_state(
    memberships: dict[str, str],
    users: dict[str, int] | None = None,
    conversation: Conversation = CONVERSATION,
) -> list[dict[str, Any]]:
    if users is None:
        users = {BOT: BOT_LEVEL, GHOST: BUYER_LEVEL}
    levels = {
        "users": users,
        "users_default": MEMBER_LEVEL,
        "events_default": 0,
        "state_default": BOT_LEVEL,
    }
    return [
        *(
            {"type": "m.room.member", "state_key": user_id, "content": {"membership": membership}}
            for user_id, membership in memberships.items()
        ),
        {
            "type": "m.room.power_levels",
            "state_key": "",
            "content": levels,
        },
        {"type": CONVERSATION_STATE, "state_key": "", "content": conversation_state(conversation)},
    ]


IN_LINE: dict[str, str] = {BOT: "join", OWNER.user_id: "join", GHOST: "join"}


def test_a_room_in_line_needs_nothing() -> None:
    changes = room_changes(room_state(IN_LINE), CONVERSATION, [OWNER], GHOST, BOT, frozenset())
    assert changes.power_levels is None
    assert changes.conversation_state is None
    assert changes.kick == ()
    assert changes.invite == ()


def test_a_new_member_is_invited_and_nothing_else_is_written() -> None:
    changes = room_changes(
        room_state(IN_LINE), CONVERSATION, [OWNER, MANAGER], GHOST, BOT, frozenset()
    )
    assert changes.invite == (MANAGER.user_id,)
    # The newcomer holds the room's default level: the levels need no change.
    assert changes.power_levels is None
    assert changes.conversation_state is None
    # An invite already out is not sent again.
    invited = room_state({**IN_LINE, MANAGER.user_id: "invite"})
    assert (
        room_changes(invited, CONVERSATION, [OWNER, MANAGER], GHOST, BOT, frozenset()).invite == ()
    )


def test_one_who_no_longer_answers_is_removed_but_not_the_ghost_or_the_bot() -> None:
    state = room_state({**IN_LINE, STRANGER: "invite", "@left:localhost": "leave"})
    changes = room_changes(state, CONVERSATION, [], GHOST, BOT, frozenset())
    assert changes.kick == (OWNER.user_id, STRANGER)
    assert changes.power_levels is None


def test_a_room_that_lists_its_members_is_brought_to_the_default_once() -> None:
    # Rooms made before the members held the default listed each one at their level.
    listed = {BOT: BOT_LEVEL, OWNER.user_id: MEMBER_LEVEL, GHOST: BUYER_LEVEL}
    changes = room_changes(
        room_state(IN_LINE, users=listed), CONVERSATION, [OWNER, MANAGER], GHOST, BOT, frozenset()
    )
    assert changes.power_levels is not None
    assert changes.power_levels["users"] == {GHOST: BUYER_LEVEL, BOT: BOT_LEVEL}
    assert changes.power_levels["users_default"] == MEMBER_LEVEL
    assert changes.power_levels["state_default"] == BOT_LEVEL
    assert changes.invite == (MANAGER.user_id,)


def test_a_block_and_a_new_state_are_written() -> None:
    blocked = replace(
        CONVERSATION, state=ConversationState.BLOCKED, blocked_by=frozenset({Side.SELLER})
    )
    changes = room_changes(
        room_state(IN_LINE), blocked, [OWNER], GHOST, BOT, frozenset({Side.SELLER})
    )
    assert changes.conversation_state is not None
    assert changes.conversation_state == conversation_state(blocked)
    assert changes.conversation_state["state"] == "blocked"
    assert changes.power_levels is not None
    assert changes.power_levels["users"][GHOST] == BLOCKED_LEVEL


def test_a_room_without_levels_or_state_gets_both() -> None:
    bare = [e for e in room_state(IN_LINE) if e["type"] == "m.room.member"]
    changes = room_changes(bare, CONVERSATION, [OWNER], GHOST, BOT, frozenset())
    assert changes.conversation_state == conversation_state(CONVERSATION)
    assert changes.power_levels == {
        "users": {GHOST: BUYER_LEVEL},
        "users_default": MEMBER_LEVEL,
        "events_default": 0,
    }
