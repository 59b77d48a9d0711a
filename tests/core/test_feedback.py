"""The feedback desk without I/O: the seller's state at a fixed moment, the owner's `!chat`
switch, and a feedback form stored with its webhook, or refused with nothing stored."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bridge.core.commands import BadCommand, ManagementCall
from bridge.core.events import Announcer, Event, WebhookEvent
from bridge.core.feedback import FeedbackDesk
from bridge.core.hours import WeeklyHours
from bridge.core.ids import BuyerID, RoomID, SellerID, SiteID, UserID
from bridge.core.limits import Rate, RateLimiter
from bridge.core.models import Buyer, Feedback, Member, Seller, Site
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.errors import BadRequest, Conflict, RateLimited, TooLarge

SITE = SiteID("shop")
OWNER = Member(UserID("@olga:hs"), "owner")
MANAGER = Member(UserID("@max:hs"), "manager")
# A Wednesday, 20:00 in Vilnius.
NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


class Store:
    def __init__(self) -> None:
        self.feedback: list[tuple[Feedback, list[Event]]] = []
        self.switched: list[tuple[SellerID, bool]] = []

    async def add_feedback(self, feedback: Feedback, events: Sequence[Event]) -> Feedback:
        self.feedback.append((feedback, list(events)))
        return feedback

    async def list_feedback(self, site: SiteID, seller_id: SellerID) -> list[Feedback]:
        return [f for f, _ in self.feedback if f.seller_id == seller_id]

    async def set_chat_enabled(self, site: SiteID, seller_id: SellerID, enabled: bool) -> bool:
        self.switched.append((seller_id, enabled))
        return True


class Matrix:
    def __init__(self) -> None:
        self.told: list[tuple[SellerID, tuple[UserID, ...], str, str | None]] = []

    async def tell_seller(
        self,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        text: str,
        key: str | None = None,
    ) -> None:
        self.told.append((seller.seller_id, tuple(m.user_id for m in members), text, key))


class World:
    def __init__(self) -> None:
        self.store = Store()
        self.matrix = Matrix()
        self.tasks = TaskKeeper()
        self.woken: list[SiteID] = []
        announcer = Announcer(
            {SITE: Site(SITE, "Shop", "en", has_webhook=True)},
            self.woken.append,
            lambda site, buyer: None,
        )
        self.desk = FeedbackDesk(
            self.store,
            self.matrix,  # type: ignore[arg-type]
            announcer,
            RateLimiter({"feedback": Rate(burst=2, per_second=0.001)}, clock=lambda: 0.0),
            AnsweringRoles(frozenset({"owner", "manager"})),
            {SITE: Site(SITE, "Shop", "en", has_webhook=True)},
            self.tasks,
            clock=lambda: NOW,
        )


SELLER = Seller(SITE, SellerID("acme"), "ACME", "en", members=(OWNER, MANAGER))
OFF = replace(SELLER, chat_enabled=False)
ANNA = Buyer(SITE, BuyerID("anna"), "Anna K.")


def call(seller: Seller, member: Member, args: str) -> ManagementCall:
    return ManagementCall(RoomID("!mgmt:hs"), seller, member, args)


def test_the_state_says_away_until_the_next_opening() -> None:
    world = World()
    hours = WeeklyHours.parse({"thu": [["09:00", "18:00"]]})
    seller = replace(SELLER, timezone="Europe/Vilnius", hours=hours)
    assert world.desk.state_json(seller) == {
        "seller_id": "acme",
        "name": "ACME",
        "chat_enabled": True,
        "open_now": False,
        "next_open_at": "2026-12-03T07:00:00Z",
        "usually_replies_within_minutes": None,
    }
    assert world.desk.state_json(SELLER)["open_now"] is True
    assert world.desk.state_json(SELLER)["next_open_at"] is None


async def test_only_the_owner_switches_chat() -> None:
    world = World()
    answer = await world.desk.switch_chat(call(SELLER, MANAGER, "off"))
    assert answer == "Only the shop's owner can turn the chat off or on."
    assert world.store.switched == []
    answer = await world.desk.switch_chat(call(SELLER, OWNER, "OFF"))
    assert answer.startswith("The chat is off: buyers see a feedback form instead")
    assert world.store.switched == [(SellerID("acme"), False)]
    assert await world.desk.switch_chat(call(OFF, OWNER, "off")) == "The chat is already off."
    answer = await world.desk.switch_chat(call(OFF, OWNER, "on"))
    assert answer == "The chat is on: buyers can write to you again."
    with pytest.raises(BadCommand, match="Say !chat off or !chat on"):
        await world.desk.switch_chat(call(SELLER, OWNER, ""))
    assert world.store.switched == [(SellerID("acme"), False), (SellerID("acme"), True)]


async def test_a_form_is_stored_with_its_webhook_and_told_to_the_room() -> None:
    world = World()
    feedback = await world.desk.leave(ANNA, OFF, "  Do you ship to Riga? ", " anna@example.org ")
    [(stored, events)] = world.store.feedback
    assert stored == feedback
    assert (stored.text, stored.contact, stored.buyer_id) == (
        "Do you ship to Riga?",
        "anna@example.org",
        "anna",
    )
    assert events == [
        WebhookEvent(
            SITE,
            "feedback.created",
            None,
            {
                "feedback": {
                    "feedback_id": feedback.feedback_id,
                    "seller_id": "acme",
                    "buyer_id": "anna",
                    "text": "Do you ship to Riga?",
                    "contact": "anna@example.org",
                    "created_at": "2026-12-02T18:00:00Z",
                }
            },
        )
    ]
    assert world.woken == [SITE]
    await asyncio.sleep(0)
    await world.tasks.close()
    assert world.matrix.told == [
        (
            SellerID("acme"),
            (OWNER.user_id, MANAGER.user_id),
            "Feedback from Anna K. (chat is off):\nDo you ship to Riga?\n"
            "Contact: anna@example.org\nSay !chat on to take questions in chat again.",
            f"feedback:{feedback.feedback_id}",
        )
    ]


@pytest.mark.parametrize(
    ("text", "contact", "error"),
    [
        (None, None, BadRequest),
        ("", None, BadRequest),
        (7, None, BadRequest),
        ("x" * 10_001, None, TooLarge),
        ("Hi", "c" * 321, TooLarge),
        ("Hi", 5, BadRequest),
    ],
)
async def test_bad_input_stores_nothing(text: object, contact: object, error: type) -> None:
    world = World()
    with pytest.raises(error):
        await world.desk.leave(ANNA, OFF, text, contact)
    assert world.store.feedback == []
    assert world.woken == []


async def test_a_form_while_chat_is_on_and_a_flood_are_refused() -> None:
    world = World()
    with pytest.raises(Conflict) as refused:
        await world.desk.leave(ANNA, SELLER, "Hello", None)
    assert refused.value.errcode == "BAZAAR_CHAT_ENABLED"
    await world.desk.leave(ANNA, OFF, "one", None)
    await world.desk.leave(ANNA, OFF, "two", "")
    with pytest.raises(RateLimited):
        await world.desk.leave(ANNA, OFF, "three", None)
    assert [(f.text, f.contact) for f, _ in world.store.feedback] == [
        ("one", None),
        ("two", None),
    ]
    await world.tasks.close()
