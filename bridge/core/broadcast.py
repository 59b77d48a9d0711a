"""Vendor ↔ marketplace: the site's admins talk to sellers, and broadcast news to all of them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from bridge.core.ids import SiteID
from bridge.core.lanes import bulk_work
from bridge.core.models import Site
from bridge.core.ports import HomeserverUnavailable, MatrixPort, MatrixRejected
from bridge.core.room_events import RoomMessage, SiteRoom
from bridge.core.storage import Parties
from bridge.core.team import AnsweringRoles

logger = logging.getLogger(__name__)

ADMIN_HELP = (
    "Commands here:\n"
    "!broadcast <text> — send the text to every seller of the site, in their room with you\n"
    "!help — this list"
)


class Broadcasts:
    def __init__(
        self,
        parties: Parties,
        matrix: MatrixPort,
        sites: Mapping[SiteID, Site],
        answering: AnsweringRoles,
    ) -> None:
        self._parties = parties
        self._matrix = matrix
        self._sites = sites
        self._answering = answering

    async def on_admin_command(self, room: SiteRoom, said: RoomMessage) -> None:
        """A message in the admins' control room. Its event id is the broadcast's key: a
        broadcast lands once per seller, even when the homeserver hands the command over
        twice."""
        room_id, key, text = room.room_id, said.event_id, said.text
        site = self._sites.get(room.site)
        if site is None or said.sender not in site.admins or not text.startswith("!"):
            return
        command, _, rest = text[1:].partition(" ")
        if command.lower() == "broadcast" and rest.strip():
            sent = await self.broadcast(site, rest.strip(), key)
            await self._matrix.send_notice(room_id, f"Sent to {sent} sellers.", f"{key}-done")
        else:
            await self._matrix.send_notice(room_id, ADMIN_HELP)

    async def broadcast(self, site: Site, text: str, key: str) -> int:
        with bulk_work():  # every seller's room: what a buyer waits for goes first
            return await self._to_every_seller(site, text, key)

    async def _to_every_seller(self, site: Site, text: str, key: str) -> int:
        sent = 0
        for seller in await self._parties.list_sellers(site.site_id):
            members = self._answering.members(seller)
            try:
                room_id = await self._matrix.marketplace_room(seller, members, site.name)
                await self._matrix.send_notice(
                    room_id, f"📣 {site.name}: {text}", f"{key}-{seller.seller_id}"
                )
            except (HomeserverUnavailable, MatrixRejected) as error:
                logger.warning("Broadcast to %s failed: %s", seller.seller_id, error)
                continue
            sent += 1
        return sent
