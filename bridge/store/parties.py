"""Sellers, their members, and buyers (with the buyer cache)."""

from __future__ import annotations

from sqlalchemy import delete, select

from bridge.core.hours import WeeklyHours
from bridge.core.ids import (
    BuyerID,
    SellerID,
    SiteID,
    UserID,
)
from bridge.core.models import (
    Buyer,
    Member,
    Seller,
)
from bridge.store.base import Sessions, upsert
from bridge.store.records import (
    utc_now,
)
from bridge.store.schema import (
    BuyerRow,
    SellerMemberRow,
    SellerRow,
)

BUYER_CACHE_SIZE = 50_000


class PartyStore(Sessions):
    # Sellers and buyers

    async def put_seller(self, seller: Seller) -> Seller:
        self._forget_seller(seller.site, seller.seller_id)
        async with self._writes.begin() as session:
            # The upsert locks the seller's row: two puts at once replace the members in turn.
            await upsert(
                session,
                SellerRow,
                {
                    "site": seller.site,
                    "seller_id": seller.seller_id,
                    "name": seller.name,
                    "language": seller.language,
                    "email": seller.email,
                    "chat_enabled": seller.chat_enabled,
                    "greeting": seller.greeting,
                    "timezone": seller.timezone,
                    "hours": seller.hours.to_json() if seller.hours is not None else None,
                    "away_message": seller.away_message,
                    "email_copies": seller.email_copies,
                    "updated_at": utc_now(),
                },
                ["site", "seller_id"],
            )
            await session.execute(
                delete(SellerMemberRow).where(
                    SellerMemberRow.site == seller.site,
                    SellerMemberRow.seller_id == seller.seller_id,
                )
            )
            session.add_all(
                SellerMemberRow(
                    site=seller.site,
                    seller_id=seller.seller_id,
                    user_id=member.user_id,
                    role=member.role,
                    position=position,
                )
                for position, member in enumerate(seller.members)
            )
        self._sellers[(seller.site, seller.seller_id)] = seller
        self._seller_changed(seller.site, seller.seller_id)
        return seller

    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None:
        cached = self._sellers.get((site, seller_id))
        if cached is not None:
            return cached
        found = await self._read_sellers(site, seller_id)
        if not found:
            return None
        self._sellers[(site, seller_id)] = found[0]
        return found[0]

    async def list_sellers(self, site: SiteID) -> list[Seller]:
        return await self._read_sellers(site)

    async def _read_sellers(self, site: SiteID, seller_id: SellerID | None = None) -> list[Seller]:
        """Sellers with their members, in two queries whatever their number."""
        rows = select(SellerRow).where(SellerRow.site == site)
        members = select(SellerMemberRow).where(SellerMemberRow.site == site)
        if seller_id is not None:
            rows = rows.where(SellerRow.seller_id == seller_id)
            members = members.where(SellerMemberRow.seller_id == seller_id)
        async with self._reads() as session:
            found = (await session.scalars(rows.order_by(SellerRow.seller_id))).all()
            if not found:
                return []
            by_seller: dict[str, list[Member]] = {}
            for member in await session.scalars(members.order_by(SellerMemberRow.position)):
                by_seller.setdefault(member.seller_id, []).append(
                    Member(UserID(member.user_id), member.role)
                )
        return [
            Seller(
                site=SiteID(row.site),
                seller_id=SellerID(row.seller_id),
                name=row.name,
                language=row.language,
                email=row.email,
                chat_enabled=row.chat_enabled,
                greeting=row.greeting,
                members=tuple(by_seller.get(row.seller_id, ())),
                timezone=row.timezone,
                hours=WeeklyHours.parse(row.hours) if row.hours is not None else None,
                away_message=row.away_message,
                email_copies=row.email_copies,
            )
            for row in found
        ]

    async def put_buyer(self, buyer: Buyer) -> Buyer:
        async with self._writes.begin() as session:
            await upsert(
                session,
                BuyerRow,
                {
                    "site": buyer.site,
                    "buyer_id": buyer.buyer_id,
                    "name": buyer.name,
                    "language": buyer.language,
                    "email": buyer.email,
                    "phone": buyer.phone,
                    "avatar_url": buyer.avatar_url,
                    "profile_url": buyer.profile_url,
                    "summary": buyer.summary,
                    "updated_at": utc_now(),
                },
                ["site", "buyer_id"],
            )
        self._remember_buyer(buyer)
        self._buyer_changed(buyer.site, buyer.buyer_id)
        return buyer

    def _remember_buyer(self, buyer: Buyer) -> None:
        key = (buyer.site, buyer.buyer_id)
        self._buyers.pop(key, None)
        self._buyers[key] = buyer
        if len(self._buyers) > BUYER_CACHE_SIZE:
            del self._buyers[next(iter(self._buyers))]  # the least recently stored

    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None:
        cached = self._buyers.get((site, buyer_id))
        if cached is not None:
            return cached
        async with self._reads() as session:
            row = await session.get(BuyerRow, (site, buyer_id))
            if row is None:
                return None
            buyer = Buyer(
                site=SiteID(row.site),
                buyer_id=BuyerID(row.buyer_id),
                name=row.name,
                language=row.language,
                email=row.email,
                phone=row.phone,
                avatar_url=row.avatar_url,
                profile_url=row.profile_url,
                summary=row.summary,
            )
        self._remember_buyer(buyer)
        return buyer
