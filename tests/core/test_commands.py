"""A seller member's commands in a conversation room, answered by the bot's notices."""

from __future__ import annotations

from bridge.core.blocking import Blocking
from bridge.core.commands import SellerCommands, is_command
from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.models import (
    Conversation,
    ConversationState,
    Member,
    MessageStatus,
    Original,
    SenderKind,
    Side,
    TranslationNote,
)
from tests.core.fakes import FakeClock, World, buyer_message, conversation, world

OWNER = UserID("@owner:hs")
MANAGER = UserID("@manager:hs")


class Desk:
    """A conversation room with the bot listening for commands."""

    def __init__(self) -> None:
        self.world: World = world()
        self.clock = FakeClock()
        self.chat: Conversation = self.world.store.seed_conversation(conversation())
        blocking = Blocking(
            self.world.store, self.world.homeserver, self.world.courier, self.world.announcer
        )
        self.commands = SellerCommands(
            self.world.store, self.world.homeserver, blocking, clock=self.clock
        )

    async def say(self, text: str, sender: UserID = OWNER, reply_to: str | None = None) -> str:
        """The bot's answer to `text`, as a reply to the event `reply_to` when given."""
        current = self.world.store.conversations[self.chat.conversation_id]
        replied = EventID(reply_to) if reply_to else None
        seller = self.world.store.sellers[current.seller_id]
        await self.commands.run(current, seller, Member(sender, "owner"), text, reply_to=replied)
        await self.world.settled()
        return self.notices[-1]

    @property
    def notices(self) -> list[str]:
        return self.world.homeserver.room(self.chat.room_id).notices

    @property
    def blocked_by(self) -> frozenset[Side]:
        return self.world.store.conversations[self.chat.conversation_id].blocked_by


async def test_block_asks_to_confirm_and_blocks_nobody_yet() -> None:
    desk = Desk()
    answer = await desk.say("!block")
    assert answer == (
        "Block this buyer in all your conversations? Say !block confirm within 2 minutes."
    )
    assert desk.blocked_by == frozenset()


async def test_block_then_confirm_blocks_the_buyer() -> None:
    desk = Desk()
    await desk.say("!block")
    desk.clock.advance(119)
    answer = await desk.say("!BLOCK  confirm")
    assert answer == (
        "Blocked. The buyer can no longer write to you in any conversation. Say !unblock to undo."
    )
    assert desk.blocked_by == {Side.SELLER}
    assert desk.world.homeserver.room(desk.chat.room_id).blocked_by == {Side.SELLER}


async def test_confirm_without_block_is_refused() -> None:
    desk = Desk()
    assert await desk.say("!block confirm") == "Nothing to confirm: say !block first."
    assert desk.blocked_by == frozenset()


async def test_a_late_confirm_is_refused() -> None:
    desk = Desk()
    await desk.say("!block")
    desk.clock.advance(121)
    assert await desk.say("!block confirm") == "Nothing to confirm: say !block first."
    assert desk.blocked_by == frozenset()


async def test_only_who_asked_can_confirm() -> None:
    desk = Desk()
    await desk.say("!block")
    assert await desk.say("!block confirm", MANAGER) == "Nothing to confirm: say !block first."
    assert desk.blocked_by == frozenset()


async def test_a_confirm_counts_once() -> None:
    desk = Desk()
    await desk.say("!block")
    await desk.say("!block confirm")
    await desk.say("!unblock")
    assert await desk.say("!block confirm") == "Nothing to confirm: say !block first."
    assert desk.blocked_by == frozenset()


async def test_block_when_blocked_and_unblock() -> None:
    desk = Desk()
    await desk.say("!block")
    await desk.say("!block confirm")
    assert await desk.say("!block") == "This buyer is already blocked. Say !unblock to undo."
    assert await desk.say("!unblock") == "Unblocked. The buyer can write to you again."
    assert desk.blocked_by == frozenset()
    assert await desk.say("!unblock") == "This buyer is not blocked."


async def test_an_unknown_or_malformed_command_is_named_before_the_commands() -> None:
    desk = Desk()
    help_text = desk.commands.help
    for text in ("!blok", "!block now", "!translation maybe"):
        assert await desk.say(text) == f"“{text}” is not a command I know.\n{help_text}"
    assert await desk.say("!") == f"“!” is not a command I know.\n{help_text}"
    assert await desk.say("!help") == help_text
    assert await desk.say("!" + "x" * 60) == f"“!{'x' * 39}…” is not a command I know.\n{help_text}"
    assert "!block confirm — confirm the block" in help_text
    assert desk.blocked_by == frozenset()


async def test_translation_off_and_on() -> None:
    desk = Desk()
    answer = await desk.say("!translation off")
    assert answer.startswith("Translation is off")
    assert not desk.world.store.conversations[desk.chat.conversation_id].translation_enabled
    assert (await desk.say("!translation on")).startswith("Translation is on")
    assert desk.world.store.conversations[desk.chat.conversation_id].translation_enabled


async def test_original_of_the_buyers_latest_message() -> None:
    desk = Desk()
    assert await desk.say("!original") == "The buyer has not written yet."
    desk.world.store.seed_message(
        buyer_message(
            desk.chat,
            "[en] Is it in stock?",
            original=Original("Есть в наличии?", "ru"),
            translation=TranslationNote("ru", "en", "scripted"),
            status=MessageStatus.SENT,
        )
    )
    desk.world.store.seed_message(
        buyer_message(desk.chat, "Yes", sender=SenderKind.SELLER, status=MessageStatus.SENT)
    )
    assert await desk.say("!original") == "Original (ru):\nЕсть в наличии?"


async def test_original_of_a_replied_to_message() -> None:
    desk = Desk()
    desk.world.store.seed_message(
        buyer_message(desk.chat, "Hello", event_id="$hello", status=MessageStatus.SENT)
    )
    desk.world.store.seed_message(
        buyer_message(
            desk.chat,
            "Hi",
            event_id="$hi",
            translation=TranslationNote("en", "de", "scripted", failed=True),
            status=MessageStatus.SENT,
        )
    )
    assert await desk.say("!original", reply_to="$hello") == (
        "This message was not translated; what you see is what was written."
    )
    assert await desk.say("!original", reply_to="$hi") == (
        "This message was not translated; it reads as written:\nHi"
    )
    assert await desk.say("!original", reply_to="$elsewhere") == (
        "That message did not pass through the bridge, so it has no original."
    )


async def test_status_in_the_management_room_counts_the_conversations() -> None:
    desk = Desk()
    room = RoomID("!manage:hs")
    desk.world.store.conversations.clear()
    for chat in (
        conversation(1),
        conversation(2, state=ConversationState.ARCHIVED),
        conversation(3, state=ConversationState.ARCHIVED),
    ):
        desk.world.store.seed_conversation(chat)
    seller = desk.world.store.sellers[desk.chat.seller_id]
    await desk.commands.run_management(room, seller, Member(OWNER, "owner"), "!status")
    await desk.commands.run_management(room, seller, Member(OWNER, "owner"), "!block")
    assert desk.world.homeserver.room(room).notices == [
        "Conversations: 1 active, 2 archived, 0 blocked",
        f"“!block” is not a command I know.\n{desk.commands.management_help}",
    ]


def test_what_counts_as_a_command() -> None:
    assert [is_command(text) for text in ("!help", "!", "!!!", "hi !help")] == [
        True,
        False,
        False,
        False,
    ]
