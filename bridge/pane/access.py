"""What a member may see in the pane, and the pane's short sessions.

One rule decides every call: the room is one of the bridge's conversation rooms, the user
answers for that room's seller, and the homeserver says they have joined the room. It is
asked again on each call, so a member removed after opening the pane is refused at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from bridge.core.ids import BuyerID, ConversationID, RoomID, SellerID, SiteID, UserID
from bridge.core.models import Buyer, Conversation, ConversationState, Member, Seller, Site
from bridge.core.offers import Offer, offer_json
from bridge.core.orders import Order, order_json
from bridge.core.placeholders import Filling
from bridge.core.profile import shared_profile
from bridge.core.room_events import ConversationRoom, RoomKind
from bridge.core.team import AnsweringRoles
from bridge.core.templates import TemplateDesk
from bridge.core.validation import MAX_TEXT_CHARS
from bridge.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bridge.matrix.gateway import MatrixGateway

NOT_A_MEMBER = "BAZAAR_NOT_A_MEMBER"
SESSION_SECONDS = 600
_AUDIENCE = "bazaar-pane"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class PaneSession:
    user_id: UserID
    room_id: RoomID
    expires_at: int


def session_key(secret: str) -> bytes:
    """The pane sessions' signing key, derived from a secret of the config, so that every
    replica (and the next run) accepts a session any of them issued."""
    return hmac.new(secret.encode(), b"bazaar pane sessions", hashlib.sha256).digest()


class PaneSessions:
    """Signed, short-lived pane sessions bound to one user and one room. Without a key, one
    lives as long as the process: after a restart the pane asks Element for a new OpenID
    token."""

    def __init__(self, key: bytes | None = None, ttl: int = SESSION_SECONDS) -> None:
        self._key = key or secrets.token_bytes(32)
        self.ttl = ttl

    def issue(self, user_id: UserID, room_id: RoomID, ttl: int | None = None) -> PaneSession:
        expires_at = int(time.time()) + (self.ttl if ttl is None else ttl)
        return PaneSession(user_id, room_id, expires_at)

    def token(self, session: PaneSession) -> str:
        claims = {
            "sub": session.user_id,
            "room": session.room_id,
            "exp": session.expires_at,
            "aud": _AUDIENCE,
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM)

    def verify(self, token: str, room_id: RoomID) -> PaneSession:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=_AUDIENCE,
                options={"require": ["sub", "room", "exp", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The pane session has expired", "M_UNKNOWN_TOKEN") from None
        except jwt.InvalidTokenError:
            raise Unauthorized("The pane session is not valid", "M_UNKNOWN_TOKEN") from None
        if claims["room"] != room_id:
            raise Forbidden("This pane session is for another room", NOT_A_MEMBER)
        return PaneSession(UserID(str(claims["sub"])), room_id, int(claims["exp"]))


class PaneStore(Protocol):
    """The store as the pane reads it."""

    async def classify_room(self, room_id: RoomID) -> RoomKind | None: ...

    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None: ...

    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None: ...

    async def list_orders(self, conversation_id: ConversationID) -> list[Order]: ...

    async def list_offers(self, conversation_id: ConversationID) -> list[Offer]: ...


# The user's membership in a room as the homeserver has it ("join", "leave", …; None: none).
Membership = Callable[[RoomID, UserID], Awaitable[str | None]]
DisplayName = Callable[[UserID], Awaitable[str | None]]


def membership_in(gateway: MatrixGateway) -> Membership:
    """The homeserver's word on a user's membership, read as the bot (which is in every
    conversation room)."""

    async def membership(room_id: RoomID, user_id: UserID) -> str | None:
        event = await gateway.room_state(room_id, "m.room.member", user_id)
        value = event.get("membership") if event is not None else None
        return value if isinstance(value, str) else None

    return membership


@dataclass(frozen=True)
class Seen:
    """A room a member may see, loaded once per call."""

    conversation: Conversation
    seller: Seller
    member: Member


class PaneDesk:
    def __init__(
        self,
        store: PaneStore,
        membership: Membership,
        display_name: DisplayName,
        answering: AnsweringRoles,
        sites: Mapping[SiteID, Site],
        templates: TemplateDesk,
    ) -> None:
        self._store = store
        self._membership = membership
        self._display_name = display_name
        self._answering = answering
        self._sites = sites
        self._templates = templates

    async def may_see(self, user_id: UserID, room_id: RoomID) -> Seen:
        """The pane's one access rule; 403 for a room the user may not see, whether it is
        not the bridge's, not their seller's, or not joined: the answer tells them nothing
        of the room."""
        refused = Forbidden("You are not a member of this conversation", NOT_A_MEMBER)
        kind = await self._store.classify_room(room_id)
        if not isinstance(kind, ConversationRoom):
            raise refused
        conversation = kind.conversation
        seller = await self._store.get_seller(conversation.site, conversation.seller_id)
        if seller is None or user_id not in self._answering.user_ids(seller):
            raise refused
        member = next(m for m in self._answering.members(seller) if m.user_id == user_id)
        if await self._membership(room_id, user_id) != "join":
            raise refused
        return Seen(conversation, seller, member)

    async def view(self, seen: Seen) -> dict[str, Any]:
        """What the pane shows: the context, the buyer as the seller sees them, orders,
        offers and the templates filled for this conversation."""
        conversation, seller = seen.conversation, seen.seller
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        site = self._sites.get(conversation.site)
        share = site is not None and site.share_buyer_contact
        name = await self._display_name(seen.member.user_id) or seen.member.user_id
        filling = Filling.of(conversation, seller, buyer, member=name)
        orders = await self._store.list_orders(conversation.conversation_id)
        offers = await self._store.list_offers(conversation.conversation_id)
        return {
            "room_id": conversation.room_id,
            "conversation_id": conversation.conversation_id,
            "state": conversation.state.value,
            "seller": {"seller_id": seller.seller_id, "name": seller.name},
            "member": seen.member.user_id,
            "context": conversation.context.to_json(),
            "buyer": shared_profile(buyer, share) if buyer is not None else None,
            "orders": [order_json(order) for order in orders],
            "offers": [offer_json(offer) for offer in offers],
            "templates": [
                {
                    "name": template.name,
                    "text": filling.fill(template.text).strip()[:MAX_TEXT_CHARS],
                    "file": template.attachment.name if template.attachment else None,
                }
                for template in await self._templates.visible(seller)
            ],
        }

    async def send_template(self, seen: Seen, name: str, client_id: str | None) -> None:
        """The pane's click: the template goes as the member's reply, as `!t <name>` sends it."""
        template = next(
            (t for t in await self._templates.visible(seen.seller) if t.name == name), None
        )
        if template is None:
            raise NotFound(f"Unknown template '{name}'", "BAZAAR_UNKNOWN_TEMPLATE")
        if seen.conversation.state == ConversationState.BLOCKED:
            raise Forbidden("This conversation is blocked: nothing was sent", "BAZAAR_BLOCKED")
        refusal = await self._templates.send(
            seen.conversation,
            seen.seller,
            seen.member,
            template,
            client_id=f"pane:{client_id}" if client_id else None,
        )
        if refusal is not None:
            raise BadRequest(refusal, "BAZAAR_TEMPLATE_EMPTY")
