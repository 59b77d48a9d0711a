"""Waits written straight into `response_waits`, as the response-time tracking stores them,
so the figures can be checked against waits a test chose."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bridge.core.figures import Wait
from bridge.core.ids import BuyerID, ConversationID, SellerID, SiteID, new_conversation_id
from bridge.core.models import Buyer, Context, ContextType, Conversation, ConversationState
from bridge.store.repository import SqlRepository
from bridge.store.schema import WaitRow


async def stored_conversation(
    repository: SqlRepository,
    site: SiteID,
    seller_id: SellerID,
    buyer_id: BuyerID,
    product_id: str,
    created_at: datetime,
) -> ConversationID:
    """A conversation in the store only (no room), for waits to belong to."""
    await repository.put_buyer(Buyer(site, buyer_id, buyer_id.title()))
    conversation, _ = await repository.create_conversation(
        Conversation(
            site=site,
            conversation_id=new_conversation_id(),
            seller_id=seller_id,
            buyer_id=buyer_id,
            context=Context(ContextType.PRODUCT, product_id, product_id),
            state=ConversationState.ACTIVE,
            room_id=None,
            created_at=created_at,
        ),
        (),
    )
    return conversation.conversation_id


async def add_waits(repository: SqlRepository, waits: Sequence[Wait]) -> None:
    """The waits as rows of `response_waits`, in one transaction."""
    # The store's own session: the waits' writer (store/waits.py) is another part's.
    async with repository._writes.begin() as session:
        session.add_all(
            WaitRow(
                conversation_id=wait.conversation_id,
                site=wait.site,
                seller_id=wait.seller_id,
                opened_at=wait.opened_at,
                opened_by=f"m-{index}",
                closed_at=wait.closed_at,
                outcome=wait.outcome,
                closed_by=wait.closed_by,
                wall_seconds=wait.wall_seconds,
                working_seconds=wait.working_seconds,
                first=wait.first,
            )
            for index, wait in enumerate(waits)
        )
