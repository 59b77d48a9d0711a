"""What a signed-in buyer can do from the widget, always within their own conversations."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from typing_extensions import TypedDict

from bridge.core.attachments import AttachmentFiles, Download
from bridge.core.events import Announcer
from bridge.core.ids import ConversationID, MessageID, SellerID
from bridge.core.limits import RateLimiter, UploadSlots
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import (
    Buyer,
    Context,
    ContextType,
    Conversation,
    Message,
    Seller,
    SenderKind,
    Side,
)
from bridge.core.ports import HomeserverUnavailable, MatrixPort, MatrixRejected
from bridge.core.refusals import message_in, refuse_if_blocked, unknown_conversation
from bridge.core.storage import ConversationRecords, FeedWriter, MessageRecords, Parties
from bridge.core.tasks import TaskKeeper
from bridge.errors import BadRequest, Forbidden, Unauthorized

logger = logging.getLogger(__name__)

MAX_PAGE = 100
DEFAULT_BUYER_NAME = "Buyer"


class BuyerDeskStore(Parties, ConversationRecords, MessageRecords, FeedWriter, Protocol):
    """The store as the buyer's desk uses it."""


class MarkedRead(TypedDict):
    """The seller's messages are read up to the one given; what the buyer still has unread."""

    unread: int


class TypingSent(TypedDict):
    """The typing signal is passed on (an empty object)."""


@dataclass(frozen=True)
class BuyerConversation:
    conversation: Conversation
    seller_name: str | None
    last_message: Message | None


class BuyerDesk:
    def __init__(
        self,
        store: BuyerDeskStore,
        conversations: MarketplaceDesk,
        matrix: MatrixPort,
        announcer: Announcer,
        limiter: RateLimiter,
        tasks: TaskKeeper,
        files: AttachmentFiles,
        uploads: UploadSlots,
    ) -> None:
        self._store = store
        self._conversations = conversations
        self._matrix = matrix
        self._announcer = announcer
        self._limiter = limiter
        self._tasks = tasks
        self._files = files
        self._uploads = uploads

    async def sign_in(self, claimed: Buyer) -> Buyer:
        """Make the token's buyer known; what the token leaves out keeps its stored value.
        (The store keeps buyers in memory: a buyer signing in again costs no query.)"""
        try:
            self._conversations.check_buyer_id(claimed.site, claimed.buyer_id)
        except BadRequest as error:
            # The token itself is unusable, like one whose `sub` is no id at all.
            raise Unauthorized(
                f"The buyer token's 'sub' can't be used: {error.error}", error.errcode
            ) from None
        stored = await self._store.get_buyer(claimed.site, claimed.buyer_id)
        if stored is None:
            buyer = Buyer(
                claimed.site, claimed.buyer_id, claimed.name or DEFAULT_BUYER_NAME, claimed.language
            )
        else:
            # The profile the marketplace sent (e-mail, phone, avatar, summary) stays.
            buyer = replace(
                stored,
                name=claimed.name or stored.name,
                language=claimed.language or stored.language,
            )
        if stored != buyer:
            await self._conversations.put_buyer(buyer)
        return buyer

    def _who(self, buyer: Buyer) -> str:
        return f"{buyer.site}/{buyer.buyer_id}"

    async def own_conversation(self, buyer: Buyer, conversation_id: ConversationID) -> Conversation:
        conversation = await self._store.get_conversation(buyer.site, conversation_id)
        # Another buyer's conversation looks exactly like one that does not exist.
        if conversation is None or conversation.buyer_id != buyer.buyer_id:
            raise unknown_conversation(conversation_id)
        return conversation

    async def conversations(self, buyer: Buyer) -> list[BuyerConversation]:
        found = await self._store.list_conversations(buyer.site, buyer_id=buyer.buyer_id)
        last = await self._store.last_messages([c.conversation_id for c in found])
        names: dict[SellerID, str | None] = {}
        for conversation in found:
            if conversation.seller_id not in names:
                seller = await self._store.get_seller(buyer.site, conversation.seller_id)
                names[conversation.seller_id] = seller.name if seller else None
        return [
            BuyerConversation(c, names[c.seller_id], last.get(c.conversation_id)) for c in found
        ]

    async def seller(self, buyer: Buyer, seller_id: SellerID) -> Seller:
        """The seller the buyer wants to write to, or 404: looked up before the rest of what
        the buyer sent is checked, so an unknown seller is the answer to a wrong id."""
        return await self._conversations.seller(buyer.site, seller_id)

    async def start(
        self, buyer: Buyer, seller: Seller, context: Context
    ) -> tuple[BuyerConversation, bool]:
        self._limiter.take(self._who(buyer), "conversation")
        seller_id = seller.seller_id
        if not seller.chat_enabled:
            raise Forbidden(
                f"{seller.name} is not taking questions in chat", "BAZAAR_CHAT_DISABLED"
            )
        if context.type == ContextType.ORDER:
            await self._order_conversation(buyer, seller_id, context)
        conversation, created = await self._conversations.start_conversation(
            seller, buyer, context.as_told_by_buyer()
        )
        last = await self._store.last_messages([conversation.conversation_id])
        return (
            BuyerConversation(conversation, seller.name, last.get(conversation.conversation_id)),
            created,
        )

    async def _order_conversation(
        self, buyer: Buyer, seller_id: SellerID, context: Context
    ) -> Conversation:
        """An order's conversation is opened by the marketplace, which knows the order; the
        buyer's widget can only come back to it."""
        for conversation in await self._store.list_conversations(
            buyer.site, seller_id=seller_id, buyer_id=buyer.buyer_id
        ):
            if (conversation.context.type, conversation.context.id) == (context.type, context.id):
                return conversation
        raise Forbidden(
            "A conversation about an order is opened by the marketplace, not from the widget",
            "BAZAAR_ORDER_FROM_MARKETPLACE",
        )

    async def messages(
        self,
        buyer: Buyer,
        conversation_id: ConversationID,
        *,
        before: MessageID | None,
        after: MessageID | None,
        limit: int,
    ) -> list[Message]:
        conversation = await self.own_conversation(buyer, conversation_id)
        limit = min(max(limit, 1), MAX_PAGE)
        for anchor in (before, after):
            if anchor is not None:
                await message_in(self._store, conversation, anchor)
        if after is not None:
            return await self._store.list_messages(conversation_id, after=after, limit=limit)
        return await self._store.list_messages_before(conversation_id, before=before, limit=limit)

    async def post(
        self, buyer: Buyer, conversation_id: ConversationID, text: str, client_id: str
    ) -> tuple[Message, bool]:
        conversation = await self.own_conversation(buyer, conversation_id)
        self._limiter.take(self._who(buyer), "message")
        return await self._conversations.post_buyer_message(conversation, buyer, text, client_id)

    async def retry(self, buyer: Buyer, conversation_id: ConversationID, client_id: str) -> Message:
        conversation = await self.own_conversation(buyer, conversation_id)
        self._limiter.take(self._who(buyer), "message")
        return await self._conversations.retry_buyer_message(conversation, client_id)

    @contextlib.asynccontextmanager
    async def sending_file(
        self, buyer: Buyer, conversation_id: ConversationID
    ) -> AsyncIterator[Conversation]:
        """Everything that may refuse a file message, decided before its bytes are read:
        the buyer's own conversation, not blocked, an upload slot free (held until the
        block ends) and the rate limit. Yields the conversation for `post_file`."""
        conversation = await self.own_conversation(buyer, conversation_id)
        refuse_if_blocked(conversation)
        # The slot first: a file that waits for one costs the buyer no message of the limit.
        with self._uploads.hold(self._who(buyer)):
            self._limiter.take(self._who(buyer), "message")
            yield conversation

    async def post_file(
        self,
        buyer: Buyer,
        conversation: Conversation,
        text: str,
        client_id: str,
        data: bytes,
        name: str | None,
    ) -> tuple[Message, bool]:
        """A message with a file, inside `sending_file`: the file is checked and cleaned
        before anything is stored. A block that came while the file arrived is still
        refused, when the message is stored."""
        attachment = await self._files.accept_upload(data, name)
        return await self._conversations.post_buyer_message(
            conversation, buyer, text, client_id, attachment
        )

    async def attachment(
        self,
        buyer: Buyer,
        conversation_id: ConversationID,
        attachment_id: str,
        *,
        thumbnail: bool,
    ) -> Download:
        # Before the conversation is read: a flood of downloads costs no database reads.
        self._limiter.take(self._who(buyer), "download")
        conversation = await self.own_conversation(buyer, conversation_id)
        return await self._files.download(conversation, attachment_id, thumbnail=thumbnail)

    async def read(self, buyer: Buyer, conversation_id: ConversationID, up_to: MessageID) -> int:
        """Mark the seller's messages up to `up_to` read; returns what is still unread."""
        conversation = await self.own_conversation(buyer, conversation_id)
        self._limiter.take(self._who(buyer), "read")
        anchor = await message_in(self._store, conversation, up_to)
        await self._store.mark_read(
            conversation_id,
            SenderKind.BUYER,
            up_to,
            self._announcer.message_changed(conversation, "message.status"),
        )
        refreshed = await self.own_conversation(buyer, conversation_id)
        await self._store.add_frames(self._announcer.conversation_updated(refreshed))
        self._announcer.published(conversation)
        if anchor.event_id is not None:
            self._tasks.spawn(
                self._matrix_signal(
                    self._matrix.send_read_receipt(conversation, buyer, anchor.event_id)
                ),
                name=f"receipt:{conversation_id}",
            )
        return refreshed.unread_buyer

    async def set_block(
        self, buyer: Buyer, conversation_id: ConversationID, blocked: bool
    ) -> BuyerConversation:
        """The buyer blocks (or unblocks) the seller of this conversation."""
        conversation = await self.own_conversation(buyer, conversation_id)
        self._limiter.take(self._who(buyer), "conversation")
        await self._conversations.set_block(conversation, Side.BUYER, blocked)
        found = await self.conversations(buyer)
        return next(item for item in found if item.conversation.conversation_id == conversation_id)

    async def typing(self, buyer: Buyer, conversation_id: ConversationID, typing: bool) -> None:
        conversation = await self.own_conversation(buyer, conversation_id)
        self._limiter.take(self._who(buyer), "typing")
        if conversation.room_id is not None:
            await self._matrix_signal(self._matrix.set_typing(conversation, buyer, typing))

    @staticmethod
    async def _matrix_signal(signal: Awaitable[None]) -> None:
        """Receipts and typing are courtesy signals: a homeserver hiccup only loses one."""
        try:
            await signal
        except (HomeserverUnavailable, MatrixRejected) as error:
            logger.info("Could not pass a buyer signal to Matrix: %s", error)


def unread_total(conversations: Sequence[BuyerConversation]) -> int:
    return sum(item.conversation.unread_buyer for item in conversations)
