"""Each JSON answer has exactly the shape its TypedDict publishes (the OpenAPI document is
built from them): real records through the real view functions, checked strictly by
pydantic, and key by key at every depth, so a key a view adds or drops fails here."""

from __future__ import annotations

import enum
import types
from dataclasses import replace
from datetime import timedelta
from typing import Any, NotRequired, Union, get_args, get_origin

import pytest
from pydantic import TypeAdapter
from typing_extensions import get_type_hints, is_typeddict

from bridge.core.availability import AvailabilityView, availability_json
from bridge.core.buyer_desk import MarkedRead, TypingSent
from bridge.core.cards import BuyerCards, ConversationCards
from bridge.core.events import Announcer
from bridge.core.feedback import FeedbackDesk, FeedbackLeft, SellerStateView
from bridge.core.figures import (
    Durations,
    DurationsView,
    ResponseFiguresView,
    SiteFigures,
    Wait,
    response_figures,
)
from bridge.core.hours import WeeklyHours
from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, UserID
from bridge.core.limits import RateLimiter
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    AttachmentKindValue,
    Buyer,
    Context,
    ContextType,
    ContextTypeValue,
    ContextView,
    Conversation,
    ConversationState,
    ConversationStateValue,
    Feedback,
    Member,
    Message,
    MessageStatus,
    MessageStatusValue,
    Original,
    Seller,
    SenderKind,
    SenderValue,
    Side,
    SideValue,
    Site,
    Template,
    Thumbnail,
    TranslationNote,
)
from bridge.core.offers import (
    BuyerOfferView,
    Offer,
    OfferList,
    OfferStatus,
    OfferStatusValue,
    OfferView,
    buyer_offer_json,
    offer_json,
)
from bridge.core.orders import (
    Order,
    OrderItem,
    OrderList,
    OrderStatus,
    OrderStatusValue,
    OrderView,
    order_json,
)
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.template_rules import TemplateList, TemplateView, template_json
from bridge.core.views import (
    AttachmentView,
    BuyerConversationList,
    BuyerConversationView,
    BuyerToken,
    BuyerView,
    ConversationList,
    ConversationView,
    ErasedBuyer,
    FeedbackView,
    MessageList,
    MessageView,
    SellerView,
    attachment_json,
    buyer_conversation_json,
    buyer_json,
    conversation_json,
    feedback_json,
    message_json,
    seller_json,
)
from tests.core.fakes import OWNER, SITE, START, FakeHomeserver, FakeStore, conversation

ALICE = UserID("@alice:hs")


def keys_of(shape: Any) -> tuple[set[str], set[str], dict[str, Any]]:
    """A TypedDict's required and optional keys and each key's type. Read from the hints:
    under `from __future__ import annotations` the class's own `__required_keys__` counts
    a `NotRequired` key as required."""
    hints = get_type_hints(shape, include_extras=True)
    optional = {key for key, hint in hints.items() if get_origin(hint) is NotRequired}
    bare = {key: get_args(hint)[0] if key in optional else hint for key, hint in hints.items()}
    return set(hints) - optional, optional, bare


def exact_keys(shape: Any, value: Any, where: str = "") -> list[str]:
    """What of `value` departs from the TypedDict `shape`'s keys, at every depth: a key it
    lacks that is required, or one it has that the shape does not name."""
    required, _, hints = keys_of(shape)
    found = set(value)
    wrong = [f"{where}.{key}: missing" for key in sorted(required - found)]
    wrong += [f"{where}.{key}: not in {shape.__name__}" for key in sorted(found - set(hints))]
    for key in sorted(found & set(hints)):
        wrong += _inside(hints[key], value[key], f"{where}.{key}")
    return wrong


def _inside(hint: Any, value: Any, where: str) -> list[str]:
    if is_typeddict(hint):
        return exact_keys(hint, value, where)
    origin = get_origin(hint)
    if origin is list:
        item = get_args(hint)[0]
        return [w for i, one in enumerate(value) for w in _inside(item, one, f"{where}[{i}]")]
    if origin in (Union, types.UnionType) and value is not None:
        kinds = [arg for arg in get_args(hint) if arg is not type(None)]
        return [w for kind in kinds for w in _inside(kind, value, where)]
    return []


def check(shape: Any, value: Any) -> None:
    """`value` validates strictly as `shape`, and its keys are the required ones plus
    optional ones present, at every depth."""
    TypeAdapter(shape).validate_python(value, strict=True)
    required, optional, _ = keys_of(shape)
    assert set(value) == required | (optional & set(value))
    assert exact_keys(shape, value) == []


def test_the_checker_sees_a_key_too_many_or_missing_at_any_depth() -> None:
    shown = conversation_json(conversation())
    assert exact_keys(ConversationView, {**shown, "secret": 1}) == [
        ".secret: not in ConversationView"
    ]
    unread = {**shown, "unread": {"buyer": 0}}
    assert exact_keys(ConversationView, unread) == [".unread.seller: missing"]
    context = {**shown, "context": {**shown["context"], "price_cents": 100}}
    assert exact_keys(ConversationView, context) == [".context.price_cents: not in ContextView"]


@pytest.mark.parametrize(
    ("literal", "values"),
    [
        (SenderValue, SenderKind),
        (MessageStatusValue, MessageStatus),
        (ConversationStateValue, ConversationState),
        (ContextTypeValue, ContextType),
        (SideValue, Side),
        (AttachmentKindValue, AttachmentKind),
        (OrderStatusValue, OrderStatus),
        (OfferStatusValue, OfferStatus),
    ],
)
def test_each_literal_names_exactly_its_enums_values(
    literal: Any, values: type[enum.StrEnum]
) -> None:
    assert set(get_args(literal)) == {member.value for member in values}


IMAGE = Attachment(
    attachment_id="a1",
    kind=AttachmentKind.IMAGE,
    name="shoe.jpg",
    content_type="image/jpeg",
    size=2048,
    sha256="ab" * 32,
    mxc="mxc://hs/a1",
    width=640,
    height=480,
    thumbnail=Thumbnail("image/jpeg", 320, 240, 512),
)
FILE = Attachment("a2", AttachmentKind.FILE, "sizes.pdf", "application/pdf", 4096)
FULL_CONTEXT = Context(
    ContextType.PRODUCT,
    "p1",
    "Red shoes",
    url="https://shop.example/p1",
    image_url="https://shop.example/p1.jpg",
    price="39.90",
    currency="EUR",
    status="in stock",
    from_buyer=True,
)
BUSY = replace(
    conversation(2),
    context=FULL_CONTEXT,
    state=ConversationState.BLOCKED,
    blocked_by=frozenset({Side.SELLER, Side.BUYER}),
    last_message_at=START + timedelta(minutes=5),
    unread_buyer=2,
    unread_seller=1,
    labels=("north", "vip"),
    assignee=ALICE,
)
QUIET = conversation(1, room=False)


def full_message(of: Conversation) -> Message:
    return Message(
        message_id=MessageID("m1"),
        conversation_id=of.conversation_id,
        sender=SenderKind.SELLER,
        sender_name="ACME",
        text="Hello",
        lang="en",
        status=MessageStatus.FAILED,
        created_at=START,
        client_id="c-1",
        sender_user_id=ALICE,
        original=Original("Labas", "lt"),
        edited_at=START + timedelta(minutes=1),
        html="<b>Hello</b>",
        attachments=(IMAGE, FILE),
        translation=TranslationNote("lt", "en", "deepl", failed=False),
        error="The room refused it",
        automatic=True,
    )


BARE_MESSAGE = Message(
    MessageID("m2"),
    QUIET.conversation_id,
    SenderKind.BUYER,
    "Anna",
    "Hi",
    None,
    MessageStatus.PENDING,
    START,
)


@pytest.mark.parametrize("context", [FULL_CONTEXT, Context(ContextType.GENERAL, "", "Anything")])
def test_context(context: Context) -> None:
    shown = context.to_json()
    check(ContextView, shown)
    assert ("supplied_by" in shown) == context.from_buyer


@pytest.mark.parametrize("message", [full_message(BUSY), BARE_MESSAGE])
def test_message(message: Message) -> None:
    check(MessageView, message_json(message))


@pytest.mark.parametrize("attachment", [IMAGE, FILE])
def test_attachment(attachment: Attachment) -> None:
    check(AttachmentView, attachment_json(attachment))


@pytest.mark.parametrize("conversation", [BUSY, QUIET])
def test_conversation(conversation: Conversation) -> None:
    check(ConversationView, conversation_json(conversation))


def test_buyer_conversation() -> None:
    check(
        BuyerConversationView,
        buyer_conversation_json(BUSY, seller_name="ACME", last_message=full_message(BUSY)),
    )
    check(BuyerConversationView, buyer_conversation_json(QUIET))


SELLER = Seller(
    SITE,
    SellerID("acme"),
    "ACME",
    "en",
    email="shop@acme.example",
    chat_enabled=False,
    greeting="Welcome",
    members=(OWNER, Member(ALICE, "staff")),
    timezone="Europe/Vilnius",
    hours=WeeklyHours.parse({"mon": [["09:00", "13:00"], ["14:00", "18:00"]]}),
    away_message="Back on Monday",
    email_copies=True,
)
BARE_SELLER = Seller(SITE, SellerID("bare"), "Bare", "lt")


@pytest.mark.parametrize("seller", [SELLER, BARE_SELLER])
def test_seller(seller: Seller) -> None:
    check(SellerView, seller_json(seller))


def test_feedback() -> None:
    left = Feedback("f1", SITE, SellerID("acme"), "Open soon?", "anna@example.org", START)
    check(FeedbackView, feedback_json(replace(left, buyer_id=BuyerID("anna"))))
    check(FeedbackView, feedback_json(replace(left, contact=None)))


def test_buyer() -> None:
    full = Buyer(
        SITE,
        BuyerID("anna"),
        "Anna K.",
        language="lt",
        email="anna@example.org",
        phone="+370 600 00000",
        avatar_url="https://shop.example/anna.png",
        profile_url="https://shop.example/u/anna",
        summary={"orders_count": 3, "last_order": {"total": "9.90"}},
    )
    check(BuyerView, buyer_json(full))
    check(BuyerView, buyer_json(Buyer(SITE, BuyerID("bob"), "Bob")))


ORDER = Order(
    site=SITE,
    conversation_id=BUSY.conversation_id,
    order_id="A-1001",
    status=OrderStatus.PAID,
    total="79.80",
    currency="EUR",
    url="https://shop.example/orders/A-1001",
    items=(OrderItem("Red shoes", 2, "39.90"),),
    updated_at=START,
)
OFFER = Offer(
    site=SITE,
    conversation_id=BUSY.conversation_id,
    offer_id="o1",
    status=OfferStatus.OPEN,
    title="Red shoes",
    quantity=2,
    price="39.90",
    currency="EUR",
    product_id="p1",
    image_url="https://shop.example/p1.jpg",
    checkout_url="https://shop.example/checkout/o1",
    created_by=ALICE,
    created_at=START,
    updated_at=START + timedelta(minutes=3),
)
PENDING = replace(
    OFFER,
    offer_id="o2",
    status=OfferStatus.PENDING,
    product_id=None,
    image_url=None,
    checkout_url=None,
)


@pytest.mark.parametrize("order", [ORDER, replace(ORDER, url=None, items=())])
def test_order(order: Order) -> None:
    check(OrderView, order_json(order))


@pytest.mark.parametrize("offer", [OFFER, PENDING])
def test_offers_for_the_marketplace_and_for_the_buyer(offer: Offer) -> None:
    check(OfferView, offer_json(offer))
    shown = buyer_offer_json(offer)
    check(BuyerOfferView, shown)
    # The buyer's view is the marketplace's without the member who made the offer.
    assert shown == {k: v for k, v in offer_json(offer).items() if k != "created_by"}


@pytest.mark.parametrize(
    "template",
    [
        Template(SITE, SellerID("acme"), "sizes", "Our sizes", 2.0, False, attachment=FILE),
        Template(SITE, SellerID("acme"), "hello", "Hello!"),
    ],
)
def test_template(template: Template) -> None:
    check(TemplateView, template_json(template))


def waits() -> list[Wait]:
    def wait(number: int, hours: float) -> Wait:
        opened = START + timedelta(days=number)
        return Wait(
            ConversationID(f"c{number}"),
            SITE,
            SELLER.seller_id,
            opened,
            first=number == 1,
            closed_at=opened + timedelta(hours=hours),
            outcome="replied",
            closed_by=ALICE,
            wall_seconds=hours * 3600,
            working_seconds=hours * 1800,
        )

    still_open = Wait(ConversationID("c9"), SITE, SELLER.seller_id, START + timedelta(days=3))
    return [wait(1, 0.5), wait(2, 30.0), still_open]


@pytest.mark.parametrize("found", [waits(), []])
def test_response_figures(found: list[Wait]) -> None:
    figures = response_figures(
        SELLER, found, until=START + timedelta(days=5), days=7, target_hours=24
    )
    check(ResponseFiguresView, figures.to_json())
    check(DurationsView, Durations.of([]).to_json())
    check(SiteFigures, {"days": 7, "sellers": [figures.to_json()]})


class DeskStore:
    """Only what `FeedbackDesk.state` and `BuyerCards.cards` read."""

    async def get_conversation(self, site: object, conversation_id: object) -> Conversation:
        return BUSY

    async def list_orders(self, conversation_id: object) -> list[Order]:
        return [ORDER, replace(ORDER, order_id="A-1002", status=OrderStatus.PLACED)]

    async def list_offers(self, conversation_id: object) -> list[Offer]:
        return [OFFER, PENDING]


class ReplySpeed:
    async def usually_replies_within(self, seller: Seller) -> int | None:
        return 15


def feedback_desk(reply_speed: ReplySpeed | None) -> FeedbackDesk:
    sites = {SITE: Site(SITE, "Shop", "en", has_webhook=True)}
    return FeedbackDesk(
        FakeStore(),  # type: ignore[arg-type]
        FakeHomeserver(),  # type: ignore[arg-type]
        Announcer(sites, lambda site: None, lambda site, buyer: None),
        RateLimiter(),
        AnsweringRoles(frozenset({"owner"})),
        sites,
        TaskKeeper(),
        clock=lambda: START,
        reply_speed=reply_speed,
    )


@pytest.mark.parametrize("reply_speed", [ReplySpeed(), None])
@pytest.mark.parametrize("seller", [SELLER, BARE_SELLER])
async def test_the_widgets_seller_state(seller: Seller, reply_speed: ReplySpeed | None) -> None:
    check(SellerStateView, await feedback_desk(reply_speed).state(seller))
    check(AvailabilityView, availability_json(seller, START))


async def test_the_widgets_cards() -> None:
    buyer = Buyer(SITE, BUSY.buyer_id, "Anna")
    cards = await BuyerCards(DeskStore()).cards(buyer, BUSY.conversation_id)  # type: ignore[arg-type]
    check(ConversationCards, cards)
    assert [offer["offer_id"] for offer in cards["offers"]] == ["o1"]


# The wrappers the handlers put around the views, built the way the handlers build them
# (bridge/marketplace/*.py, bridge/widget/api.py).


def test_wrappers() -> None:
    check(ConversationList, {"conversations": [conversation_json(BUSY), conversation_json(QUIET)]})
    check(MessageList, {"messages": [message_json(full_message(BUSY)), message_json(BARE_MESSAGE)]})
    check(
        BuyerConversationList,
        {
            "conversations": [buyer_conversation_json(BUSY, seller_name="ACME")],
            "unread_total": 2,
            "max_upload_bytes": 10 * 1024 * 1024,
        },
    )
    check(BuyerToken, {"token": "eyJ.x.y", "expires_at": 1_900_000_000})
    check(ErasedBuyer, {"buyer_id": BuyerID("anna"), "erased": True})
    check(OrderList, {"orders": [order_json(ORDER)]})
    check(OfferList, {"offers": [offer_json(OFFER)]})
    check(TemplateList, {"templates": [template_json(Template(SITE, SellerID("a"), "t", "x"))]})
    check(MarkedRead, {"unread": 0})
    check(TypingSent, {})
    check(FeedbackLeft, {"feedback_id": "f1"})


def test_a_literal_refuses_a_value_its_enum_lacks() -> None:
    shown = {**order_json(ORDER), "status": "lost"}
    with pytest.raises(ValueError, match="status"):
        TypeAdapter(OrderView).validate_python(shown, strict=True)
