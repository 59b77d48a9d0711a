"""The marketplace's desk: sellers, buyers, conversations and messages, as the API asks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from bridge.core.archive import Archive
from bridge.core.auto_replies import AutoReplies
from bridge.core.blocking import Blocking
from bridge.core.contact_policy import ContactGuard, Guarded
from bridge.core.delivery import Courier
from bridge.core.events import Announcer
from bridge.core.ids import (
    BuyerID,
    ConversationID,
    MessageID,
    SellerID,
    SiteID,
    UserID,
    attachment_id,
    new_conversation_id,
    new_message_id,
)
from bridge.core.models import (
    Attachment,
    Buyer,
    Context,
    Conversation,
    ConversationState,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
    Side,
    Site,
)
from bridge.core.ports import LanguageDetector, MatrixPort
from bridge.core.refusals import blocked, message_in, refuse_if_blocked, unknown_conversation
from bridge.core.response_time import ResponseTimes
from bridge.core.storage import (
    Blocks,
    ConversationBlocked,
    ConversationRecords,
    FeedWriter,
    MessageDelivery,
    MessageRecords,
    Parties,
)
from bridge.core.team import AnsweringRoles
from bridge.errors import BadRequest, Conflict, NotFound

logger = logging.getLogger(__name__)

MAX_PAGE = 200
DETECT_CHARS = 400
ID_TOO_LONG = "BAZAAR_ID_TOO_LONG"

# Why a buyer id can't be carried into Matrix (its ghost's id too long), or None.
BuyerIdCheck = Callable[[SiteID, BuyerID], str | None]


class MarketplaceDeskStore(
    Parties, ConversationRecords, Blocks, MessageRecords, MessageDelivery, FeedWriter, Protocol
):
    """The store as the marketplace's desk uses it."""


def _same_words(stored: Message, repeat: Message) -> bool:
    """Whether a repeated client id carries what was stored under it (text as written, and
    the same file)."""
    written = stored.original.text if stored.original else stored.text
    return written == repeat.text and [a.sha256 for a in stored.attachments] == [
        a.sha256 for a in repeat.attachments
    ]


class MarketplaceDesk:
    """The marketplace's desk, beside the buyer's (`BuyerDesk`): sellers, buyers,
    conversations and messages as the marketplace's API asks for them; the buyer's desk
    opens conversations and posts through it."""

    def __init__(
        self,
        store: MarketplaceDeskStore,
        matrix: MatrixPort,
        courier: Courier,
        sites: Mapping[SiteID, Site],
        announcer: Announcer,
        answering: AnsweringRoles,
        blocking: Blocking,
        archive: Archive,
        buyer_id_problem: BuyerIdCheck,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        detector: LanguageDetector | None = None,
        auto_replies: AutoReplies | None = None,
        response_times: ResponseTimes | None = None,
        contact_guard: ContactGuard | None = None,
    ) -> None:
        self._store = store
        self._contact_guard = contact_guard
        self._matrix = matrix
        self._courier = courier
        self._sites = sites
        self._announcer = announcer
        self._answering = answering
        self._blocking = blocking
        self._archive = archive
        self._buyer_id_problem = buyer_id_problem
        self._clock = clock
        self._detector = detector
        self._auto_replies = auto_replies
        self._response_times = response_times

    def site(self, site_id: SiteID) -> Site:
        site = self._sites.get(site_id)
        if site is None:
            raise NotFound(f"Unknown site '{site_id}'", "BAZAAR_UNKNOWN_SITE")
        return site

    async def put_seller(self, seller: Seller, *, chat_given: bool = True) -> Seller:
        """Store the seller; when who answers changes, every room of the seller follows.
        Without `chat_given` (the call left `chat_enabled` out) a known seller keeps its
        stored switch, so the owner's `!chat off` survives an unrelated update."""
        self.site(seller.site)
        before = await self._store.get_seller(seller.site, seller.seller_id)
        if not chat_given and before is not None:
            seller = replace(seller, chat_enabled=before.chat_enabled)
        stored = await self._store.put_seller(seller)
        if before is not None and set(self._answering.members(before)) != set(
            self._answering.members(stored)
        ):
            rooms = await self._store.list_conversations(seller.site, seller_id=seller.seller_id)
            await self._courier.refresh_members(
                [c.conversation_id for c in rooms if c.room_id is not None]
            )
        return stored

    async def set_block(
        self, conversation: Conversation, side: Side, blocked: bool
    ) -> Conversation:
        """Block or unblock, for one side, the pair this conversation is between; returns
        the conversation as the block left it."""
        await self._blocking.set(
            conversation.site, conversation.seller_id, conversation.buyer_id, side, blocked
        )
        return await self.conversation(conversation.site, conversation.conversation_id)

    def check_buyer_id(self, site_id: SiteID, buyer_id: BuyerID) -> None:
        """Refuse a buyer id the bridge can't carry into Matrix, before anything is stored."""
        problem = self._buyer_id_problem(site_id, buyer_id)
        if problem is not None:
            raise BadRequest(f"'buyer_id' is too long: {problem}", ID_TOO_LONG)

    async def put_buyer(self, buyer: Buyer) -> Buyer:
        self.site(buyer.site)
        self.check_buyer_id(buyer.site, buyer.buyer_id)
        before = await self._store.get_buyer(buyer.site, buyer.buyer_id)
        stored = await self._store.put_buyer(buyer)
        if before is not None and before != stored:
            # The profile, the ghost's name and avatar follow into every room of the buyer.
            rooms = await self._store.list_conversations(buyer.site, buyer_id=buyer.buyer_id)
            for conversation in rooms:
                if conversation.room_id is not None:
                    self._courier.refresh_context(conversation.conversation_id)
        return stored

    async def seller(self, site_id: SiteID, seller_id: SellerID) -> Seller:
        seller = await self._store.get_seller(site_id, seller_id)
        if seller is None:
            raise NotFound(f"Unknown seller '{seller_id}'", "BAZAAR_UNKNOWN_SELLER")
        return seller

    async def buyer(self, site_id: SiteID, buyer_id: BuyerID) -> Buyer:
        # A buyer stored before ids were checked is refused too: its room can't be made.
        self.check_buyer_id(site_id, buyer_id)
        buyer = await self._store.get_buyer(site_id, buyer_id)
        if buyer is None:
            raise NotFound(f"Unknown buyer '{buyer_id}'", "BAZAAR_UNKNOWN_BUYER")
        return buyer

    async def conversation(self, site_id: SiteID, conversation_id: ConversationID) -> Conversation:
        conversation = await self._store.get_conversation(site_id, conversation_id)
        if conversation is None:
            raise unknown_conversation(conversation_id)
        return conversation

    async def start_conversation(
        self, seller: Seller, buyer: Buyer, context: Context
    ) -> tuple[Conversation, bool]:
        """Open the conversation about this context between the seller and the buyer (as
        the caller looked them up), or return the one already open.

        The room is made right away when the homeserver answers; otherwise the courier
        makes it later and the conversation is usable (messages queue) meanwhile.
        """
        site_id, seller_id, buyer_id = seller.site, seller.seller_id, buyer.buyer_id
        self.site(site_id)
        blocked_by = await self._store.blocks(site_id, seller_id, buyer_id)
        draft = Conversation(
            site=site_id,
            conversation_id=new_conversation_id(),
            seller_id=seller_id,
            buyer_id=buyer_id,
            context=context,
            state=ConversationState.BLOCKED if blocked_by else ConversationState.ACTIVE,
            room_id=None,
            created_at=self._clock(),
            blocked_by=blocked_by,
        )
        conversation, created = await self._store.create_conversation(
            draft, self._announcer.conversation_created(draft, seller, buyer)
        )
        if created:
            self._announcer.published(conversation)
        if conversation.room_id is None:
            conversation = await self._courier.provision_now(conversation)
        return conversation, created

    async def ensure_room(self, conversation: Conversation) -> Conversation:
        return await self._courier.provision_now(conversation)

    async def list_conversations(
        self,
        site_id: SiteID,
        *,
        seller_id: SellerID | None = None,
        buyer_id: BuyerID | None = None,
        state: ConversationState | None = None,
        label: str | None = None,
        assignee: UserID | None = None,
    ) -> list[Conversation]:
        self.site(site_id)
        return await self._store.list_conversations(
            site_id,
            seller_id=seller_id,
            buyer_id=buyer_id,
            state=state,
            label=label,
            assignee=assignee,
        )

    async def update_context(
        self, site_id: SiteID, conversation_id: ConversationID, context: Context
    ) -> Conversation:
        conversation = await self.conversation(site_id, conversation_id)
        if context.type != conversation.context.type or context.id != conversation.context.id:
            raise Conflict(
                "A conversation keeps the type and id of its context; start a new conversation "
                "for another product or order",
                "BAZAAR_CONTEXT_MISMATCH",
            )
        await self._store.set_context(conversation_id, context)
        conversation = replace(conversation, context=context)
        await self._store.add_frames(self._announcer.conversation_updated(conversation))
        self._announcer.published(conversation)
        self._courier.refresh_context(conversation_id)
        return conversation

    async def post_for_buyer(
        self, site_id: SiteID, conversation_id: ConversationID, text: str, client_id: str
    ) -> tuple[Message, bool]:
        """The marketplace posts as the conversation's buyer."""
        conversation = await self.conversation(site_id, conversation_id)
        buyer = await self.buyer(site_id, conversation.buyer_id)
        return await self.post_buyer_message(conversation, buyer, text, client_id)

    async def post_buyer_message(
        self,
        conversation: Conversation,
        buyer: Buyer,
        text: str,
        client_id: str,
        attachment: Attachment | None = None,
    ) -> tuple[Message, bool]:
        """Store a buyer's message (idempotent by client id) and hand it to the courier;
        the caller has loaded the conversation and its buyer.

        The message is stored as written; the courier translates it on its way to the
        room, so a slow translation service never holds the buyer's answer back."""
        refuse_if_blocked(conversation)
        conversation_id = conversation.conversation_id
        message_id = new_message_id()
        draft = Message(
            message_id=message_id,
            conversation_id=conversation_id,
            sender=SenderKind.BUYER,
            sender_name=buyer.name,
            text=text,
            lang=buyer.language or self._detect(text),
            status=MessageStatus.PENDING,
            created_at=self._clock(),
            client_id=client_id,
            attachments=()
            if attachment is None
            else (replace(attachment, attachment_id=attachment_id(message_id, 1)),),
        )
        guarded = Guarded(draft)
        if self._contact_guard is not None:
            guarded = await self._contact_guard.guard(
                conversation, Side.BUYER, draft, buyer.language or draft.lang
            )
            draft = guarded.message
        # For the seller's copy by mail (`email_copies`) and the automatic replies.
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        try:
            message, created = await self._store.add_message(
                draft,
                [
                    *self._announcer.buyer_message_created(conversation, seller, buyer, draft),
                    *guarded.events,
                ],
                wait=self._response_times.opening(draft.created_at)
                if self._response_times
                else None,
                notices=guarded.notices,
            )
        except ConversationBlocked:
            raise blocked() from None
        if not created and not _same_words(message, draft):
            raise Conflict(
                f"client_id '{client_id}' was already used for another message",
                "BAZAAR_CLIENT_ID_REUSED",
            )
        if not created:
            message = await self._retry_if_failed(conversation, message)
        if created:
            await self._archive.reactivate(conversation)
            if self._response_times is not None:
                await self._response_times.buyer_wrote(conversation)
        if created or message.status == MessageStatus.PENDING:
            self._announcer.published(conversation)
            self._courier.wake(conversation_id)
        if created:
            await self._answer_automatically(conversation, seller, buyer, message)
        return message, created

    async def _answer_automatically(
        self, conversation: Conversation, seller: Seller | None, buyer: Buyer, message: Message
    ) -> None:
        """The greeting and away reply a new buyer message calls for. The buyer's message is
        stored whatever happens here: a failure is logged, never the buyer's error."""
        if self._auto_replies is None:
            return
        try:
            answered = await self._auto_replies.answer(conversation, seller, buyer, message)
        except Exception:
            logger.exception("No automatic reply to %s", message.message_id)
            return
        if answered:
            self._announcer.published(conversation)
            # The courier posts their notices in the room after the buyer's message.
            self._courier.wake(conversation.conversation_id)

    async def retry_buyer_message(self, conversation: Conversation, client_id: str) -> Message:
        """Send a stored message again by its client id alone (a retry of a message with a
        file, after the page that had the file was closed)."""
        refuse_if_blocked(conversation)
        message = await self._store.message_by_client_id(conversation.conversation_id, client_id)
        if message is None:
            raise BadRequest("'text' is required", "M_MISSING_PARAM")
        return await self._retry_if_failed(conversation, message)

    async def _retry_if_failed(self, conversation: Conversation, message: Message) -> Message:
        if message.status != MessageStatus.FAILED:
            return message
        # Sending the same client_id again is the buyer's retry: try the room once more.
        message = await self._store.requeue(
            message.message_id, self._announcer.message_changed(conversation, "message.status")
        )
        self._announcer.published(conversation)
        self._courier.wake(conversation.conversation_id)
        return message

    def _detect(self, text: str) -> str | None:
        # The opening words tell the language as well as a whole page does, and cost less.
        return self._detector.detect(text[:DETECT_CHARS]) if self._detector else None

    async def list_messages(
        self,
        site_id: SiteID,
        conversation_id: ConversationID,
        *,
        after: MessageID | None,
        limit: int,
    ) -> list[Message]:
        conversation = await self.conversation(site_id, conversation_id)
        if after is not None:
            await message_in(self._store, conversation, after)
        return await self._store.list_messages(
            conversation_id, after=after, limit=min(max(limit, 1), MAX_PAGE)
        )
