"""The part of each room's state that a members' sync reads, kept from the appservice's
transactions and from the bridge's own writes, so that a role change over hundreds of rooms
costs only the writes it needs and no read of `/state` per room.

The homeserver sends the bridge every event of its rooms but the bot's own, so what the bot
writes is kept as it writes it: the whole state of a room it makes (`made`), and each change
after. What is kept of a room counts as whole once its making was kept; a room known only in
part (made before this was kept, or found again by its alias) is read once from the
homeserver and kept from then on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from bridge.core.ids import RoomID, UserID
from bridge.matrix.content import CONVERSATION_STATE, WIDGETS_STATE
from bridge.matrix.gateway import MatrixGateway

CREATE = "m.room.create"
MEMBER = "m.room.member"
POWER_LEVELS = "m.room.power_levels"
KEPT = frozenset({CREATE, POWER_LEVELS, MEMBER, CONVERSATION_STATE, WIDGETS_STATE})


class StateEntry(NamedTuple):
    event_type: str
    state_key: str
    content: dict[str, Any]


class RoomStateStore(Protocol):
    async def remember_room_state(
        self, room_id: RoomID, entries: Sequence[tuple[str, str, dict[str, Any]]]
    ) -> None:
        """Keep each (type, state key, content), replacing what was kept for the first two."""

    async def known_room_state(self, room_id: RoomID) -> list[tuple[str, str, dict[str, Any]]]: ...


def kept(event: Mapping[str, Any]) -> StateEntry | None:
    """What is kept of a state event: none of a type a sync doesn't read; of a membership,
    only the membership (a ghost's display name is a buyer's name)."""
    kind, state_key, content = event.get("type"), event.get("state_key"), event.get("content")
    if kind not in KEPT or not isinstance(state_key, str) or not isinstance(content, dict):
        return None
    if kind == MEMBER:
        content = {"membership": content.get("membership")}
    elif kind == CREATE:
        content = {}
    return StateEntry(str(kind), state_key, content)


def as_events(entries: Sequence[StateEntry]) -> list[dict[str, Any]]:
    """In the shape `/state` answers, for the code that reads it."""
    return [
        {"type": entry.event_type, "state_key": entry.state_key, "content": entry.content}
        for entry in entries
    ]


class RoomStates:
    def __init__(self, store: RoomStateStore, gateway: MatrixGateway) -> None:
        self._store = store
        self._gateway = gateway

    async def observe(self, event: Mapping[str, Any]) -> None:
        """A state event from a transaction."""
        entry = kept(event)
        room_id = event.get("room_id")
        if entry is not None and isinstance(room_id, str):
            await self._store.remember_room_state(RoomID(room_id), [entry])

    async def current(self, room_id: RoomID) -> list[dict[str, Any]]:
        """The room's state as a sync reads it: what was kept, or, for a room not known
        whole, a read of the homeserver, kept from then on."""
        known = [StateEntry(*row) for row in await self._store.known_room_state(room_id)]
        if any(entry.event_type == CREATE for entry in known):
            return as_events(known)
        state = await self._gateway.full_state(room_id)
        entries = [entry for event in state if (entry := kept(event)) is not None]
        await self._store.remember_room_state(room_id, entries)
        return state

    async def wrote(
        self, room_id: RoomID, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> None:
        """A state event the bridge has just sent: kept now, before its echo comes back, so
        the next sync sees it."""
        entry = kept({"type": event_type, "state_key": state_key, "content": dict(content)})
        if entry is not None:
            await self._store.remember_room_state(room_id, [entry])

    async def made(
        self,
        room_id: RoomID,
        initial_state: Sequence[Mapping[str, Any]],
        power_levels: Mapping[str, Any],
        memberships: Mapping[UserID, str],
    ) -> None:
        """A room the bot has just made with this state, these power levels and members."""
        events = [
            {"type": CREATE, "state_key": "", "content": {}},
            {"type": POWER_LEVELS, "state_key": "", "content": dict(power_levels)},
            *initial_state,
            *(
                {"type": MEMBER, "state_key": user_id, "content": {"membership": membership}}
                for user_id, membership in memberships.items()
            ),
        ]
        entries = [entry for event in events if (entry := kept(event)) is not None]
        await self._store.remember_room_state(room_id, entries)

    async def membership(self, room_id: RoomID, user_id: UserID, membership: str) -> None:
        await self.wrote(room_id, MEMBER, {"membership": membership}, user_id)
