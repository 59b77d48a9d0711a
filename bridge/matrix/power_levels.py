"""Who may do what in a conversation room: the bot holds the room's identity and state, the
seller's members speak and read, the buyer's ghost speaks unless blocked. Pure: no I/O.

The members hold the room's default level and are listed nowhere: only the bot invites, so
no one else can be in the room to hold it, and a change of the seller's team is the invite
or the kick alone, with no power-levels event for the homeserver to write and check."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.core.ids import UserID
from bridge.core.models import Side
from bridge.matrix.content import BRIDGE_STATE_TYPES, CONTEXT_STATE, CONVERSATION_STATE

BOT_LEVEL = 100
MEMBER_LEVEL = 50
BUYER_LEVEL = 0
BLOCKED_LEVEL = -1

# Events only the bot may send: the room's identity and everything that carries state.
_BOT_ONLY_EVENTS = (
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.power_levels",
    "m.room.history_visibility",
    "m.room.join_rules",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.canonical_alias",
    "m.space.parent",
    CONVERSATION_STATE,
    CONTEXT_STATE,
    *BRIDGE_STATE_TYPES,
)


def power_levels(bot: UserID, ghost: UserID, *, list_bot: bool) -> dict[str, Any]:
    """A new conversation room's power levels. `list_bot` is false in room versions where
    the room's creator outranks every level and may not be listed."""
    users: dict[str, int] = {ghost: BUYER_LEVEL}
    if list_bot:
        users[bot] = BOT_LEVEL
    return {
        "users": users,
        "users_default": MEMBER_LEVEL,
        "events_default": 0,
        "state_default": BOT_LEVEL,
        "invite": BOT_LEVEL,
        "kick": BOT_LEVEL,
        "ban": BOT_LEVEL,
        "redact": BOT_LEVEL,
        "events": dict.fromkeys(_BOT_ONLY_EVENTS, BOT_LEVEL),
        "notifications": {"room": BOT_LEVEL},
    }


def wanted_power_levels(
    current: Mapping[str, Any], ghost: UserID, bot: UserID, blocked_by: frozenset[Side]
) -> dict[str, Any] | None:
    """The room's power levels once they match its blocks, or None if they already do.
    Everything but the users, `users_default` and `events_default` is kept as the room has
    it; a room made before the members held the default has them listed, and loses them.

    A seller's block puts the ghost below the level to speak; a buyer's block raises the
    level to speak above the members'. The bot stays listed only where the room lists it
    already: whether it may be is its room version's rule."""
    raw_users = current.get("users")
    users = raw_users if isinstance(raw_users, dict) else {}
    desired_users: dict[str, int] = {
        ghost: BLOCKED_LEVEL if Side.SELLER in blocked_by else BUYER_LEVEL
    }
    if bot in users:
        desired_users[bot] = BOT_LEVEL
    events_default = MEMBER_LEVEL + 1 if Side.BUYER in blocked_by else 0
    if (
        users == desired_users
        and current.get("users_default") == MEMBER_LEVEL
        and current.get("events_default") == events_default
    ):
        return None
    return {
        **current,
        "users": desired_users,
        "users_default": MEMBER_LEVEL,
        "events_default": events_default,
    }
