"""Who answers for a seller: the members whose role lets them into the conversation rooms
(`bridge.allowed_roles`), asked in one place by every service that needs to know."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.core.ids import UserID
from bridge.core.models import Member, Seller


@dataclass(frozen=True)
class AnsweringRoles:
    roles: frozenset[str]

    def members(self, seller: Seller) -> tuple[Member, ...]:
        """The seller's members who answer, in the seller's order."""
        return tuple(member for member in seller.members if member.role in self.roles)

    def user_ids(self, seller: Seller | None) -> frozenset[UserID]:
        if seller is None:
            return frozenset()
        return frozenset(member.user_id for member in self.members(seller))
