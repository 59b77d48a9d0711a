"""A seller's templates: checks, order, `!t` numbering and filling, and the management
commands, answered by the bot's notices; over in-memory fakes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import pytest

from bridge.core.blocking import Blocking
from bridge.core.commands import SellerCommands
from bridge.core.ids import EventID, MessageID, RoomID, SellerID, SiteID, UserID
from bridge.core.models import (
    Attachment,
    AttachmentKind,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Member,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
    Template,
)
from bridge.core.template_rules import (
    check_name,
    check_position,
    check_text,
    next_position,
    ordered,
    parse_position,
    pick,
)
from bridge.core.templates import TemplateDesk
from bridge.core.validation import MAX_TEXT_CHARS
from bridge.errors import BadRequest, NotFound, TooLarge
from tests.core.fakes import SITE, START, FakeStore, conversation, world

SELLER = SellerID("acme")
MANAGER = Member(UserID("@manager:hs"), "manager")
MANAGEMENT = RoomID("!management:hs")


def template(name: str, position: float, *, visible: bool = True, text: str = "") -> Template:
    return Template(SITE, SELLER, name, text or f"text of {name}", position, visible)


class TemplateFakeStore(FakeStore):
    """The fake store with the templates port."""

    def __init__(self) -> None:
        super().__init__()
        self.templates: dict[str, Template] = {}

    async def list_templates(self, site: SiteID, seller_id: SellerID) -> list[Template]:
        return ordered([t for t in self.templates.values() if t.seller_id == seller_id])

    async def get_template(self, site: SiteID, seller_id: SellerID, name: str) -> Template | None:
        return self.templates.get(name)

    async def put_template(self, template: Template) -> bool:
        created = template.name not in self.templates
        self.templates[template.name] = template
        return created

    async def delete_template(self, site: SiteID, seller_id: SellerID, name: str) -> bool:
        return self.templates.pop(name, None) is not None

    async def set_template_file(
        self, site: SiteID, seller_id: SellerID, name: str, attachment: Attachment | None
    ) -> Template | None:
        if name not in self.templates:
            return None
        self.templates[name] = replace(self.templates[name], attachment=attachment)
        return self.templates[name]


class Rooms:
    """What the members see in their rooms: notices and the files the bot posted."""

    def __init__(self) -> None:
        self.notices: dict[RoomID, list[str]] = {}
        self.files: list[tuple[RoomID, str, bytes]] = []

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        self.notices.setdefault(room_id, []).append(text)

    async def send_bot_file(self, room_id: RoomID, attachment: Attachment, data: bytes) -> None:
        self.files.append((room_id, attachment.name, data))

    async def display_name(self, user_id: UserID) -> str | None:
        return "Maria" if user_id == MANAGER.user_id else None


class Files:
    max_bytes = 1024

    def __init__(self) -> None:
        self.kept: dict[str, bytes] = {}

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment:
        if not data.startswith(b"%PDF"):
            raise BadRequest("This kind of file is not accepted", "BAZAAR_FILE_TYPE")
        sha256 = f"sha-{len(self.kept)}"
        self.kept[sha256] = data
        return Attachment(
            "", AttachmentKind.FILE, name or "file", "application/pdf", len(data), sha256
        )

    async def read(self, sha256: str) -> bytes | None:
        return self.kept.get(sha256)


class Replies:
    """The buyer's side of a member's reply: what reached them, once per client id."""

    def __init__(self) -> None:
        self.sent: list[Message] = []

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
    ) -> tuple[Message, bool]:
        for message in self.sent:
            if client_id is not None and message.client_id == client_id:
                return message, False
        message = Message(
            message_id=MessageID(f"m{len(self.sent) + 1}"),
            conversation_id=conversation.conversation_id,
            sender=SenderKind.SELLER,
            sender_name="Maria" if member == MANAGER else member.user_id,
            text=text,
            lang=seller.language,
            status=MessageStatus.SENT,
            created_at=sent_at,
            client_id=client_id,
            sender_user_id=member.user_id,
            attachments=tuple(attachments),
        )
        self.sent.append(message)
        return message, True


class Desk:
    """A seller's management room and one conversation room, with templates."""

    def __init__(self) -> None:
        base = world()
        self.store = TemplateFakeStore()
        self.store.sellers = base.store.sellers
        self.store.buyers = base.store.buyers
        self.rooms = Rooms()
        self.files = Files()
        self.replies = Replies()
        self.templates = TemplateDesk(self.store, self.rooms, self.files, now=lambda: START)
        self.templates.reply_through(self.replies)
        blocking = Blocking(self.store, base.homeserver, base.courier, base.announcer)
        self.commands = SellerCommands(
            self.store,
            base.homeserver,
            blocking,
            room_commands=self.templates.room_commands,
            management_commands=self.templates.management_commands,
        )
        self.rooms_of_homeserver = base.homeserver
        self.chat = replace(
            conversation(),
            context=Context(ContextType.ORDER, "A-1001", "Blue kettle", url="https://shop/a"),
        )
        self.events = 0

    @property
    def seller(self) -> Seller:
        return self.store.sellers[SELLER]

    async def manage(self, text: str) -> str:
        await self.commands.run_management(MANAGEMENT, self.seller, MANAGER, text)
        # The built-in answers go through the homeserver fake, the added ones too.
        return self.rooms_of_homeserver.room(MANAGEMENT).notices[-1]

    async def say(self, text: str, chat: Conversation | None = None) -> list[str]:
        """What the room shows after a member says `text`: the notices since."""
        self.events += 1
        room = self.rooms_of_homeserver.room(self.chat.room_id)
        before_room, before_desk = len(room.notices), len(self.rooms.notices.get(room_id(self), []))
        await self.commands.run(
            chat or self.chat, self.seller, MANAGER, text, event_id=EventID(f"$e{self.events}")
        )
        return room.notices[before_room:] + self.rooms.notices.get(room_id(self), [])[before_desk:]


def room_id(desk: Desk) -> RoomID:
    assert desk.chat.room_id is not None
    return desk.chat.room_id


# Checks


@pytest.mark.parametrize("name", ["delivery", "size-chart", "v1.2_price", "доставка", "a" * 64])
def test_good_names_pass(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "two words", "a" * 65, "tab\there", "new\nline", "a/b", 5])
def test_bad_names_are_refused_with_their_errcode(name: object) -> None:
    with pytest.raises(BadRequest) as refused:
        check_name(name)
    assert refused.value.errcode == "BAZAAR_BAD_TEMPLATE_NAME"


def test_text_must_be_there_and_within_the_message_limit() -> None:
    assert check_text("Hello {buyer}") == "Hello {buyer}"
    with pytest.raises(BadRequest):
        check_text("   ")
    with pytest.raises(BadRequest):
        check_text(None)
    with pytest.raises(TooLarge):
        check_text("x" * (MAX_TEXT_CHARS + 1))


@pytest.mark.parametrize("value", ["1", True, None, math.inf, math.nan, 10**400, [1]])
def test_a_position_is_a_finite_json_number(value: object) -> None:
    with pytest.raises(BadRequest):
        check_position(value)


def test_a_typed_position_is_read_as_a_number() -> None:
    assert parse_position("2.5") == 2.5
    assert check_position(3) == 3.0
    for typed in ("two", "nan", "inf", ""):
        with pytest.raises(BadRequest):
            parse_position(typed)


# Order and numbering


def test_templates_are_ordered_by_position_then_name_and_new_ones_go_last() -> None:
    found = ordered([template("b", 2), template("c", 1.5), template("a", 2), template("z", -1)])
    assert [t.name for t in found] == ["z", "c", "a", "b"]
    assert next_position(found) == 3.0
    assert next_position([]) == 1.0


def test_pick_takes_a_number_from_one_or_a_name() -> None:
    listed = [template("hello", 1), template("Delivery", 2)]
    assert pick(listed, "1") == listed[0]
    assert pick(listed, "2") == listed[1]
    assert pick(listed, "delivery") == listed[1]
    for unknown in ("0", "3", "bye", "-1", "١"):
        assert pick(listed, unknown) is None


# !t in a conversation room


async def test_t_lists_the_visible_templates_numbered_in_order() -> None:
    desk = Desk()
    for t in (template("delivery", 2), template("hello", 1), template("old", 0, visible=False)):
        await desk.store.put_template(t)
    (answer,) = await desk.say("!t")
    assert answer.splitlines() == [
        "Templates — say !t <number> or !t <name> to send one:",
        "1. hello — text of hello",
        "2. delivery — text of delivery",
    ]


async def test_t_sends_the_filled_template_as_the_members_reply_and_the_room_sees_it() -> None:
    desk = Desk()
    await desk.store.put_template(template("hello", 1))
    await desk.store.put_template(
        template("delivery", 2, text="Hi {buyer}, {member} of {seller} here: {title} ({order}) {x}")
    )
    shown = await desk.say("!t 2")
    (sent,) = desk.replies.sent
    assert sent.text == "Hi Anna, Maria of ACME here: Blue kettle (A-1001)"
    assert sent.sender_name == "Maria"
    assert shown == [
        "Sent “delivery” to the buyer as Maria's reply:\n"
        "Hi Anna, Maria of ACME here: Blue kettle (A-1001)"
    ]
    await desk.say("!t Hello")
    assert [m.text for m in desk.replies.sent][-1] == "text of hello"


async def test_the_same_command_event_sends_once() -> None:
    desk = Desk()
    await desk.store.put_template(template("hello", 1))
    await desk.commands.run(desk.chat, desk.seller, MANAGER, "!t 1", event_id=EventID("$same"))
    await desk.commands.run(desk.chat, desk.seller, MANAGER, "!t 1", event_id=EventID("$same"))
    assert len(desk.replies.sent) == 1


async def test_a_templates_file_goes_to_the_buyer_and_into_the_room() -> None:
    desk = Desk()
    await desk.store.put_template(template("prices", 1, text="Our prices"))
    await desk.templates.attach(desk.store.templates["prices"], b"%PDF-1.4 list", "prices.pdf")
    await desk.say("!t prices")
    (sent,) = desk.replies.sent
    assert [(a.name, a.sha256) for a in sent.attachments] == [("prices.pdf", "sha-0")]
    assert desk.rooms.files == [(room_id(desk), "prices.pdf", b"%PDF-1.4 list")]


async def test_an_unknown_t_names_it_and_lists_what_there_is() -> None:
    desk = Desk()
    await desk.store.put_template(template("hello", 1))
    await desk.store.put_template(template("secret", 2, visible=False))
    for said in ("7", "bye", "secret"):
        (answer,) = await desk.say(f"!t {said}")
        assert answer.splitlines()[:2] == [
            f"There is no template “{said}”.",
            "Templates — say !t <number> or !t <name> to send one:",
        ]
        assert "1. hello" in answer
    assert desk.replies.sent == []


async def test_nothing_is_sent_in_a_blocked_conversation() -> None:
    desk = Desk()
    await desk.store.put_template(template("hello", 1))
    blocked = replace(desk.chat, state=ConversationState.BLOCKED)
    assert await desk.say("!t 1", blocked) == ["This conversation is blocked: nothing was sent."]
    assert desk.replies.sent == []


# The management room


async def test_management_commands_add_edit_move_hide_and_delete() -> None:
    desk = Desk()
    assert await desk.manage("!templates") == (
        "No templates yet. Add one with !template add <name> <text>."
    )
    assert await desk.manage("!template add hello Hello {buyer}!") == (
        "Added template “hello” at position 1."
    )
    assert await desk.manage("!template add delivery We deliver in 2 days") == (
        "Added template “delivery” at position 2."
    )
    await desk.manage("!template edit delivery We deliver tomorrow")
    await desk.manage("!template position delivery 0.5")
    await desk.manage("!template hide hello")
    assert (await desk.manage("!templates")).splitlines() == [
        "Templates (2), in order:",
        "0.5. delivery — We deliver tomorrow",
        "1. hello [hidden] — Hello {buyer}!",
    ]
    await desk.manage("!template show hello")
    assert desk.store.templates["hello"].visible
    assert await desk.manage("!template delete hello") == "Deleted template “hello”."
    assert list(desk.store.templates) == ["delivery"]


@pytest.mark.parametrize(
    ("said", "first_line"),
    [
        ("!template add " + "a" * 65 + " text", "A template's name is 1 to 64 letters"),
        ("!template add bye", "The text must not be empty."),
        ("!template add bye " + "x" * (MAX_TEXT_CHARS + 1), "The text is longer than"),
        ("!template position hello two", "The position must be a number"),
        ("!template position hello", "Give the position"),
        ("!template rename hello", "“rename” is not something I can do"),
        ("!template", "Say what to do"),
        ("!template edit", "Name the template"),
        ("!template add hello again", "There is already a template “hello”"),
    ],
)
async def test_bad_management_input_says_what_is_wrong_and_changes_nothing(
    said: str, first_line: str
) -> None:
    desk = Desk()
    await desk.manage("!template add hello Hello")
    before = dict(desk.store.templates)
    answer = await desk.manage(said)
    assert answer.startswith(first_line), answer
    assert "!template add <name> <text>" in answer  # the usage follows
    assert desk.store.templates == before


async def test_a_command_on_a_missing_template_says_so() -> None:
    desk = Desk()
    assert await desk.manage("!template delete nope") == (
        "There is no template “nope”. Say !templates to see them."
    )


# The API's side


async def test_put_keeps_what_is_not_given_and_an_unknown_seller_is_refused() -> None:
    desk = Desk()
    first, created = await desk.templates.put(SITE, SELLER, "hello", "Hi", visible=False)
    assert created and first.position == 1.0
    again, created = await desk.templates.put(SITE, SELLER, "hello", "Hi again")
    assert not created and again.position == 1.0 and not again.visible
    with pytest.raises(NotFound) as unknown:
        await desk.templates.templates(SITE, SellerID("nobody"))
    assert unknown.value.errcode == "BAZAAR_UNKNOWN_SELLER"
    with pytest.raises(NotFound) as missing:
        await desk.templates.delete(SITE, SELLER, "nope")
    assert missing.value.errcode == "BAZAAR_UNKNOWN_TEMPLATE"


async def test_a_refused_file_leaves_the_template_as_it_was() -> None:
    desk = Desk()
    hello, _ = await desk.templates.put(SITE, SELLER, "hello", "Hi")
    with pytest.raises(BadRequest):
        await desk.templates.attach(hello, b"MZ\x90\x00", "tool.exe")
    assert desk.store.templates["hello"].attachment is None
