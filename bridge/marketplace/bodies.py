"""What the marketplace sends, as typed models: each checks a request body before its handler
runs, and its JSON Schema is that body's entry in `/api/v1/openapi.json`. Rules JSON Schema
can't say (ranges that overlap, a summary's size as JSON) are checked where the value
becomes a domain record."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator

from bridge.core.hours import DAYS, MAX_RANGES_PER_DAY
from bridge.core.labels import BAD_LABEL, MAX_LABELS
from bridge.core.offers import MAX_QUANTITY, OfferAnswer, OfferStatus
from bridge.core.orders import CURRENCY, DECIMAL, MAX_ITEMS, OrderFields, OrderItem, OrderStatus
from bridge.core.profile import MAX_PHONE_CHARS
from bridge.core.stats import DEFAULT_DAYS, MAX_DAYS
from bridge.core.validation import (
    ID,
    Body,
    ClientID,
    Code,
    ContextBody,
    Digits,
    Email,
    Language,
    Name,
    Query,
    Refusal,
    Text,
    Title,
    Url,
)

MAX_MEMBERS = 100
DEFAULT_TOKEN_TTL = 3600
MAX_TOKEN_TTL = 30 * 24 * 3600

MatrixUserID = Annotated[
    str,
    StringConstraints(max_length=255, pattern=r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$"),
]
Role = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Clock = Annotated[str, StringConstraints(pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$")]
# A day's working hours: at most so many ["HH:MM", "HH:MM"] ranges.
Day = Annotated[
    list[Annotated[list[Clock], Field(min_length=2, max_length=2)]],
    Field(max_length=MAX_RANGES_PER_DAY),
]
Decimal = Annotated[str, StringConstraints(max_length=17, pattern=DECIMAL)]
Currency = Annotated[str, StringConstraints(pattern=CURRENCY)]
Phone = Annotated[
    str, StringConstraints(max_length=MAX_PHONE_CHARS, pattern=r"^[0-9 +()\-]*[0-9][0-9 +()\-]*$")
]


class MemberBody(Body):
    """One of the seller's people: a Matrix account and the role it answers in."""

    user_id: MatrixUserID
    role: Role


class HoursBody(Body):
    """A week of working hours in the seller's time zone: per day, ranges of "HH:MM"."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    mon: Day = Field(default_factory=list)
    tue: Day = Field(default_factory=list)
    wed: Day = Field(default_factory=list)
    thu: Day = Field(default_factory=list)
    fri: Day = Field(default_factory=list)
    sat: Day = Field(default_factory=list)
    sun: Day = Field(default_factory=list)

    def ranges(self) -> dict[str, list[list[str]]]:
        """As `WeeklyHours.parse` reads them, which checks the order of each range."""
        return {day: list(getattr(self, day)) for day in DAYS}


class SellerBody(Body):
    """A seller: a shop on the marketplace, answered for by its members."""

    name: Name
    language: Language | None = None
    email: Email | None = None
    chat_enabled: bool | None = None
    greeting: Text | None = None
    members: Annotated[list[MemberBody], Field(max_length=MAX_MEMBERS)] | None = None
    timezone: Annotated[Code | None, Refusal("BAZAAR_BAD_TIMEZONE")] = None
    hours: Annotated[HoursBody | None, Refusal("BAZAAR_BAD_HOURS")] = None
    away_message: Text | None = None
    email_copies: bool = False


class BuyerBody(Body):
    """A buyer as the marketplace knows them; the seller sees what the site shares."""

    name: Name
    language: Language | None = None
    email: Email | None = None
    phone: Phone | None = None
    avatar_url: Url | None = None
    profile_url: Url | None = None
    summary: dict[str, Any] | None = None


class StartBody(Body):
    """Open a conversation between a buyer and a seller about a product or an order."""

    seller_id: ID
    buyer_id: ID
    context: ContextBody


class MessageBody(Body):
    """A buyer's message sent on their behalf; `client_id` makes a repeat harmless."""

    text: Text
    client_id: ClientID


class BlockBody(Body):
    by: Literal["seller", "buyer"] = "seller"


class BuyerTokenBody(Body):
    buyer_id: ID
    ttl: int = Field(default=DEFAULT_TOKEN_TTL, ge=60, le=MAX_TOKEN_TTL)


class TemplateBody(Body):
    """A canned reply: its text with {placeholders}, its place in the list, shown or not."""

    text: Text
    position: float | None = Field(default=None, allow_inf_nan=False)
    visible: bool | None = None

    @field_validator("position", mode="before")
    @classmethod
    def _whole_numbers_too(cls, value: Any) -> Any:
        # Strict floats take no ints; a position of 2 is as good as 2.0.
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value


Label = Annotated[str, StringConstraints(max_length=64)]


class LabelsBody(Body):
    """A conversation's whole set of labels (lower-cased; repeats dropped)."""

    labels: Annotated[list[Label], Field(max_length=4 * MAX_LABELS), Refusal(BAD_LABEL)]


class OrderItemBody(Body):
    title: Title
    quantity: int = Field(ge=1, le=10**6)
    price: Decimal


class OrderBody(Body):
    """An order attached to the conversation; its status moves forwards only."""

    status: Literal["placed", "paid", "shipped", "delivered", "cancelled"]
    total: Decimal
    currency: Currency
    url: Url | None = None
    items: list[OrderItemBody] = Field(default=[], max_length=MAX_ITEMS)

    def fields(self) -> OrderFields:
        return OrderFields(
            status=OrderStatus(self.status),
            total=self.total,
            currency=self.currency,
            url=self.url,
            items=tuple(OrderItem(i.title, i.quantity, i.price) for i in self.items),
        )


class OfferAnswerBody(Body):
    """The marketplace's answer to an offer a member made: open it with a checkout link, or
    end it."""

    status: Literal["open", "accepted", "expired", "withdrawn"]
    checkout_url: Url | None = None
    title: Title | None = None
    quantity: int | None = Field(default=None, ge=1, le=MAX_QUANTITY)
    price: Decimal | None = None
    currency: Currency | None = None
    image_url: Url | None = None

    def answer(self) -> OfferAnswer:
        return OfferAnswer(
            status=OfferStatus(self.status),
            checkout_url=self.checkout_url,
            title=self.title,
            quantity=self.quantity,
            price=self.price,
            currency=self.currency,
            image_url=self.image_url,
        )


class ConversationQuery(Query):
    seller_id: str | None = None
    buyer_id: str | None = None
    state: Literal["active", "archived", "blocked"] | None = None
    label: Annotated[Label | None, Refusal(BAD_LABEL)] = None
    assignee: str | None = None


class MessagesQuery(Query):
    limit: Digits | None = None
    after: str | None = None


class StatsQuery(Query):
    days: int = Field(default=DEFAULT_DAYS, ge=1, le=MAX_DAYS)

    @field_validator("days", mode="before")
    @classmethod
    def _ascii_digits(cls, value: Any) -> Any:
        if not (isinstance(value, str) and value.isascii() and value.isdigit()) or not (
            1 <= int(value) <= MAX_DAYS
        ):
            raise ValueError(f"must be a whole number from 1 to {MAX_DAYS}")
        return value


class FileForm(Body):
    """A form whose one part is the file (`file`)."""
