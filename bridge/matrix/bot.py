"""The bridge's bot as others meet it: the name it shows, set before it first invites
anyone, and the room version of every room and Space it makes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from bridge.core.ids import RoomID, UserID
from bridge.core.ports import MatrixRejected
from bridge.matrix.gateway import MatrixGateway

logger = logging.getLogger(__name__)

# Room versions up to 11 give the creator power through `users`; from 12 on (MSC4289) the
# creator outranks everyone and must not be listed.
_LISTED_CREATOR_VERSIONS = frozenset(str(n) for n in range(1, 12))


def creator_is_listed(room_version: str) -> bool:
    return room_version in _LISTED_CREATOR_VERSIONS


class Bot:
    """Every room the bot makes and every invite it sends go through here, so that nobody
    meets the bot under its bare user id, and every room has the same version."""

    def __init__(
        self,
        gateway: MatrixGateway,
        user_id: UserID,
        display_name: str,
        room_version: str | None,
    ) -> None:
        self._gateway = gateway
        self.user_id = user_id
        self._display_name = display_name
        # None until known: the configured version, or else the homeserver's default.
        self._room_version = room_version
        self._introduced = False
        self._introducing = asyncio.Lock()

    async def room_version(self) -> str:
        if self._room_version is None:
            self._room_version = await self._gateway.default_room_version()
        return self._room_version

    async def check_room_version(self) -> None:
        """Say at start-up, not at the first room, that the configured version is one the
        homeserver doesn't offer: its rooms would be refused until the config changes."""
        if self._room_version is None:
            return
        default, offered = await self._gateway.room_versions()
        if self._room_version not in offered:
            logger.error(
                "bridge.room_version is %r, which the homeserver does not offer (it offers "
                "%s; its default is %s): no room can be made until the config changes",
                self._room_version,
                ", ".join(sorted(offered)) or "none it names",
                default,
            )

    async def lists_itself(self) -> bool:
        """Whether the rooms it makes name the bot in their power levels' `users`."""
        return creator_is_listed(await self.room_version())

    async def introduce(self) -> None:
        """Give the bot its display name, once a run, before anyone sees it.

        A name set after the bot is in rooms is a new membership event in each of them, and
        invites sent before it show the bare user id. Reading the name first spares the
        homeserver a rewrite of the bot's membership in every room at each start."""
        if self._introduced:
            return
        async with self._introducing:
            if self._introduced:
                return
            if await self._gateway.display_name(self.user_id) != self._display_name:
                try:
                    await self._gateway.set_display_name(self.user_id, self._display_name)
                    logger.info("The bot is now named %r", self._display_name)
                except MatrixRejected as error:
                    # A homeserver may forbid profile changes; the rooms matter more.
                    logger.warning("The homeserver refused the bot's display name: %s", error)
            self._introduced = True

    async def create_room(
        self,
        *,
        alias_localpart: str | None,
        name: str,
        topic: str | None,
        invite: Sequence[UserID],
        initial_state: Sequence[dict[str, Any]],
        power_levels: dict[str, Any],
        space: bool = False,
    ) -> RoomID:
        """One `createRoom` carrying the room's whole state, so clients fold it into one
        "created and configured the room"."""
        await self.introduce()
        return await self._gateway.create_room(
            alias_localpart=alias_localpart,
            name=name,
            topic=topic,
            room_version=await self.room_version(),
            invite=invite,
            initial_state=initial_state,
            power_levels=power_levels,
            space=space,
        )

    async def invite(self, room_id: RoomID, user_id: UserID) -> None:
        await self.introduce()
        await self._gateway.invite(room_id, user_id)
