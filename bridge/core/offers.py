"""Offers a member makes from a conversation room (`!offer`), answered by the marketplace.

A member's `!offer` stores the offer as `pending` with its `offer.created` webhook; the
marketplace answers with `PUT /api/v1/sites/{site}/conversations/{id}/offers/{offer_id}`,
which opens it (with the checkout URL the buyer's Buy button opens) or ends it. A status
only moves forward (pending → open → accepted | expired | withdrawn). The buyer sees an
offer from the moment it is open; the room is told each status change, through the
courier (what the room owes is in the store, as for orders).
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from typing_extensions import TypedDict

from bridge.core.commands import BadCommand, Command, RoomCall
from bridge.core.events import Announcer, Event
from bridge.core.ids import (
    ConversationID,
    EventID,
    RoomID,
    SiteID,
    UserID,
    new_message_id,
    new_offer_id,
)
from bridge.core.models import (
    Buyer,
    ContextType,
    Conversation,
    ConversationState,
    Message,
    MessageStatus,
    SenderKind,
    Site,
)
from bridge.core.orders import CURRENCY, DECIMAL
from bridge.core.ports import MatrixRejected
from bridge.core.refusals import unknown_conversation
from bridge.errors import BadRequest, Conflict, NotFound

logger = logging.getLogger(__name__)

UNKNOWN_OFFER = "BAZAAR_UNKNOWN_OFFER"
OFFER_BACKWARDS = "BAZAAR_OFFER_STATUS_BACKWARDS"
MAX_QUANTITY = 10**6
_PRICE = re.compile(DECIMAL)
_CURRENCY = re.compile(CURRENCY)
OFFER_HELP = (
    "!offer — offer the buyer this conversation's product: quantity 1 at its price",
    "!offer <quantity> [<price>] [<currency>] — e.g. !offer 3 39.90; the marketplace "
    "answers with a checkout the buyer sees as a Buy button",
)


class OfferStatus(enum.StrEnum):
    # Made in the room; the marketplace has not answered yet. The buyer doesn't see it.
    PENDING = "pending"
    OPEN = "open"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


OfferStatusValue = Literal["pending", "open", "accepted", "expired", "withdrawn"]


_ENDED = frozenset({OfferStatus.ACCEPTED, OfferStatus.EXPIRED, OfferStatus.WITHDRAWN})
_NEXT: dict[OfferStatus, frozenset[OfferStatus]] = {
    OfferStatus.PENDING: frozenset({OfferStatus.OPEN, *_ENDED}),
    OfferStatus.OPEN: _ENDED,
}


@dataclass(frozen=True)
class Offer:
    site: SiteID
    conversation_id: ConversationID
    offer_id: str
    status: OfferStatus
    title: str
    quantity: int
    # The price of one, a decimal string ("39.90").
    price: str
    currency: str
    product_id: str | None
    image_url: str | None
    checkout_url: str | None
    created_by: UserID
    created_at: datetime
    updated_at: datetime

    @property
    def total(self) -> str:
        return total_of(self.price, self.quantity)


def total_of(price: str, quantity: int) -> str:
    """`quantity` × `price`, with as many decimals as the price has."""
    whole, _, decimals = price.partition(".")
    scale = 10 ** len(decimals)
    cents = (int(whole) * scale + int(decimals or 0)) * quantity
    if not decimals:
        return str(cents)
    return f"{cents // scale}.{cents % scale:0{len(decimals)}d}"


def is_price(text: str) -> bool:
    return bool(_PRICE.match(text))


class BuyerOfferView(TypedDict):
    """An offer as the buyer's widget sees it: no member ids."""

    offer_id: str
    conversation_id: ConversationID
    status: OfferStatusValue
    title: str
    quantity: int
    price: str
    total: str
    currency: str
    product_id: str | None
    image_url: str | None
    checkout_url: str | None
    created_at: str
    updated_at: str


class OfferView(BuyerOfferView):
    """An offer as the marketplace sees it: the buyer's view and the member who made it."""

    created_by: UserID


class OfferList(TypedDict):
    """A conversation's offers, every status."""

    offers: list[OfferView]


def offer_json(offer: Offer) -> OfferView:
    """The offer as the marketplace sees it (webhooks, `GET .../offers`)."""
    return OfferView(**buyer_offer_json(offer), created_by=offer.created_by)


def buyer_offer_json(offer: Offer) -> BuyerOfferView:
    """The offer as the buyer's widget sees it: no member ids."""
    return {
        "offer_id": offer.offer_id,
        "conversation_id": offer.conversation_id,
        "status": offer.status.value,
        "title": offer.title,
        "quantity": offer.quantity,
        "price": offer.price,
        "total": offer.total,
        "currency": offer.currency,
        "product_id": offer.product_id,
        "image_url": offer.image_url,
        "checkout_url": offer.checkout_url,
        "created_at": offer.created_at.isoformat(),
        "updated_at": offer.updated_at.isoformat(),
    }


def can_move(old: OfferStatus, new: OfferStatus) -> bool:
    return new in _NEXT.get(old, frozenset())


def _offer_json_both(offer: Offer) -> tuple[OfferView, BuyerOfferView]:
    return offer_json(offer), buyer_offer_json(offer)


def parse_offer_words(args: str) -> tuple[int, str | None, str | None]:
    """`!offer`'s words: a quantity (1 when none), a price and a currency, each optional."""
    words = args.split()
    if len(words) > 3:
        raise BadCommand("Say at most a quantity, a price and a currency, e.g. !offer 3 39.90 EUR")
    quantity = 1
    if words:
        if not words[0].isdigit() or not 0 < int(words[0]) <= MAX_QUANTITY:
            raise BadCommand(f"The quantity must be a whole number from 1 to {MAX_QUANTITY:,}")
        quantity = int(words[0])
    price = words[1].replace(",", ".") if len(words) > 1 else None
    if price is not None and not is_price(price):
        raise BadCommand("The price must be a number such as 39.90")
    currency = words[2].upper() if len(words) > 2 else None
    if currency is not None and not _CURRENCY.match(currency):
        raise BadCommand("The currency must be a three-letter code such as EUR")
    return quantity, price, currency


@dataclass(frozen=True)
class OfferAnswer:
    """What the marketplace answered for an offer, checked; None keeps the stored value."""

    status: OfferStatus
    checkout_url: str | None
    title: str | None
    quantity: int | None
    price: str | None
    currency: str | None
    image_url: str | None


def buyer_offer_text(offer: Offer, language: str | None) -> str:
    """The buyer's system message when an offer opens, in Russian or else English."""
    what = f"{offer.quantity} × {offer.title}: {offer.total} {offer.currency}"
    if (language or "").lower().startswith("ru"):
        return f"Продавец предлагает {what}"
    return f"The seller offers you {what}"


def room_offer_text(offer: Offer) -> str:
    """The room's notice of an offer's status."""
    what = f"{offer.quantity} × {offer.title}, {offer.total} {offer.currency}"
    if offer.status == OfferStatus.OPEN:
        return f"Offer {offer.offer_id} ({what}) is open: the buyer sees it with a Buy button"
    return f"Offer {offer.offer_id} ({what}): {offer.status}"


class OfferStore(Protocol):
    """The store as the offer desk uses it (`store/offers.py`)."""

    async def get_conversation(
        self, site: SiteID, conversation_id: ConversationID
    ) -> Conversation | None: ...

    async def get_buyer(self, site: SiteID, buyer_id: Any) -> Buyer | None: ...

    async def get_offer(self, conversation_id: ConversationID, offer_id: str) -> Offer | None: ...

    async def list_offers(self, conversation_id: ConversationID) -> list[Offer]: ...

    async def add_offer(self, offer: Offer, events: Sequence[Event]) -> None: ...

    async def save_offer(
        self,
        offer: Offer,
        expected: OfferStatus,
        notice: Message | None,
        events: Sequence[Event],
    ) -> bool:
        """Store the change (with the buyer's message and the events) if the stored status
        is still `expected`; False when another write came first."""


class OfferDesk:
    def __init__(
        self,
        store: OfferStore,
        announcer: Announcer,
        room_owed: Callable[[ConversationID], None],
        sites: Mapping[SiteID, Site],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._announcer = announcer
        self._sites = sites
        # Wakes the courier, which tells the room (`OfferRoom.post`).
        self._room_owed = room_owed
        self._clock = clock

    def command(self) -> Command[RoomCall]:
        return Command("offer", OFFER_HELP, self._offer_command)

    def _currency(self, conversation: Conversation) -> str | None:
        site = self._sites.get(conversation.site)
        return site.currency if site is not None else None

    async def _offer_command(self, call: RoomCall) -> str:
        conversation = call.conversation
        if conversation.state != ConversationState.ACTIVE:
            raise BadCommand(f"This conversation is {conversation.state}: no offer was made")
        if not self._announcer.takes_webhooks(conversation.site):
            raise BadCommand("This marketplace takes no offers from the chat (it has no webhook)")
        quantity, price, currency = parse_offer_words(call.args)
        context = conversation.context
        product = context.type == ContextType.PRODUCT
        price = price or (context.price if product else None)
        if price is None or not is_price(price):
            raise BadCommand(
                "This conversation's product has no price: say it, e.g. !offer 1 39.90"
            )
        currency = (
            currency or (context.currency if product else None) or self._currency(conversation)
        )
        if currency is None or not _CURRENCY.match(currency):
            raise BadCommand("Say the currency too, e.g. !offer 1 39.90 EUR")
        now = self._clock()
        offer = Offer(
            site=conversation.site,
            conversation_id=conversation.conversation_id,
            offer_id=new_offer_id(),
            status=OfferStatus.PENDING,
            title=context.title if product else f"{call.seller.name}: an offer",
            quantity=quantity,
            price=price,
            currency=currency,
            product_id=context.id if product else None,
            image_url=context.image_url if product else None,
            checkout_url=None,
            created_by=call.member.user_id,
            created_at=now,
            updated_at=now,
        )
        await self._store.add_offer(
            offer, self._announcer.offer_created(conversation, offer_json(offer))
        )
        self._announcer.published(conversation)
        return (
            f"Offer {offer.offer_id}: {quantity} × {offer.title} at {price} {currency} "
            f"({offer.total} {currency}) went to the marketplace; its answer will show here."
        )

    async def _conversation(self, site: SiteID, conversation_id: ConversationID) -> Conversation:
        conversation = await self._store.get_conversation(site, conversation_id)
        if conversation is None:
            raise unknown_conversation(conversation_id)
        return conversation

    async def offers(self, site: SiteID, conversation_id: ConversationID) -> list[Offer]:
        conversation = await self._conversation(site, conversation_id)
        return await self._store.list_offers(conversation.conversation_id)

    async def answer(
        self, site: SiteID, conversation_id: ConversationID, offer_id: str, answer: OfferAnswer
    ) -> Offer:
        """The marketplace's answer: the offer opens (the buyer sees its card and a system
        message) or ends; the same answer again changes nothing, a move back is a
        Conflict."""
        conversation = await self._conversation(site, conversation_id)
        for _ in range(3):  # another answer between our read and ours: look again
            old = await self._store.get_offer(conversation.conversation_id, offer_id)
            if old is None:
                raise NotFound(f"Unknown offer '{offer_id}'", UNKNOWN_OFFER)
            offer = _answered(old, answer, self._clock())
            if offer.status == OfferStatus.OPEN and offer.checkout_url is None:
                raise BadRequest("An open offer needs its 'checkout_url'")
            moved = offer.status != old.status
            if moved and not can_move(old.status, offer.status):
                raise Conflict(
                    f"An offer that is {old.status} can't become {offer.status}", OFFER_BACKWARDS
                )
            if not moved and _same(old, offer):
                return old
            events: list[Event] = list(
                self._announcer.offer_updated(conversation, *_offer_json_both(offer))
            )
            notice = None
            if moved and offer.status == OfferStatus.OPEN:
                notice = await self._notice(conversation, offer)
                events += self._announcer.message_created(conversation, notice)
            if await self._store.save_offer(offer, old.status, notice, events):
                self._announcer.published(conversation)
                if moved:
                    self._room_owed(conversation.conversation_id)
                return offer
        raise Conflict("The offer changed meanwhile: try again", "BAZAAR_OFFER_CHANGED")

    async def _notice(self, conversation: Conversation, offer: Offer) -> Message:
        buyer = await self._store.get_buyer(conversation.site, conversation.buyer_id)
        language = buyer.language if buyer is not None else None
        return Message(
            message_id=new_message_id(),
            conversation_id=conversation.conversation_id,
            sender=SenderKind.SYSTEM,
            sender_name="Offers",
            text=buyer_offer_text(offer, language),
            lang=language,
            status=MessageStatus.SENT,
            created_at=offer.updated_at,
            client_id=f"offer-open-{offer.offer_id}",
        )


def _answered(old: Offer, answer: OfferAnswer, now: datetime) -> Offer:
    return replace(
        old,
        status=answer.status,
        checkout_url=answer.checkout_url or old.checkout_url,
        title=answer.title or old.title,
        quantity=answer.quantity or old.quantity,
        price=answer.price or old.price,
        currency=answer.currency or old.currency,
        image_url=answer.image_url or old.image_url,
        updated_at=now,
    )


def _same(old: Offer, new: Offer) -> bool:
    keys = ("status", "checkout_url", "title", "quantity", "price", "currency", "image_url")
    return all(getattr(old, key) == getattr(new, key) for key in keys)


class OfferRoomStore(Protocol):
    async def offers_owed_to_room(self, conversation_id: ConversationID) -> list[Offer]: ...

    async def mark_offer_in_room(self, offer: Offer) -> None: ...

    async def conversations_owing_offers(self) -> list[ConversationID]: ...


class OfferBoard(Protocol):
    """The room's side of offers (`matrix/orders.py`)."""

    async def show_offer(self, conversation: Conversation, offer: Offer) -> None:
        """Put the offer's `io.bazaar.offer` state."""

    async def send_tracked_notice(
        self, room_id: RoomID, text: str, key: str | None = None
    ) -> EventID: ...


class OfferRoom:
    """Tells a conversation room each offer's latest status, through the courier.

    An offer whose `room_status` is not its status owes the room its state and a notice;
    the notice's key (the offer and status) makes the homeserver drop a repeat of a send
    whose answer was lost. Statuses that passed while the homeserver was away are not
    told one by one: the room hears the latest.
    """

    def __init__(
        self,
        store: OfferRoomStore,
        board: OfferBoard,
        wake: Callable[[ConversationID], None],
    ) -> None:
        self._store = store
        self._board = board
        self._wake = wake

    async def resume(self) -> None:
        for conversation_id in await self._store.conversations_owing_offers():
            self._wake(conversation_id)

    async def post(self, conversation: Conversation) -> None:
        if conversation.room_id is None:
            return
        for offer in await self._store.offers_owed_to_room(conversation.conversation_id):
            try:
                await self._board.show_offer(conversation, offer)
                await self._board.send_tracked_notice(
                    conversation.room_id,
                    room_offer_text(offer),
                    key=f"offer-{offer.status}-{offer.offer_id}",
                )
            except MatrixRejected as error:
                logger.warning("The room refused offer %s: %s", offer.offer_id, error)
            await self._store.mark_offer_in_room(offer)
