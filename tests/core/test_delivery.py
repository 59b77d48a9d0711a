"""The courier: a conversation's buyer messages reach the room in stored order, once each,
through an unreachable homeserver, a lost answer and a refusal."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bridge.core.delivery import Backoff
from bridge.core.ids import SellerID
from bridge.core.models import Attachment, AttachmentKind, Message, MessageStatus, Original
from bridge.core.ports import HomeserverUnavailable, MatrixRejected
from bridge.core.translation import Translations
from tests.core.fakes import DictCache, ScriptedProvider, buyer_message, conversation, world

UNREACHABLE = HomeserverUnavailable("connection refused", maybe_done=False)
LOST_ANSWER = HomeserverUnavailable("connection cut", maybe_done=True)


@pytest.mark.parametrize(
    ("attempt", "delay"), [(0, 0.5), (1, 1.0), (3, 4.0), (6, 30.0), (50, 30.0)]
)
def test_backoff_doubles_and_stops_at_its_longest(attempt: int, delay: float) -> None:
    assert Backoff().delay(attempt) == delay


def test_backoff_takes_its_own_figures() -> None:
    backoff = Backoff(first=1.0, factor=3.0, longest=5.0)
    assert [backoff.delay(attempt) for attempt in range(4)] == [1.0, 3.0, 5.0, 5.0]


async def test_messages_reach_the_room_in_stored_order_through_outages() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    messages = [w.store.seed_message(buyer_message(chat, text)) for text in "abc"]
    # "b" fails twice while "c" waits behind it.
    w.homeserver.send_answers = [None, UNREACHABLE, UNREACHABLE, None]

    w.courier.wake(chat.conversation_id)
    await w.settled()

    assert w.homeserver.room(chat.room_id).timeline == [(m.message_id, m.text) for m in messages]
    assert [w.stored(m).status for m in messages] == [MessageStatus.SENT] * 3


async def test_a_retried_first_send_keeps_its_place() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    first, second = (w.store.seed_message(buyer_message(chat, text)) for text in "ab")
    w.homeserver.send_answers = [UNREACHABLE]  # the first send fails once
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert [text for _, text in w.homeserver.room(chat.room_id).timeline] == ["a", "b"]
    assert w.stored(first).event_id == "$event1"
    assert w.stored(second).event_id == "$event2"


async def test_each_conversation_keeps_its_own_order() -> None:
    w = world()
    one = w.store.seed_conversation(conversation(1))
    two = w.store.seed_conversation(conversation(2, buyer_id="boris"))
    for text in ("1a", "1b"):
        w.store.seed_message(buyer_message(one, text))
    for text in ("2a", "2b"):
        w.store.seed_message(buyer_message(two, text))
    w.homeserver.send_answers = [UNREACHABLE, UNREACHABLE]
    w.courier.wake(one.conversation_id)
    w.courier.wake(two.conversation_id)
    await w.settled()
    assert [t for _, t in w.homeserver.room(one.room_id).timeline] == ["1a", "1b"]
    assert [t for _, t in w.homeserver.room(two.room_id).timeline] == ["2a", "2b"]


async def test_a_permanent_refusal_fails_the_message_with_the_reason() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    refused, after = (w.store.seed_message(buyer_message(chat, text)) for text in "ab")
    w.homeserver.send_answers = [MatrixRejected("M_TOO_LARGE", "event too large", permanent=True)]

    w.courier.wake(chat.conversation_id)
    await w.settled()

    failed = w.stored(refused)
    assert failed.status == MessageStatus.FAILED
    assert failed.error == "The homeserver refused the message: M_TOO_LARGE: event too large"
    assert w.stored(after).status == MessageStatus.SENT
    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["b"]


async def test_the_buyers_stream_hears_of_the_failure() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    w.store.seed_message(buyer_message(chat, "a"))
    w.homeserver.send_answers = [MatrixRejected("M_FORBIDDEN", "not in room")]
    w.courier.wake(chat.conversation_id)
    await w.settled()
    [frame] = w.frames("message.updated")
    assert frame.payload["message"]["status"] == "failed"


async def test_a_send_whose_answer_was_lost_is_not_sent_twice() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    first, second = (w.store.seed_message(buyer_message(chat, text)) for text in "ab")
    # The first send lands in the room, but its answer never comes back.
    w.homeserver.send_answers = [("carried out", LOST_ANSWER)]

    w.courier.wake(chat.conversation_id)
    await w.settled()

    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["a", "b"]
    assert w.stored(first).status == MessageStatus.SENT
    assert w.stored(first).event_id == "$event1"
    assert w.stored(second).event_id == "$event2"


async def test_a_lost_answer_whose_send_never_landed_is_sent_again() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    message = w.store.seed_message(buyer_message(chat, "a"))
    w.homeserver.send_answers = [LOST_ANSWER]  # maybe done, but in fact not
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["a"]
    assert w.stored(message).status == MessageStatus.SENT


async def test_after_a_restart_what_reached_the_room_is_recorded_not_resent() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    landed, waiting = (w.store.seed_message(buyer_message(chat, text)) for text in "ab")
    # An earlier run sent "a" and died before recording it.
    w.homeserver.room(chat.room_id).timeline.append((landed.message_id, landed.text))

    await w.courier.resume()
    await w.settled()

    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["a", "b"]
    assert [w.stored(m).status for m in (landed, waiting)] == [MessageStatus.SENT] * 2


async def test_a_conversation_without_a_room_gets_one_then_its_messages() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation(room=False))
    w.store.seed_message(buyer_message(chat, "hello"))
    w.homeserver.room_answers = [UNREACHABLE, MatrixRejected("M_FORBIDDEN", "try later")]

    w.courier.wake(chat.conversation_id)
    await w.settled()

    room_id = w.store.conversations[chat.conversation_id].room_id
    assert room_id is not None
    assert [t for _, t in w.homeserver.room(room_id).timeline] == ["hello"]


async def test_a_room_refused_for_good_fails_the_waiting_messages() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation(room=False))
    message = w.store.seed_message(buyer_message(chat, "hello"))
    w.homeserver.room_answers = [MatrixRejected("M_INVALID_USERNAME", "bad ghost", permanent=True)]

    w.courier.wake(chat.conversation_id)
    await w.settled()

    assert w.stored(message).status == MessageStatus.FAILED
    assert w.stored(message).error == (
        "The conversation's room can't be made: M_INVALID_USERNAME: bad ghost"
    )
    assert w.store.conversations[chat.conversation_id].room_id is None


async def test_a_wake_while_delivering_is_not_lost() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    w.store.seed_message(buyer_message(chat, "a"))
    w.homeserver.send_answers = [UNREACHABLE]
    w.courier.wake(chat.conversation_id)
    # Stored while the worker is busy with "a".
    later = w.store.seed_message(buyer_message(chat, "b"))
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["a", "b"]
    assert w.stored(later).status == MessageStatus.SENT


def with_photo(message: Message, sha256: str) -> Message:
    photo = Attachment(
        f"{message.message_id}.0", AttachmentKind.IMAGE, "kettle.jpg", "image/jpeg", 3
    )
    return replace(message, attachments=(replace(photo, sha256=sha256),))


async def test_a_buyers_file_goes_into_the_homeservers_media_first() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    w.media.files["abc"] = b"jpg"
    message = w.store.seed_message(with_photo(buyer_message(chat, "look"), "abc"))
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert w.homeserver.uploads == [b"jpg"]
    assert [a.mxc for a in w.stored(message).attachments] == ["mxc://hs/1"]
    assert w.stored(message).status == MessageStatus.SENT


async def test_a_message_whose_file_is_gone_fails_saying_so() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    message = w.store.seed_message(with_photo(buyer_message(chat, "look"), "gone"))
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert w.stored(message).status == MessageStatus.FAILED
    assert w.stored(message).error == (
        f"The file can't be sent: the bytes of {message.message_id}.0 are gone from the store"
    )
    assert w.homeserver.room(chat.room_id).timeline == []


async def test_the_seller_reads_the_buyers_message_in_the_sellers_language() -> None:
    w = world(Translations(ScriptedProvider(), DictCache(), None))
    w.store.sellers[SellerID("acme")] = replace(w.store.sellers[SellerID("acme")], language="de")
    chat = w.store.seed_conversation(conversation())
    message = w.store.seed_message(buyer_message(chat, "hello"))
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["[de] hello"]
    assert w.stored(message).original == Original("hello", "en")


async def test_a_room_not_made_in_time_is_made_later() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation(room=False))
    w.homeserver.room_answers = [UNREACHABLE]
    waited = await w.courier.provision_now(chat)
    assert waited.room_id is None
    await w.settled()
    assert w.store.conversations[chat.conversation_id].room_id == "!c1:hs"


async def test_a_sent_message_the_store_failed_to_record_is_looked_for_before_a_resend() -> None:
    w = world()
    chat = w.store.seed_conversation(conversation())
    message = w.store.seed_message(buyer_message(chat, "a"))
    record = w.store.mark_delivered
    failures = [TimeoutError("no connection free in the pool")]

    async def mark_delivered_once_failing(*args: Any, **kwargs: Any) -> Message:
        if failures:
            raise failures.pop()
        return await record(*args, **kwargs)

    w.store.mark_delivered = mark_delivered_once_failing  # type: ignore[method-assign]
    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert w.stored(message).status == MessageStatus.PENDING  # sent, not recorded

    w.courier.wake(chat.conversation_id)
    await w.settled()
    assert [t for _, t in w.homeserver.room(chat.room_id).timeline] == ["a"]
    assert w.stored(message).status == MessageStatus.SENT
