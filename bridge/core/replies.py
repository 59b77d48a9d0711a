"""What seller members do in a conversation room: reply, edit, take back, read, type."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from bridge.core.archive import Archive
from bridge.core.commands import SellerCommands, is_command
from bridge.core.contact_policy import ContactGuard, Guarded
from bridge.core.events import Announcer
from bridge.core.ids import (
    ConversationID,
    EventID,
    RoomID,
    UserID,
    attachment_id,
    new_message_id,
)
from bridge.core.metrics import NO_METER, Direction, Meter
from bridge.core.models import (
    Attachment,
    Conversation,
    ConversationState,
    Member,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
    Side,
)
from bridge.core.ports import MatrixPort
from bridge.core.response_time import ResponseTimes
from bridge.core.room_events import (
    ManagementRoom,
    MembershipChange,
    MessageEdit,
    PowerLevelsChange,
    ReadReceipt,
    Redaction,
    RoomMessage,
    TypingChange,
)
from bridge.core.storage import ConversationRecords, FeedWriter, MessageRecords, Parties
from bridge.core.team import AnsweringRoles
from bridge.core.translation import Rendering, Translations
from bridge.core.validation import MAX_TEXT_CHARS

logger = logging.getLogger(__name__)

# How far back to look for the language a buyer writes in, when their profile has none.
RECENT_FOR_LANGUAGE = 20


class SellerRepliesStore(Parties, ConversationRecords, MessageRecords, FeedWriter, Protocol):
    """The store as sellers' replies use it."""


class SellerReplies:
    def __init__(
        self,
        store: SellerRepliesStore,
        matrix: MatrixPort,
        answering: AnsweringRoles,
        announcer: Announcer,
        members_drifted: Callable[[Sequence[ConversationID]], Awaitable[None]],
        archive: Archive,
        commands: SellerCommands,
        translations: Translations,
        response_times: ResponseTimes | None = None,
        contact_guard: ContactGuard | None = None,
        meter: Meter = NO_METER,
    ) -> None:
        self._store = store
        self._meter = meter
        self._contact_guard = contact_guard
        self._matrix = matrix
        self._answering = answering
        self._announcer = announcer
        self._members_drifted = members_drifted
        self._commands = commands
        self._archive = archive
        self._translations = translations
        self._response_times = response_times
        self._typing: dict[RoomID, frozenset[UserID]] = {}

    async def _answering_member(
        self, conversation: Conversation, sender: UserID
    ) -> tuple[Seller, Member] | None:
        """The conversation's seller and the member who spoke, when the sender answers for
        the seller; anyone else is ignored."""
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        if seller is None:
            return None
        for member in self._answering.members(seller):
            if member.user_id == sender:
                return seller, member
        logger.info(
            "Ignoring %s in %s: not an allowed member of the seller", sender, conversation.room_id
        )
        return None

    async def _own_message(self, conversation: Conversation, target: EventID) -> Message | None:
        message = await self._store.message_by_event(target)
        if (
            message is None
            or message.conversation_id != conversation.conversation_id
            or message.sender != SenderKind.SELLER
            or message.deleted
        ):
            return None
        return message

    async def on_message(self, conversation: Conversation, said: RoomMessage) -> None:
        found = await self._answering_member(conversation, said.sender)
        if found is None:
            return
        seller, member = found
        if is_command(said.text) and said.attachment is None:
            await self._commands.run(
                conversation,
                seller,
                member,
                said.text,
                reply_to=said.reply_to,
                event_id=said.event_id,
            )
            return
        if conversation.state == ConversationState.BLOCKED:
            logger.info("Not relaying %s: the conversation is blocked", said.event_id)
            return
        await self.store_member_reply(
            conversation,
            seller,
            member,
            said.text[:MAX_TEXT_CHARS],
            html=said.html,
            attachments=() if said.attachment is None else (said.attachment,),
            sent_at=said.sent_at,
            event_id=said.event_id,
        )

    async def store_member_reply(
        self,
        conversation: Conversation,
        seller: Seller,
        member: Member,
        text: str,
        *,
        sent_at: datetime,
        html: str | None = None,
        attachments: Sequence[Attachment] = (),
        event_id: EventID | None = None,
        client_id: str | None = None,
    ) -> tuple[Message, bool]:
        """A member's words to the buyer, typed or from a template: in the buyer's language,
        stored as the seller's message under the member's name, and announced. A repeat of
        the same event or client id is stored once (False)."""
        received = time.monotonic()
        name = await self._matrix.display_name(member.user_id) or member.user_id
        message_id = new_message_id()
        rendering = await self._render(conversation, seller, text)
        message = Message(
            message_id=message_id,
            conversation_id=conversation.conversation_id,
            sender=SenderKind.SELLER,
            sender_name=name,
            text=rendering.text,
            lang=seller.language,
            status=MessageStatus.SENT,
            created_at=sent_at,
            client_id=client_id,
            sender_user_id=member.user_id,
            event_id=event_id,
            original=rendering.original,
            # The seller's formatting belongs to the words as written, not to a translation.
            html=html if rendering.original is None else None,
            attachments=tuple(
                replace(attachment, attachment_id=attachment_id(message_id, index))
                for index, attachment in enumerate(attachments, start=1)
            ),
            translation=rendering.note,
        )
        guarded = Guarded(message)
        if self._contact_guard is not None and self._contact_guard.applies(conversation):
            guarded = await self._contact_guard.guard(
                conversation, Side.SELLER, message, await self.buyer_language(conversation)
            )
            message = guarded.message
        stored, created = await self._store.add_message(
            message,
            [*self._announcer.message_created(conversation, message), *guarded.events],
            notices=guarded.notices,
        )
        if created:
            self._meter.message_sent(Direction.SELLER_TO_BUYER, time.monotonic() - received)
            await self._archive.reactivate(conversation)
            self._announcer.published(conversation)
            if self._contact_guard is not None:
                self._contact_guard.stored(conversation, guarded)
        if self._response_times is not None:
            # A repeat too: the wait's close may not have lived through a crash.
            await self._response_times.member_replied(conversation, seller, member, stored, created)
        return stored, created

    async def _render(self, conversation: Conversation, seller: Seller, text: str) -> Rendering:
        """The seller's words in the buyer's language, when the two differ."""
        if not (self._translations.enabled and conversation.translation_enabled):
            return Rendering(text, None, None)
        return await self._translations.render(
            text, seller.language, await self.buyer_language(conversation)
        )

    async def buyer_language(self, conversation: Conversation) -> str | None:
        """What the buyer reads: their profile's language, else that of their latest words."""
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        if buyer is not None and buyer.language:
            return buyer.language
        recent = await self._store.list_messages_before(
            conversation.conversation_id, before=None, limit=RECENT_FOR_LANGUAGE
        )
        for message in reversed(recent):
            if message.sender == SenderKind.BUYER and message.lang:
                return message.lang
        return None

    async def on_management_message(self, room: ManagementRoom, said: RoomMessage) -> None:
        """A message in the seller's management room: commands for the bot."""
        seller = await self._store.get_seller(room.site, room.seller_id)
        if seller is None or not is_command(said.text):
            return
        member = next(
            (m for m in self._answering.members(seller) if m.user_id == said.sender), None
        )
        if member is None:
            return
        await self._commands.run_management(
            room.room_id, seller, member, said.text, event_id=said.event_id
        )

    async def on_edit(self, conversation: Conversation, edit: MessageEdit) -> None:
        found = await self._answering_member(conversation, edit.sender)
        if found is None:
            return
        seller, _ = found
        original = await self._own_message(conversation, edit.target)
        # Only the author may edit, as Matrix clients assume; anything else is ignored.
        if original is None or original.sender_user_id != edit.sender:
            return
        rendering = await self._render(conversation, seller, edit.text[:MAX_TEXT_CHARS])
        await self._store.edit_message(
            original.message_id,
            rendering.text,
            edit.html if rendering.original is None else None,
            edit.edited_at,
            self._announcer.message_changed(conversation, "message.updated"),
            original=rendering.original,
            note=rendering.note,
        )
        self._announcer.published(conversation)

    async def on_redaction(self, conversation: Conversation, redaction: Redaction) -> None:
        # The homeserver allowed the redaction, so the sender had the right to make it.
        original = await self._own_message(conversation, redaction.target)
        if original is None:
            return
        await self._store.delete_message(
            original.message_id,
            redaction.redacted_at,
            self._announcer.message_changed(conversation, "message.deleted"),
        )
        self._announcer.published(conversation)

    async def on_membership(self, conversation: Conversation, change: MembershipChange) -> None:
        """Only the seller's answering members may be in a room; anyone else is removed."""
        if change.membership not in ("join", "invite", "knock"):
            return
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        allowed = self._answering.user_ids(seller)
        if change.subject not in allowed:
            logger.warning(
                "%s got into %s (%s) without being one who answers for the seller; removing",
                change.subject,
                change.room_id,
                change.membership,
            )
            await self._members_drifted([conversation.conversation_id])

    async def on_power_levels(self, conversation: Conversation, change: PowerLevelsChange) -> None:
        """Power levels are the bot's to set; a change by anyone else is reverted."""
        logger.warning(
            "%s changed the power levels of %s; reverting", change.sender, change.room_id
        )
        await self._members_drifted([conversation.conversation_id])

    async def on_read(self, conversation: Conversation, receipt: ReadReceipt) -> None:
        """A member's read receipt: the buyer's messages up to that event are read (✓✓)."""
        if await self._answering_member(conversation, receipt.reader) is None:
            return
        anchor = await self._store.message_by_event(receipt.event_id)
        if anchor is None or anchor.conversation_id != conversation.conversation_id:
            return
        changed = await self._store.mark_read(
            conversation.conversation_id,
            SenderKind.SELLER,
            anchor.message_id,
            self._announcer.message_changed(conversation, "message.status"),
        )
        if changed:
            self._announcer.published(conversation)

    async def on_typing(self, conversation: Conversation, change: TypingChange) -> None:
        """The room's typing list changed; tell the buyer when a member starts or stops."""
        room_id, typing = change.room_id, change.typing
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        if seller is None:
            return
        members = self._answering.user_ids(seller)
        now_typing = frozenset(typing & members)
        before = self._typing.get(room_id, frozenset())
        if now_typing == before:
            return
        self._typing[room_id] = now_typing
        names = [await self._matrix.display_name(u) or u for u in sorted(now_typing)]
        await self._store.add_frames(
            self._announcer.typing(conversation, bool(now_typing), ", ".join(names))
        )
        self._announcer.published(conversation)
