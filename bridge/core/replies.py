"""What seller members do in a conversation room: reply, edit, take back, read, type."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import datetime

from bridge.core.archive import Archive
from bridge.core.commands import SellerCommands, is_command
from bridge.core.events import Announcer
from bridge.core.ids import (
    ConversationID,
    EventID,
    RoomID,
    SellerID,
    SiteID,
    UserID,
    attachment_id,
    new_message_id,
)
from bridge.core.models import (
    Attachment,
    Conversation,
    ConversationState,
    Member,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
)
from bridge.core.ports import MatrixPort, Repository
from bridge.core.team import AnsweringRoles
from bridge.core.translation import Rendering, Translations
from bridge.core.validation import MAX_TEXT_CHARS

logger = logging.getLogger(__name__)

# How far back to look for the language a buyer writes in, when their profile has none.
RECENT_FOR_LANGUAGE = 20


class SellerReplies:
    def __init__(
        self,
        repository: Repository,
        matrix: MatrixPort,
        answering: AnsweringRoles,
        announcer: Announcer,
        members_drifted: Callable[[Sequence[ConversationID]], Awaitable[None]],
        archive: Archive,
        commands: SellerCommands,
        translations: Translations,
    ) -> None:
        self._repository = repository
        self._matrix = matrix
        self._answering = answering
        self._announcer = announcer
        self._members_drifted = members_drifted
        self._commands = commands
        self._archive = archive
        self._translations = translations
        self._typing: dict[RoomID, frozenset[UserID]] = {}

    async def _member_room(
        self, room_id: RoomID, sender: UserID
    ) -> tuple[Conversation, Seller, Member] | None:
        conversation = await self._repository.conversation_by_room(room_id)
        if conversation is None:
            return None
        seller = await self._repository.get_seller(conversation.site, conversation.seller_id)
        if seller is None:
            return None
        for member in self._answering.members(seller):
            if member.user_id == sender:
                return conversation, seller, member
        logger.info("Ignoring %s in %s: not an allowed member of the seller", sender, room_id)
        return None

    async def _own_message(self, conversation: Conversation, target: EventID) -> Message | None:
        message = await self._repository.message_by_event(target)
        if (
            message is None
            or message.conversation_id != conversation.conversation_id
            or message.sender != SenderKind.SELLER
            or message.deleted
        ):
            return None
        return message

    async def on_message(
        self,
        room_id: RoomID,
        sender: UserID,
        event_id: EventID,
        text: str,
        html: str | None,
        sent_at: datetime,
        *,
        attachments: Sequence[Attachment] = (),
        reply_to: EventID | None = None,
    ) -> None:
        found = await self._member_room(room_id, sender)
        if found is None:
            return
        conversation, seller, member = found
        if is_command(text) and not attachments:
            await self._commands.run(conversation, sender, text, reply_to=reply_to)
            return
        if conversation.state == ConversationState.BLOCKED:
            logger.info("Not relaying %s: the conversation is blocked", event_id)
            return
        name = await self._matrix.display_name(member.user_id) or member.user_id
        message_id = new_message_id()
        text = text[:MAX_TEXT_CHARS]
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
        _, created = await self._repository.add_message(
            message, self._announcer.message_created(conversation, message)
        )
        if created:
            await self._archive.reactivate(conversation)
            self._announcer.published(conversation)

    async def _render(self, conversation: Conversation, seller: Seller, text: str) -> Rendering:
        """The seller's words in the buyer's language, when the two differ."""
        if not (self._translations.enabled and conversation.translation_enabled):
            return Rendering(text, None, None)
        return await self._translations.render(
            text, seller.language, await self.buyer_language(conversation)
        )

    async def buyer_language(self, conversation: Conversation) -> str | None:
        """What the buyer reads: their profile's language, else that of their latest words."""
        buyer = await self._repository.get_buyer(conversation.site, conversation.buyer_id)
        if buyer is not None and buyer.language:
            return buyer.language
        recent = await self._repository.list_messages_before(
            conversation.conversation_id, before=None, limit=RECENT_FOR_LANGUAGE
        )
        for message in reversed(recent):
            if message.sender == SenderKind.BUYER and message.lang:
                return message.lang
        return None

    async def on_management_message(
        self, room_id: RoomID, site: SiteID, seller_id: SellerID, sender: UserID, text: str
    ) -> None:
        """A message in the seller's management room: commands for the bot."""
        seller = await self._repository.get_seller(site, seller_id)
        if seller is None or not is_command(text):
            return
        if sender not in self._answering.user_ids(seller):
            return
        conversations = await self._repository.list_conversations(site, seller_id=seller_id)
        await self._commands.run_management(room_id, conversations, text)

    async def on_edit(
        self,
        room_id: RoomID,
        sender: UserID,
        target: EventID,
        new_text: str,
        new_html: str | None,
        edited_at: datetime,
    ) -> None:
        found = await self._member_room(room_id, sender)
        if found is None:
            return
        conversation, seller, _ = found
        original = await self._own_message(conversation, target)
        # Only the author may edit, as Matrix clients assume; anything else is ignored.
        if original is None or original.sender_user_id != sender:
            return
        rendering = await self._render(conversation, seller, new_text[:MAX_TEXT_CHARS])
        await self._repository.edit_message(
            original.message_id,
            rendering.text,
            new_html if rendering.original is None else None,
            edited_at,
            self._announcer.message_changed(conversation, "message.updated"),
            original=rendering.original,
            note=rendering.note,
        )
        self._announcer.published(conversation)

    async def on_redaction(
        self, room_id: RoomID, sender: UserID, target: EventID, redacted_at: datetime
    ) -> None:
        # The homeserver allowed the redaction, so the sender had the right to make it.
        conversation = await self._repository.conversation_by_room(room_id)
        if conversation is None:
            return
        original = await self._own_message(conversation, target)
        if original is None:
            return
        await self._repository.delete_message(
            original.message_id,
            redacted_at,
            self._announcer.message_changed(conversation, "message.deleted"),
        )
        self._announcer.published(conversation)

    async def on_membership(self, room_id: RoomID, user_id: UserID, membership: str) -> None:
        """Only the seller's answering members may be in a room; anyone else is removed."""
        if membership not in ("join", "invite", "knock"):
            return
        conversation = await self._repository.conversation_by_room(room_id)
        if conversation is None:
            return
        seller = await self._repository.get_seller(conversation.site, conversation.seller_id)
        allowed = self._answering.user_ids(seller)
        if user_id not in allowed:
            logger.warning(
                "%s got into %s (%s) without being one who answers for the seller; removing",
                user_id,
                room_id,
                membership,
            )
            await self._members_drifted([conversation.conversation_id])

    async def on_power_levels(self, room_id: RoomID, sender: UserID) -> None:
        """Power levels are the bot's to set; a change by anyone else is reverted."""
        conversation = await self._repository.conversation_by_room(room_id)
        if conversation is not None:
            logger.warning("%s changed the power levels of %s; reverting", sender, room_id)
            await self._members_drifted([conversation.conversation_id])

    async def on_read(self, room_id: RoomID, reader: UserID, event_id: EventID) -> None:
        """A member's read receipt: the buyer's messages up to that event are read (✓✓)."""
        found = await self._member_room(room_id, reader)
        if found is None:
            return
        conversation, _, _ = found
        anchor = await self._repository.message_by_event(event_id)
        if anchor is None or anchor.conversation_id != conversation.conversation_id:
            return
        changed = await self._repository.mark_read(
            conversation.conversation_id,
            SenderKind.SELLER,
            anchor.message_id,
            self._announcer.message_changed(conversation, "message.status"),
        )
        if changed:
            self._announcer.published(conversation)

    async def on_typing(self, room_id: RoomID, typing: frozenset[UserID]) -> None:
        """The room's typing list changed; tell the buyer when a member starts or stops."""
        conversation = await self._repository.conversation_by_room(room_id)
        if conversation is None:
            return
        seller = await self._repository.get_seller(conversation.site, conversation.seller_id)
        if seller is None:
            return
        members = self._answering.user_ids(seller)
        now_typing = frozenset(typing & members)
        before = self._typing.get(room_id, frozenset())
        if now_typing == before:
            return
        self._typing[room_id] = now_typing
        names = [await self._matrix.display_name(u) or u for u in sorted(now_typing)]
        await self._repository.add_frames(
            self._announcer.typing(conversation, bool(now_typing), ", ".join(names))
        )
        self._announcer.published(conversation)
