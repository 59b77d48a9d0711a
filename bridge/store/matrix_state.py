"""What the Matrix side keeps: sellers' Spaces, site rooms, registered ghosts; and which of
the bridge's rooms a room is."""

from __future__ import annotations

from sqlalchemy import select

from bridge.core.ids import (
    RoomID,
    SellerID,
    SiteID,
    UserID,
)
from bridge.core.models import (
    ConversationState,
    SellerSpace,
)
from bridge.core.room_events import ConversationRoom, ManagementRoom, RoomKind, SiteRoom
from bridge.store.base import Sessions, upsert
from bridge.store.conversations import CONVERSATION_BY_ROOM, read_with_blocks
from bridge.store.records import (
    to_seller_space,
)
from bridge.store.schema import (
    GhostRow,
    SellerSpaceRow,
    SiteRoomRow,
    SpacePlacementRow,
)


class MatrixStateStore(Sessions):
    # Sellers' Spaces (kept for the Matrix side)

    async def seller_space(self, site: SiteID, seller_id: SellerID) -> SellerSpace | None:
        async with self._reads() as session:
            row = await session.get(SellerSpaceRow, (site, seller_id))
            return to_seller_space(row) if row else None

    async def remember_seller_space(
        self, site: SiteID, seller_id: SellerID, space: SellerSpace
    ) -> None:
        async with self._writes.begin() as session:
            await session.merge(
                SellerSpaceRow(
                    site=site,
                    seller_id=seller_id,
                    space_id=space.space_id,
                    active_id=space.sections[ConversationState.ACTIVE],
                    archived_id=space.sections[ConversationState.ARCHIVED],
                    blocked_id=space.sections[ConversationState.BLOCKED],
                    management_id=space.management_id,
                    marketplace_id=space.marketplace_id,
                    unanswered_id=space.unanswered_id,
                )
            )

    async def space_section(self, room_id: RoomID) -> ConversationState | None:
        async with self._reads() as session:
            row = await session.get(SpacePlacementRow, room_id)
            return ConversationState(row.section) if row else None

    async def remember_space_section(self, room_id: RoomID, state: ConversationState) -> None:
        async with self._writes.begin() as session:
            await session.merge(SpacePlacementRow(room_id=room_id, section=state.value))

    async def site_room(self, site: SiteID, purpose: str) -> RoomID | None:
        async with self._reads() as session:
            row = await session.get(SiteRoomRow, (site, purpose))
            return RoomID(row.room_id) if row else None

    async def remember_site_room(self, site: SiteID, purpose: str, room_id: RoomID) -> None:
        async with self._writes.begin() as session:
            await session.merge(SiteRoomRow(site=site, purpose=purpose, room_id=room_id))

    async def classify_room(self, room_id: RoomID) -> RoomKind | None:
        # Conversation rooms first: nearly every event is in one.
        found = await self._read_first(CONVERSATION_BY_ROOM, {"room": room_id})
        if found is not None:
            return ConversationRoom(read_with_blocks(found))
        async with self._reads() as session:
            space = await session.scalar(
                select(SellerSpaceRow).where(SellerSpaceRow.management_id == room_id)
            )
            if space is not None:
                return ManagementRoom(room_id, SiteID(space.site), SellerID(space.seller_id))
            site_room = await session.scalar(
                select(SiteRoomRow).where(SiteRoomRow.room_id == room_id)
            )
            if site_room is not None:
                return SiteRoom(room_id, SiteID(site_room.site), site_room.purpose)
            return None

    # Ghosts (used by the Matrix side to skip repeat registrations)

    async def ghost_display_name(self, user_id: UserID) -> tuple[bool, str | None]:
        async with self._reads() as session:
            row = await session.get(GhostRow, user_id)
            return (row is not None, row.display_name if row else None)

    async def remember_ghost(self, user_id: UserID, display_name: str | None) -> None:
        async with self._writes.begin() as session:
            await upsert(
                session, GhostRow, {"user_id": user_id, "display_name": display_name}, ["user_id"]
            )
