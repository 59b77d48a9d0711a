"""Who gets which mail: the seller's owner hears of a new conversation, of each buyer
message when they asked for copies, and of each feedback form; the buyer hears of replies
left unread for a while (the digest).

Every mail is an event stored in the same transaction as what caused it (`MailEvent`, see
`core/events.py`): a conversation's mail with the conversation, a copy with the buyer's
message, a feedback mail with the form. That is why the feedback mail rides with the form's
events rather than through `FeedbackOutlet`: an outlet runs after the commit, so a crash in
between would lose the mail and a retried request could not tell it was queued. The digest
marks `buyer_mailed_seq` with its mail, so a restart neither repeats nor loses one.

Rendering is the adapter's (`notify/compose.py`, behind `MailComposer`); the rules here
know only who, when and about what.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

from bridge.core.events import MailEvent
from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer, Conversation, Feedback, Message, Seller, Site
from bridge.core.seller_storage import BuyerDigests, ReplyTokens, Unsubscribes
from bridge.core.storage import Parties

logger = logging.getLogger(__name__)

DIGEST_EVERY_SECONDS = 60.0
DIGEST_BATCH = 100

NEW_CONVERSATION = "conversation.created"
MESSAGE_COPY = "message.copy"
FEEDBACK = "feedback"
BUYER_DIGEST = "buyer.digest"


class MailComposer(Protocol):
    """Renders each kind of mail whole (headers, text and HTML) for its recipient."""

    @property
    def from_address(self) -> str: ...

    def new_conversation(
        self, site: Site, seller: Seller, buyer: Buyer, conversation: Conversation, to: str
    ) -> str: ...

    def message_copy(
        self,
        site: Site,
        seller: Seller,
        buyer: Buyer,
        conversation: Conversation,
        message: Message,
        to: str,
    ) -> str: ...

    def feedback(
        self, site: Site, seller: Seller, buyer: Buyer | None, feedback: Feedback, to: str
    ) -> str: ...

    def buyer_digest(
        self,
        site: Site,
        seller: Seller,
        buyer: Buyer,
        conversation: Conversation,
        messages: Sequence[Message],
        token: str,
        to: str,
    ) -> str: ...


def seller_address(seller: Seller) -> str | None:
    """Where a seller's mail goes: the owner's address as the marketplace gave it, never a
    manager's. One rule for every kind of seller mail."""
    address = (seller.email or "").strip()
    return address or None


def buyer_address(buyer: Buyer) -> str | None:
    address = (buyer.email or "").strip()
    return address or None


class Mailing:
    """The seller's mail rules (`MailRules` of the announcer). A mail that can't be
    rendered is logged and left out: the change it rides with is stored all the same."""

    def __init__(
        self,
        composer: MailComposer,
        sites: Mapping[SiteID, Site],
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self._composer = composer
        self._sites = sites
        self._wake = wake

    def wake(self) -> None:
        self._wake()

    def _mail(
        self, site: SiteID, kind: str, to: str, key: str, render: Callable[[], str]
    ) -> list[MailEvent]:
        try:
            message = render()
        except Exception:
            logger.exception("Could not compose the %s mail %s; not sent", kind, key)
            return []
        return [MailEvent(site, kind, self._composer.from_address, to, message, key)]

    def conversation_opened(
        self, seller: Seller, buyer: Buyer, conversation: Conversation
    ) -> list[MailEvent]:
        to = seller_address(seller)
        if to is None:
            return []
        site = self._sites[conversation.site]
        return self._mail(
            conversation.site,
            NEW_CONVERSATION,
            to,
            f"conversation:{conversation.conversation_id}",
            lambda: self._composer.new_conversation(site, seller, buyer, conversation, to),
        )

    def buyer_wrote(
        self, seller: Seller, buyer: Buyer, conversation: Conversation, message: Message
    ) -> list[MailEvent]:
        to = seller_address(seller)
        if to is None or not seller.email_copies:
            return []
        site = self._sites[conversation.site]
        return self._mail(
            conversation.site,
            MESSAGE_COPY,
            to,
            f"copy:{message.message_id}",
            lambda: self._composer.message_copy(site, seller, buyer, conversation, message, to),
        )

    def feedback_left(
        self, seller: Seller, buyer: Buyer | None, feedback: Feedback
    ) -> list[MailEvent]:
        to = seller_address(seller)
        if to is None:
            return []
        site = self._sites[feedback.site]
        return self._mail(
            feedback.site,
            FEEDBACK,
            to,
            f"feedback:{feedback.feedback_id}",
            lambda: self._composer.feedback(site, seller, buyer, feedback, to),
        )


class DigestStore(BuyerDigests, Parties, ReplyTokens, Unsubscribes, Protocol):
    """The store as the buyer's digest uses it."""


StreamOpen = Callable[[SiteID, BuyerID], bool]
"""Whether the buyer has a widget stream open right now (and so sees replies live)."""


class BuyerDigest:
    """A clock-driven task: a seller reply the buyer has not read `delay` after it was
    written, while no stream of theirs is open, gets them one mail per conversation."""

    def __init__(
        self,
        store: DigestStore,
        composer: MailComposer,
        sites: Mapping[SiteID, Site],
        stream_open: StreamOpen,
        wake: Callable[[], None],
        delay: timedelta,
        every_seconds: float = DIGEST_EVERY_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._composer = composer
        self._sites = sites
        self._stream_open = stream_open
        self._wake = wake
        self._delay = delay
        self._every = every_seconds
        self._clock = clock

    async def sweep(self, now: datetime | None = None) -> int:
        """Queue the digests due now; returns how many mails were queued."""
        due = await self._store.unread_replies((now or self._clock()) - self._delay, DIGEST_BATCH)
        queued = 0
        for unread in due:
            conversation = unread.conversation
            buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
            if buyer is None or self._stream_open(buyer.site, buyer.buyer_id):
                # Watching live: they see the replies; look again next time.
                continue
            events: list[MailEvent] = []
            to = buyer_address(buyer)
            if to is not None and not await self._store.is_unsubscribed(buyer.site, buyer.buyer_id):
                events = await self._digest(buyer, to, conversation, unread.messages)
            # Marked even with no mail (no address, unsubscribed): these replies are done.
            if await self._store.queue_digest(
                conversation.conversation_id, unread.last_seq, events
            ):
                queued += len(events)
        if queued:
            self._wake()
        return queued

    async def _digest(
        self, buyer: Buyer, to: str, conversation: Conversation, messages: Sequence[Message]
    ) -> list[MailEvent]:
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        if seller is None:
            return []
        token = await self._store.reply_token(
            conversation.site, buyer.buyer_id, conversation.conversation_id
        )
        site = self._sites[conversation.site]
        key = f"digest:{conversation.conversation_id}:{messages[-1].message_id}"
        try:
            message = self._composer.buyer_digest(
                site, seller, buyer, conversation, messages, token, to
            )
        except Exception:
            logger.exception("Could not compose the digest %s; not sent", key)
            return []
        return [
            MailEvent(
                conversation.site, BUYER_DIGEST, self._composer.from_address, to, message, key
            )
        ]

    async def run(self) -> None:
        """Sweep every `every_seconds`, for as long as the bridge runs."""
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("Buyer digest sweep failed; trying again later")
            await asyncio.sleep(self._every)
