"""A seller's canned replies (templates): kept per seller, managed from the management room
and through the marketplace API, and sent by `!t` in a conversation room as the member's
own reply, filled from the conversation and translated like any reply."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Protocol

from bridge.core.commands import BadCommand, Command, ManagementCall, RoomCall
from bridge.core.ids import RoomID, SellerID, SiteID, UserID
from bridge.core.models import (
    Attachment,
    Conversation,
    ConversationState,
    Member,
    Message,
    Seller,
    Template,
)
from bridge.core.placeholders import Filling
from bridge.core.ports import HomeserverUnavailable, MatrixRejected
from bridge.core.seller_storage import TemplateRecords
from bridge.core.storage import Parties
from bridge.core.template_rules import (
    _position,
    check_name,
    check_text,
    management_listing,
    next_position,
    ordered,
    parse_position,
    pick,
    room_listing,
)
from bridge.core.validation import MAX_TEXT_CHARS
from bridge.errors import BadRequest, BridgeError, NotFound

logger = logging.getLogger(__name__)

TEMPLATES_HELP = ("!templates — your templates, in order, with their positions",)
TEMPLATE_HELP = (
    "!template add <name> <text> — a new template (placeholders: {buyer}, {seller}, {member}, "
    "{title}, {order}, {url})",
    "!template edit <name> <text> — new words for a template",
    "!template position <name> <number> — where it stands in the list (lower comes first)",
    "!template hide <name> / !template show <name> — leave it out of !t, or bring it back",
    "!template delete <name> — remove it",
)
T_HELP = (
    "!t — the templates, numbered",
    "!t <number or name> — send that template to the buyer as your reply",
)


class TemplateDeskStore(Parties, TemplateRecords, Protocol):
    """The store as templates use it."""


class TemplateFiles(Protocol):
    """A template's file: checked like a buyer's upload, kept by sha256."""

    max_bytes: int

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment: ...

    async def read(self, sha256: str) -> bytes | None: ...


class TemplateRooms(Protocol):
    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None: ...

    async def send_bot_file(self, room_id: RoomID, attachment: Attachment, data: bytes) -> None: ...

    async def display_name(self, user_id: UserID) -> str | None: ...


class MemberReplies(Protocol):
    """The way a member's reply reaches the buyer (core/replies.py)."""

    async def store_member_reply(
        self,
        conversation: Conversation,
        seller: Seller,
        member: Member,
        text: str,
        *,
        sent_at: datetime,
        attachments: Sequence[Attachment] = (),
        client_id: str | None = None,
    ) -> tuple[Message, bool]: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TemplateDesk:
    """Templates for the marketplace's API and the members' commands."""

    def __init__(
        self,
        store: TemplateDeskStore,
        rooms: TemplateRooms,
        files: TemplateFiles,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._store = store
        self._rooms = rooms
        self._files = files
        self._now = now
        self._replies: MemberReplies | None = None

    def reply_through(self, replies: MemberReplies) -> None:
        """The replies service is built after the commands that include `!t`, so it is
        handed over once it exists."""
        self._replies = replies

    @property
    def max_upload_bytes(self) -> int:
        return self._files.max_bytes

    # The marketplace's API

    async def _seller(self, site: SiteID, seller_id: SellerID) -> Seller:
        seller = await self._store.get_seller(site, seller_id)
        if seller is None:
            raise NotFound(f"Unknown seller '{seller_id}'", "BAZAAR_UNKNOWN_SELLER")
        return seller

    async def templates(self, site: SiteID, seller_id: SellerID) -> list[Template]:
        await self._seller(site, seller_id)
        return ordered(await self._store.list_templates(site, seller_id))

    async def template(self, site: SiteID, seller_id: SellerID, name: str) -> Template:
        await self._seller(site, seller_id)
        found = await self._store.get_template(site, seller_id, name)
        if found is None:
            raise NotFound(f"Unknown template '{name}'", "BAZAAR_UNKNOWN_TEMPLATE")
        return found

    async def put(
        self,
        site: SiteID,
        seller_id: SellerID,
        name: str,
        text: str,
        *,
        position: float | None = None,
        visible: bool | None = None,
    ) -> tuple[Template, bool]:
        """Make or replace a template; what is not given stays (a new one goes last, shown).
        Its file stays with it."""
        await self._seller(site, seller_id)
        existing = await self._store.get_template(site, seller_id, name)
        if position is None:
            if existing is not None:
                position = existing.position
            else:
                position = next_position(await self._store.list_templates(site, seller_id))
        template = Template(
            site=site,
            seller_id=seller_id,
            name=name,
            text=text,
            position=position,
            visible=visible if visible is not None else (existing.visible if existing else True),
            attachment=existing.attachment if existing else None,
        )
        created = await self._store.put_template(template)
        return template, created

    async def delete(self, site: SiteID, seller_id: SellerID, name: str) -> None:
        await self._seller(site, seller_id)
        if not await self._store.delete_template(site, seller_id, name):
            raise NotFound(f"Unknown template '{name}'", "BAZAAR_UNKNOWN_TEMPLATE")

    async def attach(self, template: Template, data: bytes, filename: str | None) -> Template:
        """Give a template its file, checked and cleaned like a buyer's upload."""
        attachment = await self._files.accept_upload(data, filename)
        return await self._set_file(template, attachment)

    async def detach(self, template: Template) -> Template:
        return await self._set_file(template, None)

    async def _set_file(self, template: Template, attachment: Attachment | None) -> Template:
        changed = await self._store.set_template_file(
            template.site, template.seller_id, template.name, attachment
        )
        if changed is None:
            raise NotFound(f"Unknown template '{template.name}'", "BAZAAR_UNKNOWN_TEMPLATE")
        return changed

    # Commands

    @property
    def room_commands(self) -> list[Command[RoomCall]]:
        return [Command("t", T_HELP, self._send_command)]

    @property
    def management_commands(self) -> list[Command[ManagementCall]]:
        return [
            Command("templates", TEMPLATES_HELP, self._list_command),
            Command("template", TEMPLATE_HELP, self._manage_command),
        ]

    async def _list_command(self, call: ManagementCall) -> str:
        seller = call.seller
        return management_listing(await self._store.list_templates(seller.site, seller.seller_id))

    async def _manage_command(self, call: ManagementCall) -> str:
        action, _, rest = call.args.partition(" ")
        action = action.lower()
        name, _, value = rest.strip().partition(" ")
        value = value.strip()
        actions = ("add", "edit", "position", "hide", "show", "delete")
        if action not in actions:
            raise BadCommand(
                f"Say what to do: !template {' | '.join(actions)}."
                if not action
                else f"“{action}” is not something I can do with a template."
            )
        if not name:
            raise BadCommand(f"Name the template: !template {action} <name> ….")
        seller = call.seller
        try:
            return await self._manage(seller, action, check_name(name), value)
        except BridgeError as error:
            raise BadCommand(_said(error)) from None

    async def _manage(self, seller: Seller, action: str, name: str, value: str) -> str:
        site, seller_id = seller.site, seller.seller_id
        existing = await self._store.get_template(site, seller_id, name)
        if action == "add":
            if existing is not None:
                raise BadRequest(f"There is already a template “{name}”: say !template edit.")
            template, _ = await self.put(site, seller_id, name, check_text(value))
            return f"Added template “{name}” at position {_position(template.position)}."
        if existing is None:
            return f"There is no template “{name}”. Say !templates to see them."
        if action == "edit":
            await self.put(site, seller_id, name, check_text(value))
            return f"Template “{name}” now reads:\n{value}"
        if action == "position":
            if not value:
                raise BadRequest("Give the position: a number, such as 1 or 2.5.")
            position = parse_position(value)
            await self._store.put_template(replace(existing, position=position))
            return f"Template “{name}” is now at position {_position(position)}."
        if action in ("hide", "show"):
            visible = action == "show"
            await self._store.put_template(replace(existing, visible=visible))
            return (
                f"Template “{name}” is listed by !t again."
                if visible
                else f"Template “{name}” is hidden: !t no longer lists it (!template show "
                f"{name} brings it back)."
            )
        await self._store.delete_template(site, seller_id, name)
        return f"Deleted template “{name}”."

    async def visible(self, seller: Seller) -> list[Template]:
        """The templates `!t` lists (and the context pane shows), in order."""
        return [
            t
            for t in ordered(await self._store.list_templates(seller.site, seller.seller_id))
            if t.visible
        ]

    async def _send_command(self, call: RoomCall) -> str | None:
        conversation, seller = call.conversation, call.seller
        visible = await self.visible(seller)
        if not call.args:
            return room_listing(visible)
        template = pick(visible, call.args)
        if template is None:
            shown = call.args if len(call.args) <= 40 else call.args[:39] + "…"
            return f"There is no template “{shown}”.\n{room_listing(visible)}"
        if conversation.state == ConversationState.BLOCKED:
            return "This conversation is blocked: nothing was sent."
        return await self.send(
            conversation,
            seller,
            call.member,
            template,
            # The command's event: a repeat of the same transaction sends nothing twice.
            client_id=f"template:{call.event_id}" if call.event_id else None,
        )

    async def send(
        self,
        conversation: Conversation,
        seller: Seller,
        member: Member,
        template: Template,
        *,
        client_id: str | None = None,
    ) -> str | None:
        """The template, filled, as the member's reply; the room sees what was sent."""
        if self._replies is None:
            raise RuntimeError("TemplateDesk.reply_through was not called")
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        name = await self._rooms.display_name(member.user_id) or member.user_id
        text = Filling.of(conversation, seller, buyer, member=name).fill(template.text)
        text = text.strip()[:MAX_TEXT_CHARS]
        attachment = template.attachment
        if not text and attachment is None:
            return f"Template “{template.name}” comes out empty here: nothing was sent."
        message, created = await self._replies.store_member_reply(
            conversation,
            seller,
            member,
            text,
            sent_at=self._now(),
            attachments=() if attachment is None else (attachment,),
            client_id=client_id,
        )
        if not created:
            return None
        room_id = conversation.room_id
        if room_id is None:
            return None
        notice = f"Sent “{template.name}” to the buyer as {name}'s reply:\n{text}"
        if message.original is not None and message.translation is not None:
            notice += f"\n\nThe buyer reads ({message.translation.target}):\n{message.text}"
        await self._rooms.send_notice(room_id, notice)
        if attachment is not None:
            await self._show_file(room_id, attachment)
        return None

    async def _show_file(self, room_id: RoomID, attachment: Attachment) -> None:
        data = await self._files.read(attachment.sha256) if attachment.sha256 else None
        if data is None:
            logger.warning("The file %s of a template is gone from the store", attachment.name)
            return
        try:
            await self._rooms.send_bot_file(room_id, attachment, data)
        except (HomeserverUnavailable, MatrixRejected) as error:
            # The buyer has it already; only the room's copy is missing.
            logger.warning("Could not show a template's file in %s: %s", room_id, error)


def _said(error: BridgeError) -> str:
    """An API error's message as a sentence for a notice."""
    text = error.error.replace("'text'", "The text").replace("'position'", "The position")
    return text if text.endswith((".", "!", "?")) else text + "."
