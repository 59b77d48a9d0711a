"""What the Matrix side keeps of label sections: each seller's Space section per label, and
which of them each conversation room sits in, across restarts."""

from __future__ import annotations

from sqlalchemy import delete, select

from bridge.core.ids import RoomID, SellerID, SiteID
from bridge.store.base import Sessions
from bridge.store.schema import LabelPlacementRow, LabelSectionRow


class LabelSectionStore(Sessions):
    async def label_sections(self, site: SiteID, seller_id: SellerID) -> dict[str, RoomID]:
        async with self._reads() as session:
            rows = await session.scalars(
                select(LabelSectionRow).where(
                    LabelSectionRow.site == site, LabelSectionRow.seller_id == seller_id
                )
            )
            return {row.label: RoomID(row.room_id) for row in rows}

    async def remember_label_section(
        self, site: SiteID, seller_id: SellerID, label: str, room_id: RoomID
    ) -> None:
        async with self._writes.begin() as session:
            await session.merge(
                LabelSectionRow(site=site, seller_id=seller_id, label=label, room_id=room_id)
            )

    async def label_placements(self, room_id: RoomID) -> frozenset[str]:
        async with self._reads() as session:
            labels = await session.scalars(
                select(LabelPlacementRow.label).where(LabelPlacementRow.room_id == room_id)
            )
            return frozenset(labels)

    async def remember_label_placement(self, room_id: RoomID, label: str, placed: bool) -> None:
        async with self._writes.begin() as session:
            if placed:
                await session.merge(LabelPlacementRow(room_id=room_id, label=label))
            else:
                await session.execute(
                    delete(LabelPlacementRow).where(
                        LabelPlacementRow.room_id == room_id, LabelPlacementRow.label == label
                    )
                )
