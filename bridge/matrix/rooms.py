"""The domain's Matrix port: conversation rooms made, kept in line and written to, as the
bot and as the buyer's ghost. What the rooms hold is built in `content`, `power_levels`
and `room_changes`; this module does the I/O."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol

from bridge.core.ids import EventID, MessageID, RoomID, SiteID, UserID
from bridge.core.models import (
    Attachment,
    Buyer,
    Conversation,
    Member,
    Message,
    Seller,
)
from bridge.core.ports import MatrixRejected
from bridge.core.profile import profile_card
from bridge.matrix.bot import Bot
from bridge.matrix.content import (
    BUYER_STATE,
    CONTEXT_STATE,
    CONVERSATION_STATE,
    MESSAGE_ID_KEY,
    PANE_WIDGET_ID,
    WIDGETS_STATE,
    buyer_card_content,
    buyer_message_content,
    buyer_state,
    conversation_room_state,
    file_content,
    pane_widget_state,
    room_name,
    room_topic,
)
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.mentions import mention_notice_content
from bridge.matrix.power_levels import power_levels
from bridge.matrix.room_changes import room_changes
from bridge.matrix.room_state import RoomStates, RoomStateStore
from bridge.matrix.spaces import SellerSpaces, SpaceMemory, tolerant

logger = logging.getLogger(__name__)

# How far back to look for a buyer message whose send lost its answer: events older than
# the message by more than the margin can't be it, and the pages bound the cost.
LOOKBACK_MARGIN_MS = 60_000
LOOKBACK_PAGES = 20


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


class MatrixRooms:
    """The domain's `MatrixPort`, on top of the gateway."""

    def __init__(
        self,
        gateway: MatrixGateway,
        names: MatrixNames,
        ghosts: GhostMemory,
        spaces: SpaceMemory,
        room_state: RoomStateStore,
        images: ImageSource,
        bridge_id: str,
        admins: Mapping[SiteID, tuple[UserID, ...]],
        *,
        bot_name: str,
        room_version: str | None,
        shared_contacts: Collection[SiteID] = frozenset(),
        pane_url: str | None = None,
    ) -> None:
        self._gateway = gateway
        self.states = RoomStates(room_state, gateway)
        # The bridge's public address, where the context pane is served; None: no pane.
        self._pane = pane_widget_state(pane_url, names.bot) if pane_url is not None else []
        # The sites that let their sellers see the buyer's e-mail and phone.
        self._shared_contacts = frozenset(shared_contacts)
        self.bot = Bot(gateway, names.bot, bot_name, room_version)
        self.spaces = SellerSpaces(gateway, self.bot, names, spaces, admins, self.states)
        self._images = images
        self._avatars: dict[str, str] = {}
        # Ghosts registered and named in this run: no store read before each message.
        self._ready_ghosts: dict[UserID, str] = {}
        # The avatar URL each ghost was given in this run (after a restart, set once again).
        self._ghost_avatars: dict[UserID, str] = {}
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

    async def ensure_ghost(self, buyer: Buyer) -> UserID:
        ghost = self._names.ghost(buyer.site, buyer.buyer_id)
        if self._ready_ghosts.get(ghost) != buyer.name:
            await self._name_ghost(ghost, buyer)
        if buyer.avatar_url is not None and self._ghost_avatars.get(ghost) != buyer.avatar_url:
            # Fetched like a product image: size-limited, checked, uploaded once per URL.
            # An image that can't be had is not tried again before the URL changes.
            avatar = await self.avatar(buyer.avatar_url)
            if avatar is not None:
                await self._gateway.set_avatar_url(ghost, avatar)
            self._ghost_avatars[ghost] = buyer.avatar_url
        return ghost

    async def _name_ghost(self, ghost: UserID, buyer: Buyer) -> None:
        known, name = await self._ghosts.ghost_display_name(ghost)
        if not known:
            await self._gateway.register_ghost(ghost[1:].split(":", 1)[0])
            await self._ghosts.remember_ghost(ghost, None)
        if name != buyer.name:
            await self._gateway.set_display_name(ghost, buyer.name)
            await self._ghosts.remember_ghost(ghost, buyer.name)
        self._ready_ghosts[ghost] = buyer.name

    def _buyer_state(self, buyer: Buyer) -> dict[str, Any]:
        return buyer_state(buyer, buyer.site in self._shared_contacts)

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
        avatar = await self.avatar(conversation.context.image_url)
        initial_state = conversation_room_state(
            conversation,
            site_name,
            name,
            bot=self._names.bot,
            bridge_id=self._bridge_id,
            parent=self.spaces.parent_state(space),
            avatar=avatar,
            buyer=self._buyer_state(buyer),
            pane=self._pane,
        )
        alias_localpart = self._names.room_alias_localpart(
            conversation.site, conversation.conversation_id
        )
        invite = [*(member.user_id for member in members), ghost]
        list_bot = await self.bot.lists_itself()
        levels = power_levels(self._names.bot, ghost, list_bot=list_bot)
        new = True
        try:
            room_id = await self.bot.create_room(
                alias_localpart=alias_localpart,
                name=name,
                topic=room_topic(conversation),
                invite=invite,
                initial_state=initial_state,
                power_levels=levels,
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
        if new:
            await self.states.made(
                room_id,
                initial_state,
                levels,
                {self._names.bot: "join", ghost: "join"}
                | {member.user_id: "invite" for member in members},
            )
        # The buyer's card on first contact; the transaction id keeps a retried creation
        # from repeating it.
        key = f"{conversation.site}/{conversation.conversation_id}".encode()
        await self._gateway.send(
            room_id,
            "m.room.message",
            buyer_card_content(profile_card(buyer, buyer.site in self._shared_contacts)),
            txn_id=f"bazaar-card-{hashlib.sha256(key).hexdigest()[:32]}",
        )
        await self.spaces.place(room_id, conversation.state, space, new=new)
        if conversation.labels:
            await self.spaces.place_labels(
                room_id, conversation.labels, seller, members, site_name, space
            )
        if conversation.waiting_since is not None:
            await self.spaces.place_unanswered(room_id, True, seller, members, site_name)
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
        await self._gateway.put_state(room_id, BUYER_STATE, self._buyer_state(buyer))
        await self.ensure_ghost(buyer)
        avatar = await self.avatar(conversation.context.image_url)
        if avatar is not None:
            await self._gateway.put_state(room_id, "m.room.avatar", {"url": avatar})

    async def sync_members(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> None:
        """One read of the room's state, then only the changes it needs; the seller's Space
        follows (its members, and the section this room sits in)."""
        room_id = conversation.room_id
        if room_id is None:
            return
        space = await self.spaces.ensure(seller, members, site_name)
        await self.spaces.follow_members(seller.site, space, members, seller.seller_id)
        await self.spaces.place(room_id, conversation.state, space)
        await self.spaces.place_labels(
            room_id, conversation.labels, seller, members, site_name, space
        )
        await self.spaces.place_unanswered(
            room_id, conversation.waiting_since is not None, seller, members, site_name
        )
        ghost = self._names.ghost(buyer.site, buyer.buyer_id)
        # Kept from the transactions: no read of the room's state (`room_state.py`).
        state = await self.states.current(room_id)
        changes = room_changes(
            state, conversation, members, ghost, self._names.bot, conversation.blocked_by
        )
        await self._add_pane(room_id, state)
        if changes.power_levels is not None:
            await self._put_state(room_id, "m.room.power_levels", changes.power_levels)
        if changes.conversation_state is not None:
            await self._put_state(room_id, CONVERSATION_STATE, changes.conversation_state)
        for user_id in changes.kick:
            logger.info("Removing %s from %s: not one who answers", user_id, room_id)
            if await tolerant(
                self._gateway.kick(room_id, user_id, "Not a member of this shop's chat")
            ):
                await self.states.membership(room_id, user_id, "leave")
        for user_id in changes.invite:
            if await tolerant(self.bot.invite(room_id, user_id)):
                await self.states.membership(room_id, user_id, "invite")

    async def _put_state(
        self, room_id: RoomID, event_type: str, content: dict[str, Any], state_key: str = ""
    ) -> None:
        await self._gateway.put_state(room_id, event_type, content, state_key)
        await self.states.wrote(room_id, event_type, content, state_key)

    async def _add_pane(self, room_id: RoomID, state: Sequence[dict[str, Any]]) -> None:
        """Give a room made before the context pane existed (or whose widget was emptied)
        its widget: the state was read anyway, so a room that has it costs nothing more."""
        if not self._pane or any(
            event.get("type") == WIDGETS_STATE
            and event.get("state_key") == PANE_WIDGET_ID
            and (event.get("content") or {}).get("url")
            for event in state
        ):
            return
        for event in self._pane:
            if await tolerant(
                self._gateway.put_state(
                    room_id, event["type"], event["content"], event["state_key"]
                )
            ):
                await self.states.wrote(
                    room_id, event["type"], event["content"], event["state_key"]
                )

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        await self.send_tracked_notice(room_id, text, key)

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID:
        """A notice whose event id the caller keeps (an automatic message's)."""
        # A key makes the send idempotent: the homeserver drops a repeat of its transaction id.
        txn = hashlib.sha256(key.encode()).hexdigest()[:32] if key else secrets.token_hex(16)
        return await self._gateway.send(
            room_id,
            "m.room.message",
            {"msgtype": "m.notice", "body": text},
            txn_id=f"bazaar-notice-{txn}",
        )

    async def send_notice_mentioning(
        self, room_id: RoomID, text: str, user_ids: Sequence[UserID]
    ) -> None:
        """A notice in which each of these users, named in `text` by their id, is a mention."""
        await self._gateway.send(
            room_id,
            "m.room.message",
            mention_notice_content(text, user_ids),
            txn_id=f"bazaar-notice-{secrets.token_hex(16)}",
        )

    async def send_bot_file(self, room_id: RoomID, attachment: Attachment, data: bytes) -> None:
        """The bot shows a file in a room, e.g. the one a template sent to the buyer."""
        mxc = await self._gateway.upload(data, attachment.content_type, attachment.name)
        await self._gateway.send(
            room_id,
            "m.room.message",
            file_content(replace(attachment, mxc=mxc, thumbnail=None), caption=""),
            txn_id=f"bazaar-file-{secrets.token_hex(16)}",
        )

    async def tell_seller(
        self,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        text: str,
        key: str | None = None,
    ) -> None:
        space = await self.spaces.ensure(seller, members, site_name)
        await self.send_notice(space.management_id, text, key)

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
