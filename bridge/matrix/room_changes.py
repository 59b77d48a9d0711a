"""What a conversation room should look like, against what it does: the changes that bring
its power levels, its conversation state and its memberships in line. Pure: no I/O; the
port (`MatrixRooms.sync_members`) reads the state and applies the changes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.core.ids import UserID
from bridge.core.models import Conversation, Member, Side
from bridge.matrix.content import CONVERSATION_STATE, conversation_state
from bridge.matrix.power_levels import wanted_power_levels

_PRESENT = ("join", "invite")


@dataclass(frozen=True)
class RoomChanges:
    """What to write, in the order to write it; None or empty where nothing is to change."""

    power_levels: dict[str, Any] | None
    conversation_state: dict[str, Any] | None
    kick: tuple[UserID, ...]
    invite: tuple[UserID, ...]


def room_changes(
    state: Sequence[Mapping[str, Any]],
    conversation: Conversation,
    members: Sequence[Member],
    ghost: UserID,
    bot: UserID,
    blocked_by: frozenset[Side],
) -> RoomChanges:
    """From the room's full state (as `/state` gives it): power levels for the blocks, the
    conversation's current state, and the seller's members in the room,
    anyone else (but the ghost and the bot) out."""
    membership = {
        event["state_key"]: event.get("content", {}).get("membership")
        for event in state
        if event.get("type") == "m.room.member" and isinstance(event.get("state_key"), str)
    }
    levels: Mapping[str, Any] = next(
        (e.get("content", {}) for e in state if e.get("type") == "m.room.power_levels"), {}
    )
    wanted_state = conversation_state(conversation)
    current_state = next(
        (e.get("content") for e in state if e.get("type") == CONVERSATION_STATE), None
    )
    wanted = {member.user_id for member in members}
    allowed = wanted | {ghost, bot}
    return RoomChanges(
        power_levels=wanted_power_levels(levels, ghost, bot, blocked_by),
        conversation_state=wanted_state if current_state != wanted_state else None,
        kick=tuple(
            UserID(user_id)
            for user_id, state_of in membership.items()
            if state_of in _PRESENT and user_id not in allowed
        ),
        invite=tuple(
            user_id for user_id in sorted(wanted) if membership.get(user_id) not in _PRESENT
        ),
    )
