"""The tokens of `reply+{token}@{domain}` (one per buyer and conversation) and the buyers
who asked for no more mail."""

from __future__ import annotations

import secrets
import string

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bridge.core.ids import BuyerID, ConversationID, SiteID
from bridge.store.base import Sessions
from bridge.store.records import utc_now
from bridge.store.schema import MailTokenRow, UnsubscribeRow

# Lower-case letters and digits only: the token travels in a mail address's local part,
# which many mail systems fold to lower case. 32 characters of 36 give ~165 bits.
TOKEN_ALPHABET = string.ascii_lowercase + string.digits
TOKEN_LENGTH = 32


def new_reply_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


class MailTokenStore(Sessions):
    async def reply_token(
        self, site: SiteID, buyer_id: BuyerID, conversation_id: ConversationID
    ) -> str:
        same = (
            MailTokenRow.site == site,
            MailTokenRow.buyer_id == buyer_id,
            MailTokenRow.conversation_id == conversation_id,
        )
        async with self._reads() as session:
            kept = await session.scalar(select(MailTokenRow.token).where(*same))
        if kept is not None:
            return kept
        token = new_reply_token()
        try:
            async with self._writes.begin() as session:
                session.add(
                    MailTokenRow(
                        token=token,
                        site=site,
                        buyer_id=buyer_id,
                        conversation_id=conversation_id,
                        created_at=utc_now(),
                    )
                )
        except IntegrityError:
            # Another task made this buyer's token at the same moment: theirs is the one.
            async with self._reads() as session:
                kept = await session.scalar(select(MailTokenRow.token).where(*same))
            if kept is None:
                raise
            return kept
        return token

    async def by_reply_token(self, token: str) -> tuple[SiteID, BuyerID, ConversationID] | None:
        async with self._reads() as session:
            row = (
                await session.execute(
                    select(
                        MailTokenRow.site, MailTokenRow.buyer_id, MailTokenRow.conversation_id
                    ).where(MailTokenRow.token == token.lower())
                )
            ).first()
        if row is None:
            return None
        return SiteID(row.site), BuyerID(row.buyer_id), ConversationID(row.conversation_id)

    async def unsubscribe(self, site: SiteID, buyer_id: BuyerID) -> None:
        try:
            async with self._writes.begin() as session:
                kept = await session.get(UnsubscribeRow, (site, buyer_id))
                if kept is None:
                    session.add(UnsubscribeRow(site=site, buyer_id=buyer_id, created_at=utc_now()))
        except IntegrityError:
            # PostgreSQL: the same buyer clicked twice at once; one row is what we want.
            return

    async def is_unsubscribed(self, site: SiteID, buyer_id: BuyerID) -> bool:
        async with self._reads() as session:
            return await session.get(UnsubscribeRow, (site, buyer_id)) is not None
