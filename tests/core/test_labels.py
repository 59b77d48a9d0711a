"""Labels, notes, hand-over and reports in a conversation room: the bot's notices, what is
stored, and what the marketplace and the room hear of it."""

from __future__ import annotations

import json

import pytest

from bridge.core.blocking import Blocking
from bridge.core.commands import SellerCommands
from bridge.core.desk_commands import DeskCommands
from bridge.core.events import Announcer, WebhookEvent
from bridge.core.ids import SellerID, UserID
from bridge.core.labels import MAX_LABELS, BadLabel, SellerMarks, parse_label, parse_labels
from bridge.core.models import Conversation, Member, Seller, Site
from bridge.core.team import AnsweringRoles
from tests.core.fakes import SITE, FakeClock, World, conversation, world

OWNER = UserID("@owner:hs")
MANAGER = UserID("@manager:hs")
STAFF = UserID("@staff:hs")
ANSWERING = AnsweringRoles(frozenset({"owner", "manager"}))


def test_a_label_is_lower_cased_and_checked() -> None:
    assert parse_label("Zone-North") == "zone-north"
    assert parse_label(" a1 ") == "a1"
    assert parse_label("x" * 32) == "x" * 32
    for bad in ("", "   ", "x" * 33, "zone north", "zone_north", "зона", "a.b", 7, None):
        with pytest.raises(BadLabel) as refused:
            parse_label(bad)
        assert refused.value.errcode == "BAZAAR_BAD_LABEL"


def test_labels_are_sorted_without_repeats_and_at_most_ten() -> None:
    assert parse_labels(["b", "A", "a"]) == ("a", "b")
    assert parse_labels([]) == ()
    assert len(parse_labels([f"l{n}" for n in range(MAX_LABELS)])) == MAX_LABELS
    with pytest.raises(BadLabel, match="at most 10"):
        parse_labels([f"l{n}" for n in range(MAX_LABELS + 1)])
    with pytest.raises(BadLabel):
        parse_labels("zone-north")


class Room:
    """A conversation room with the bot listening for the desk's commands."""

    def __init__(self, *, webhook: bool = True) -> None:
        self.world: World = world()
        store = self.world.store
        store.sellers[SellerID("acme")] = Seller(
            SITE,
            SellerID("acme"),
            "ACME",
            "en",
            members=(Member(OWNER, "owner"), Member(MANAGER, "manager"), Member(STAFF, "staff")),
        )
        self.world.homeserver.display_names[MANAGER] = "Anna"
        self.clock = FakeClock()
        sites = {SITE: Site(SITE, "Shop", "en", has_webhook=webhook)}
        announcer = Announcer(sites, lambda site: None, lambda site, buyer: None)
        self.chat: Conversation = store.seed_conversation(conversation())
        self.marks = SellerMarks(store, announcer, ANSWERING, self.world.courier.refresh_members)
        desk = DeskCommands(
            self.marks, ANSWERING, store, announcer, self.world.homeserver, clock=self.clock
        )
        blocking = Blocking(store, self.world.homeserver, self.world.courier, announcer)
        self.commands = SellerCommands(
            store, self.world.homeserver, blocking, room_commands=desk.commands()
        )

    @property
    def current(self) -> Conversation:
        return self.world.store.conversations[self.chat.conversation_id]

    async def say(self, text: str, sender: UserID = OWNER) -> str:
        seller = self.world.store.sellers[SellerID("acme")]
        role = "owner" if sender == OWNER else "manager"
        await self.commands.run(self.current, seller, Member(sender, role), text)
        await self.world.settled()
        return self.notices[-1]

    @property
    def notices(self) -> list[str]:
        return self.world.homeserver.room(self.chat.room_id).notices

    def webhooks(self, kind: str) -> list[WebhookEvent]:
        return [e for e in self.world.store.feed if isinstance(e, WebhookEvent) and e.type == kind]


async def test_label_and_unlabel_reach_the_store_the_room_and_the_marketplace() -> None:
    room = Room()
    assert await room.say("!label Zone-North") == "Labelled zone-north. Labels here: zone-north."
    assert await room.say("!label fragile") == (
        "Labelled fragile. Labels here: fragile, zone-north."
    )
    assert room.current.labels == ("fragile", "zone-north")
    # The room's state followed (the courier synced it with the stored conversation).
    assert room.world.homeserver.room(room.chat.room_id).labels == ("fragile", "zone-north")
    updates = room.webhooks("conversation.updated")
    assert [u.payload["conversation"]["labels"] for u in updates] == [
        ["zone-north"],
        ["fragile", "zone-north"],
    ]

    assert (
        await room.say("!label zone-north") == "This conversation is labelled zone-north already."
    )
    assert len(room.webhooks("conversation.updated")) == 2

    assert await room.say("!unlabel zone-north") == (
        "Took off the label zone-north. Labels here: fragile."
    )
    assert room.world.homeserver.room(room.chat.room_id).labels == ("fragile",)
    assert await room.say("!unlabel zone-north") == "This conversation has no label zone-north."
    assert await room.say("!unlabel fragile") == "Took off the label fragile. Labels here: none."
    assert room.current.labels == ()


async def test_a_bad_label_gets_a_notice_and_stores_nothing() -> None:
    room = Room()
    answer = await room.say("!label zone north")
    assert answer.startswith("'zone north' is not a label: use lower-case letters, digits")
    assert "!label <label>" in answer
    assert "Say which label" in await room.say("!label")
    assert "at most 32 characters" in await room.say("!label " + "x" * 33)
    for n in range(10):
        await room.say(f"!label l{n}")
    assert "at most 10 labels" in await room.say("!label one-more")
    assert "one-more" not in room.current.labels
    assert len(room.current.labels) == 10
    assert len(room.webhooks("conversation.updated")) == 10


async def test_a_note_is_marked_and_never_reaches_the_buyer() -> None:
    room = Room()
    assert await room.say("!note call before delivery", MANAGER) == (
        "📝 Note by Anna: call before delivery"
    )
    # A member without a display name is named by their id.
    assert await room.say("!note ok") == "📝 Note by @owner:hs: ok"
    assert room.world.store.messages == {}
    assert room.world.store.feed == []
    assert room.world.homeserver.room(room.chat.room_id).timeline == []
    answer = await room.say("!note")
    assert answer.startswith("A note needs its words.")
    assert "!note <text>" in answer


async def test_assign_mentions_the_member_and_clears() -> None:
    room = Room()
    homeserver_room = room.world.homeserver.room(room.chat.room_id)
    assert await room.say(f"!assign {MANAGER}") == "@manager:hs answers this conversation now."
    assert homeserver_room.mentioned == [[MANAGER]]
    assert room.current.assignee == MANAGER
    assert homeserver_room.assignee == MANAGER
    assert room.webhooks("conversation.updated")[-1].payload["conversation"]["assignee"] == MANAGER

    assert await room.say("!assign me") == "@owner:hs answers this conversation now."
    assert room.current.assignee == OWNER
    # A client writes a mention's pill as the member's display name in the plain body.
    assert await room.say("!assign anna") == "@manager:hs answers this conversation now."
    assert room.current.assignee == MANAGER

    assert await room.say("!assign none") == "Nobody in particular answers this conversation now."
    assert room.current.assignee is None
    assert homeserver_room.assignee is None
    assert len(room.webhooks("conversation.updated")) == 4


async def test_assign_refuses_anyone_who_does_not_answer() -> None:
    room = Room()
    # Staff is a member of the seller, but not in a role that answers.
    answer = await room.say(f"!assign {STAFF}")
    assert answer.startswith("@staff:hs does not answer for ACME: assign one of @owner:hs, ")
    assert "!assign me" in answer
    assert "is nobody who answers here" in await room.say("!assign Boris")
    assert "Say who answers" in await room.say("!assign")
    assert room.current.assignee is None
    assert room.webhooks("conversation.updated") == []


async def test_report_asks_to_confirm_then_tells_the_marketplace() -> None:
    room = Room()
    answer = await room.say("!report asks to pay outside the site", MANAGER)
    assert answer == (
        "Report this buyer to the marketplace for “asks to pay outside the site”? "
        "Say !report confirm within 2 minutes."
    )
    assert room.webhooks("buyer.reported") == []
    # Another member's confirm is not this one's.
    assert await room.say("!report confirm") == "Nothing to confirm: say !report <reason> first."
    assert await room.say("!report confirm", MANAGER) == (
        "Reported: the marketplace has your report of this buyer."
    )
    (reported,) = room.webhooks("buyer.reported")
    report = reported.payload["report"]
    assert report == {
        "conversation_id": "c1",
        "seller_id": "acme",
        "buyer_id": "anna",
        "reported_by": MANAGER,
        "reason": "asks to pay outside the site",
        "created_at": report["created_at"],
    }
    assert report["created_at"].endswith("Z")
    json.dumps(reported.payload)
    # Said once, confirmed once.
    assert await room.say("!report confirm", MANAGER) == (
        "Nothing to confirm: say !report <reason> first."
    )


async def test_a_report_confirmed_too_late_or_without_reason_sends_nothing() -> None:
    room = Room()
    await room.say("!report spam")
    room.clock.advance(121)
    assert await room.say("!report confirm") == "Nothing to confirm: say !report <reason> first."
    answer = await room.say("!report")
    assert answer.startswith("Say why you report this buyer.")
    assert "!report <reason>" in answer
    assert room.webhooks("buyer.reported") == []


async def test_a_site_without_webhook_hears_no_report() -> None:
    room = Room(webhook=False)
    await room.say("!report spam")
    assert "nothing was sent" in await room.say("!report confirm")


async def test_the_commands_are_in_help() -> None:
    room = Room()
    answer = await room.say("!help")
    for line in ("!label <label>", "!unlabel <label>", "!note <text>", "!assign me", "!report"):
        assert line in answer
