"""How a conversation looks in Matrix: its room, state, power levels and the buyer's ghost."""

from __future__ import annotations

import hashlib
import html
import logging
import re
import secrets
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bridge.core.ids import EventID, MessageID, RoomID, SiteID, UserID
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    Buyer,
    Context,
    ContextType,
    Conversation,
    Member,
    Message,
    Seller,
    Side,
)
from bridge.core.ports import MatrixRejected
from bridge.matrix.bot import Bot
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.spaces import SellerSpaces, SpaceMemory, tolerant

logger = logging.getLogger(__name__)

# How far back to look for a buyer message whose send lost its answer: events older than
# the message by more than the margin can't be it, and the pages bound the cost.
LOOKBACK_MARGIN_MS = 60_000
LOOKBACK_PAGES = 20

CONVERSATION_STATE = "io.bazaar.conversation"
CONTEXT_STATE = "io.bazaar.context"
BRIDGE_STATE_TYPES = ("m.bridge", "uk.half-shot.bridge")
MESSAGE_ID_KEY = "io.bazaar.message_id"

BOT_LEVEL = 100
MEMBER_LEVEL = 50
BUYER_LEVEL = 0
BLOCKED_LEVEL = -1

# Events only the bot may send: the room's identity and everything that carries state.
_BOT_ONLY_EVENTS = (
    "m.room.name",
    "m.room.topic",
    "m.room.avatar",
    "m.room.power_levels",
    "m.room.history_visibility",
    "m.room.join_rules",
    "m.room.encryption",
    "m.room.server_acl",
    "m.room.tombstone",
    "m.room.canonical_alias",
    "m.space.parent",
    CONVERSATION_STATE,
    CONTEXT_STATE,
    *BRIDGE_STATE_TYPES,
)


def buyer_message_content(message: Message) -> dict[str, Any]:
    """A buyer's message as a Matrix event: text, or a file with the text as its caption;
    a translation shows the original behind a spoiler and keeps it in the content."""
    content: dict[str, Any] = {"msgtype": "m.text", "body": message.text}
    if message.attachments:
        # One file per buyer message; the widget sends one at a time.
        content = _file_content(message.attachments[0], caption=message.text)
    content[MESSAGE_ID_KEY] = message.message_id
    note = message.translation
    if note is not None:
        content["io.bazaar.translation"] = {
            "from": note.source,
            "to": note.target,
            "provider": note.provider,
            **({"failed": True} if note.failed else {}),
        }
    if message.original is not None:
        content["io.bazaar.original"] = {
            "body": message.original.text,
            "lang": message.original.lang,
        }
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = (
            f"{_html_lines(message.text)}<br><span data-mx-spoiler>"
            f"{_html_lines(message.original.text)}</span>"
        )
    elif note is not None and note.failed and message.text:
        content["format"] = "org.matrix.custom.html"
        content["formatted_body"] = (
            f"{_html_lines(message.text)}<br><em>(not translated: the translation service "
            "did not answer)</em>"
        )
    return content


def _file_content(attachment: Attachment, caption: str) -> dict[str, Any]:
    info: dict[str, Any] = {"mimetype": attachment.content_type, "size": attachment.size}
    if attachment.width is not None and attachment.height is not None:
        info["w"], info["h"] = attachment.width, attachment.height
    thumbnail = attachment.thumbnail
    if thumbnail is not None and thumbnail.mxc is not None:
        info["thumbnail_url"] = thumbnail.mxc
        info["thumbnail_info"] = {
            "mimetype": thumbnail.content_type,
            "size": thumbnail.size,
            "w": thumbnail.width,
            "h": thumbnail.height,
        }
    return {
        "msgtype": "m.image" if attachment.kind == AttachmentKind.IMAGE else "m.file",
        # With a caption, `body` is the caption and `filename` the file's name (Matrix 1.10).
        "body": caption or attachment.name,
        "filename": attachment.name,
        "url": attachment.mxc,
        "info": info,
    }


def _html_lines(text: str) -> str:
    return html.escape(text).replace("\n", "<br>")


class ImageSource(Protocol):
    async def fetch(self, url: str) -> ImageLike | None: ...


class ImageLike(Protocol):
    @property
    def data(self) -> bytes: ...

    @property
    def content_type(self) -> str: ...

    @property
    def filename(self) -> str: ...


class GhostMemory(Protocol):
    """Remembers which ghosts are registered and under which name, across restarts."""

    async def ghost_display_name(self, user_id: UserID) -> tuple[bool, str | None]: ...

    async def remember_ghost(self, user_id: UserID, display_name: str | None) -> None: ...


def room_name(buyer: Buyer, conversation: Conversation) -> str:
    return f"{buyer.name} · {conversation.context.title}"[:255]


# Words that already say what a conversation is about, besides the kind's English name:
# "Заказ №1001" needs no "Order: " before it. Whole words, in a few languages shops write
# in; an inflected form ("заказа") is not caught, and then the kind stays in front.
_KIND_WORDS = {
    ContextType.ORDER: frozenset(
        {"заказ", "замовлення", "zamówienie", "bestellung", "commande", "pedido", "ordine"}
    ),
}


def _titled_by_kind(context: Context) -> bool:
    kind = context.type
    words = set(re.findall(r"\w+", context.title.casefold()))
    return kind.value in words or not words.isdisjoint(_KIND_WORDS.get(kind, ()))


def room_topic(conversation: Conversation) -> str:
    context = conversation.context
    title = context.title
    parts = [title if _titled_by_kind(context) else f"{context.type.value.capitalize()}: {title}"]
    if context.price:
        parts.append(f"{context.price} {context.currency or ''}".strip())
    if context.status:
        parts.append(context.status)
    if context.url:
        parts.append(context.url)
    if context.from_buyer:
        parts.append("as the buyer's page gave it")
    return " · ".join(parts)


def power_levels(
    bot: UserID, members: Sequence[Member], ghost: UserID, *, list_bot: bool
) -> dict[str, Any]:
    users: dict[str, int] = {member.user_id: MEMBER_LEVEL for member in members}
    users[ghost] = BUYER_LEVEL
    if list_bot:
        users[bot] = BOT_LEVEL
    return {
        "users": users,
        "users_default": 0,
        "events_default": 0,
        "state_default": BOT_LEVEL,
        "invite": BOT_LEVEL,
        "kick": BOT_LEVEL,
        "ban": BOT_LEVEL,
        "redact": BOT_LEVEL,
        "events": dict.fromkeys(_BOT_ONLY_EVENTS, BOT_LEVEL),
        "notifications": {"room": BOT_LEVEL},
    }


class MatrixRooms:
    """The domain's `MatrixPort`, on top of the gateway."""

    def __init__(
        self,
        gateway: MatrixGateway,
        names: MatrixNames,
        ghosts: GhostMemory,
        spaces: SpaceMemory,
        images: ImageSource,
        bridge_id: str,
        admins: Mapping[SiteID, tuple[UserID, ...]],
        *,
        bot_name: str,
        room_version: str | None,
    ) -> None:
        self._gateway = gateway
        self.bot = Bot(gateway, names.bot, bot_name, room_version)
        self.spaces = SellerSpaces(gateway, self.bot, names, spaces, admins)
        self._images = images
        self._avatars: dict[str, str] = {}
        # Ghosts registered and named in this run: no store read before each message.
        self._ready_ghosts: dict[UserID, str] = {}
        self._names = names
        self._ghosts = ghosts
        self._bridge_id = bridge_id
        self._display_names: dict[UserID, str | None] = {}

    async def avatar(self, image_url: str | None) -> str | None:
        """The mxc:// URI of the product image, uploaded once per image URL."""
        if image_url is None:
            return None
        if image_url not in self._avatars:
            image = await self._images.fetch(image_url)
            if image is None:
                return None
            self._avatars[image_url] = await self._gateway.upload(
                image.data, image.content_type, image.filename
            )
        return self._avatars[image_url]

    def conversation_state(self, conversation: Conversation) -> dict[str, Any]:
        return {
            "site": conversation.site,
            "conversation_id": conversation.conversation_id,
            "seller_id": conversation.seller_id,
            "buyer_id": conversation.buyer_id,
            "state": conversation.state.value,
        }

    def _bridge_info(self, conversation: Conversation, site_name: str, name: str) -> dict[str, Any]:
        channel: dict[str, Any] = {"id": conversation.conversation_id, "displayname": name}
        if conversation.context.url:
            channel["external_url"] = conversation.context.url
        return {
            "bridgebot": self._names.bot,
            "creator": self._names.bot,
            "protocol": {"id": self._bridge_id, "displayname": "Bazaar"},
            "network": {"id": conversation.site, "displayname": site_name},
            "channel": channel,
        }

    async def ensure_ghost(self, buyer: Buyer) -> UserID:
        ghost = self._names.ghost(buyer.site, buyer.buyer_id)
        if self._ready_ghosts.get(ghost) == buyer.name:
            return ghost
        known, name = await self._ghosts.ghost_display_name(ghost)
        if not known:
            await self._gateway.register_ghost(ghost[1:].split(":", 1)[0])
            await self._ghosts.remember_ghost(ghost, None)
        if name != buyer.name:
            await self._gateway.set_display_name(ghost, buyer.name)
            await self._ghosts.remember_ghost(ghost, buyer.name)
        self._ready_ghosts[ghost] = buyer.name
        return ghost

    async def create_conversation_room(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> RoomID:
        """One `createRoom` with all the room's state, so a client folds it into "created
        and configured the room"; after it come only the memberships: the invites, which
        can't be sent before the room exists, and the ghost's join, which needs its invite.
        """
        ghost = await self.ensure_ghost(buyer)
        # The Space first, so the room is made knowing its parent.
        space = await self.spaces.ensure(seller, members, site_name)
        name = room_name(buyer, conversation)
        state_key = f"io.bazaar://{conversation.site}/{conversation.conversation_id}"
        bridge_info = self._bridge_info(conversation, site_name, name)
        initial_state: list[dict[str, Any]] = [
            {
                "type": CONVERSATION_STATE,
                "state_key": "",
                "content": self.conversation_state(conversation),
            },
            {"type": CONTEXT_STATE, "state_key": "", "content": conversation.context.to_json()},
            *(
                {"type": kind, "state_key": state_key, "content": bridge_info}
                for kind in BRIDGE_STATE_TYPES
            ),
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "forbidden"},
            },
            self.spaces.parent_state(space),
        ]
        avatar = await self.avatar(conversation.context.image_url)
        if avatar is not None:
            initial_state.append(
                {"type": "m.room.avatar", "state_key": "", "content": {"url": avatar}}
            )
        alias_localpart = self._names.room_alias_localpart(
            conversation.site, conversation.conversation_id
        )
        invite = [*(member.user_id for member in members), ghost]
        list_bot = await self.bot.lists_itself()
        new = True
        try:
            room_id = await self.bot.create_room(
                alias_localpart=alias_localpart,
                name=name,
                topic=room_topic(conversation),
                invite=invite,
                initial_state=initial_state,
                power_levels=power_levels(self._names.bot, members, ghost, list_bot=list_bot),
            )
            logger.info("Made room %s for %s", room_id, conversation.conversation_id)
        except MatrixRejected as error:
            # The alias makes creation idempotent: an earlier attempt made the room but
            # did not live to record it.
            if error.errcode != "M_ROOM_IN_USE":
                raise
            room_id = await self._recover_room(conversation, invite)
            # That attempt may have put it in a section already.
            new = False
        await self._gateway.join(room_id, ghost)
        await self.spaces.place(room_id, conversation.state, space, new=new)
        return room_id

    async def _recover_room(self, conversation: Conversation, invite: Sequence[UserID]) -> RoomID:
        alias = self._names.room_alias(conversation.site, conversation.conversation_id)
        room_id = await self._gateway.resolve_alias(alias)
        if room_id is None:
            raise MatrixRejected("M_NOT_FOUND", f"{alias} is taken but does not resolve")
        state = await self._gateway.room_state(room_id, CONVERSATION_STATE)
        if state is None or state.get("conversation_id") != conversation.conversation_id:
            raise MatrixRejected("BAZAAR_ROOM_MISMATCH", f"{alias} points at a foreign room")
        # The earlier attempt may have stopped before its invites went out.
        for user_id in invite:
            try:
                await self.bot.invite(room_id, user_id)
            except MatrixRejected as error:
                logger.debug("Re-invite of %s to %s: %s", user_id, room_id, error)
        logger.info("Found room %s for %s by its alias", room_id, conversation.conversation_id)
        return room_id

    async def send_buyer_message(
        self, conversation: Conversation, buyer: Buyer, message: Message
    ) -> EventID:
        if conversation.room_id is None:
            raise ValueError("conversation has no room yet")
        ghost = await self.ensure_ghost(buyer)
        return await self._gateway.send(
            conversation.room_id,
            "m.room.message",
            buyer_message_content(message),
            txn_id=f"bazaar-{message.message_id}",
            as_user=ghost,
            ts=int(message.created_at.timestamp() * 1000),
        )

    async def find_buyer_messages(
        self,
        conversation: Conversation,
        buyer: Buyer,
        message_ids: Collection[MessageID],
        since: datetime,
    ) -> dict[MessageID, EventID]:
        """Look back through the ghost's messages in the room for these message ids.

        A buyer message's event carries the message's creation time (`?ts=`), so the look
        stops at events older than `since`, less a margin for a clock that stepped back;
        and after a bounded number of pages whatever happens."""
        room_id = conversation.room_id
        if room_id is None or not message_ids:
            return {}
        wanted = set(message_ids)
        ghost = self._names.ghost(buyer.site, buyer.buyer_id)
        oldest = int(since.timestamp() * 1000) - LOOKBACK_MARGIN_MS
        found: dict[MessageID, EventID] = {}
        before: str | None = None
        for _ in range(LOOKBACK_PAGES):
            events, before = await self._gateway.recent_messages(room_id, [ghost], before=before)
            for event in events:
                content = event.get("content")
                message_id = content.get(MESSAGE_ID_KEY) if isinstance(content, dict) else None
                event_id = event.get("event_id")
                if (
                    isinstance(message_id, str)
                    and message_id in wanted
                    and isinstance(event_id, str)
                ):
                    # Newest first: keep the earliest copy if the room ever got two.
                    found[MessageID(message_id)] = EventID(event_id)
            reached_older = any(
                isinstance(ts := event.get("origin_server_ts"), int) and ts < oldest
                for event in events
            )
            if before is None or not events or reached_older or len(found) == len(wanted):
                break
        return found

    async def upload_as_buyer(self, buyer: Buyer, data: bytes, content_type: str, name: str) -> str:
        ghost = await self.ensure_ghost(buyer)
        return await self._gateway.upload(data, content_type, name, as_user=ghost)

    async def download(self, mxc: str, max_bytes: int) -> bytes:
        try:
            data, _ = await self._gateway.download(mxc, max_bytes=max_bytes)
        except ValueError as error:
            raise MatrixRejected("M_INVALID_PARAM", str(error)) from error
        return data

    async def update_context(self, conversation: Conversation, buyer: Buyer) -> None:
        if conversation.room_id is None:
            return
        room_id = conversation.room_id
        await self._gateway.put_state(room_id, CONTEXT_STATE, conversation.context.to_json())
        await self._gateway.put_state(
            room_id, "m.room.name", {"name": room_name(buyer, conversation)}
        )
        await self._gateway.put_state(room_id, "m.room.topic", {"topic": room_topic(conversation)})
        avatar = await self.avatar(conversation.context.image_url)
        if avatar is not None:
            await self._gateway.put_state(room_id, "m.room.avatar", {"url": avatar})

    async def sync_members(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        blocked_by: frozenset[Side],
        site_name: str,
    ) -> None:
        """One read of the room's state, then only the changes it needs; the seller's Space
        follows (its members, and the section this room sits in)."""
        room_id = conversation.room_id
        if room_id is None:
            return
        space = await self.spaces.ensure(seller, members, site_name)
        await self.spaces.follow_members(seller.site, space, members)
        await self.spaces.place(room_id, conversation.state, space)
        ghost = self._names.ghost(buyer.site, buyer.buyer_id)
        state = await self._gateway.full_state(room_id)
        membership = {
            event["state_key"]: event.get("content", {}).get("membership")
            for event in state
            if event.get("type") == "m.room.member" and isinstance(event.get("state_key"), str)
        }
        levels: dict[str, Any] = next(
            (e.get("content", {}) for e in state if e.get("type") == "m.room.power_levels"), {}
        )
        wanted = {member.user_id for member in members}
        allowed = wanted | {ghost, self._names.bot}

        users = levels.get("users", {}) if isinstance(levels.get("users"), dict) else {}
        desired_users = {user_id: MEMBER_LEVEL for user_id in sorted(wanted)}
        desired_users[ghost] = BLOCKED_LEVEL if Side.SELLER in blocked_by else BUYER_LEVEL
        if self._names.bot in users:
            desired_users[self._names.bot] = BOT_LEVEL
        events_default = MEMBER_LEVEL + 1 if Side.BUYER in blocked_by else 0
        if users != desired_users or levels.get("events_default") != events_default:
            await self._gateway.put_state(
                room_id,
                "m.room.power_levels",
                {**levels, "users": desired_users, "events_default": events_default},
            )
        wanted_state = self.conversation_state(conversation)
        current_state = next(
            (e.get("content") for e in state if e.get("type") == CONVERSATION_STATE), None
        )
        if current_state != wanted_state:
            await self._gateway.put_state(room_id, CONVERSATION_STATE, wanted_state)
        for user_id, state_of in membership.items():
            if state_of in ("join", "invite") and user_id not in allowed:
                logger.info("Removing %s from %s: not one who answers", user_id, room_id)
                await tolerant(
                    self._gateway.kick(room_id, UserID(user_id), "Not a member of this shop's chat")
                )
        for user_id in sorted(wanted):
            if membership.get(user_id) not in ("join", "invite"):
                await tolerant(self.bot.invite(room_id, user_id))

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        # A key makes the send idempotent: the homeserver drops a repeat of its transaction id.
        txn = hashlib.sha256(key.encode()).hexdigest()[:32] if key else secrets.token_hex(16)
        await self._gateway.send(
            room_id,
            "m.room.message",
            {"msgtype": "m.notice", "body": text},
            txn_id=f"bazaar-notice-{txn}",
        )

    async def marketplace_room(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> RoomID:
        space = await self.spaces.ensure(seller, members, site_name)
        if space.marketplace_id is None:
            raise MatrixRejected("BAZAAR_NO_ROOM", "the marketplace room could not be made")
        return space.marketplace_id

    async def send_read_receipt(
        self, conversation: Conversation, buyer: Buyer, event_id: EventID
    ) -> None:
        if conversation.room_id is not None:
            ghost = self._names.ghost(buyer.site, buyer.buyer_id)
            await self._gateway.read_receipt(conversation.room_id, event_id, ghost)

    async def set_typing(self, conversation: Conversation, buyer: Buyer, typing: bool) -> None:
        if conversation.room_id is not None:
            ghost = self._names.ghost(buyer.site, buyer.buyer_id)
            await self._gateway.typing(conversation.room_id, ghost, typing)

    def remember_display_name(self, user_id: UserID, name: str | None) -> None:
        self._display_names[user_id] = name

    async def display_name(self, user_id: UserID) -> str | None:
        if user_id not in self._display_names:
            self._display_names[user_id] = await self._gateway.display_name(user_id)
        return self._display_names[user_id]
