"""Each event of a transaction parses once into a typed record, or into nothing when it is
malformed or of no use to the bridge. Events are hostile input: every field may be missing
or of the wrong type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.models import AttachmentKind
from bridge.core.room_events import (
    MembershipChange,
    MessageEdit,
    PowerLevelsChange,
    ReadReceipt,
    Redaction,
    RoomMessage,
    TypingChange,
)
from bridge.matrix.incoming import parse_event

ROOM = "!room:hs"
SELLER = "@anna:hs"
BOT = "@bazaar:hs"


def is_ours(user_id: str) -> bool:
    return user_id in (BOT, "@bazaar_buyer:hs")


def message(content: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "room_id": ROOM,
        "sender": SELLER,
        "event_id": "$e1",
        "origin_server_ts": 1_767_225_600_000,
        "content": content,
        **fields,
    }


def test_a_text_message_keeps_its_words_cleaned_html_and_time() -> None:
    (said,) = parse_event(
        message(
            {
                "msgtype": "m.text",
                "body": "Hello",
                "format": "org.matrix.custom.html",
                "formatted_body": "<b>Hello</b><script>alert(1)</script>",
            }
        ),
        is_ours,
    )
    assert said == RoomMessage(
        RoomID(ROOM),
        UserID(SELLER),
        EventID("$e1"),
        "Hello",
        "<b>Hello</b>",
        datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_reply_loses_the_quoted_fallback_and_names_what_it_answers() -> None:
    (said,) = parse_event(
        message(
            {
                "msgtype": "m.text",
                "body": "> <@boris:hs> Is it blue?\n\nYes, blue.",
                "m.relates_to": {"m.in_reply_to": {"event_id": "$question"}},
            }
        ),
        is_ours,
    )
    assert isinstance(said, RoomMessage)
    assert (said.text, said.reply_to) == ("Yes, blue.", EventID("$question"))


def test_a_file_carries_its_attachment_and_its_caption() -> None:
    (said,) = parse_event(
        message(
            {
                "msgtype": "m.image",
                "body": "Here is the back",
                "filename": "back.png",
                "url": "mxc://hs/abc",
                "info": {"mimetype": "image/png", "size": 1200, "w": 40, "h": 30},
            }
        ),
        is_ours,
    )
    assert isinstance(said, RoomMessage) and said.attachment is not None
    assert said.text == "Here is the back"
    assert (said.attachment.kind, said.attachment.name, said.attachment.mxc) == (
        AttachmentKind.IMAGE,
        "back.png",
        "mxc://hs/abc",
    )
    assert (said.attachment.width, said.attachment.height) == (40, 30)


def test_a_file_named_by_its_body_has_no_caption() -> None:
    (said,) = parse_event(
        message({"msgtype": "m.file", "body": "sizes.pdf", "url": "mxc://hs/pdf"}), is_ours
    )
    assert isinstance(said, RoomMessage) and said.attachment is not None
    assert (said.text, said.attachment.name) == ("", "sizes.pdf")


def test_an_edit_names_its_target_and_the_new_words() -> None:
    (edit,) = parse_event(
        message(
            {
                "msgtype": "m.text",
                "body": "* Yes, navy",
                "m.new_content": {"msgtype": "m.text", "body": "Yes, navy"},
                "m.relates_to": {"rel_type": "m.replace", "event_id": "$e0"},
            }
        ),
        is_ours,
    )
    assert isinstance(edit, MessageEdit)
    assert (edit.target, edit.text, edit.html) == (EventID("$e0"), "Yes, navy", None)


def test_redaction_membership_power_levels_typing_and_receipts() -> None:
    assert parse_event(
        {"type": "m.room.redaction", "room_id": ROOM, "sender": SELLER, "redacts": "$e0"}
        | {"content": {}, "origin_server_ts": 1_767_225_600_000},
        is_ours,
    ) == [Redaction(RoomID(ROOM), UserID(SELLER), EventID("$e0"), datetime(2026, 1, 1, tzinfo=UTC))]
    assert parse_event(
        {
            "type": "m.room.member",
            "room_id": ROOM,
            "sender": SELLER,
            "state_key": SELLER,
            "content": {"membership": "join", "displayname": "Anna"},
        },
        is_ours,
    ) == [MembershipChange(RoomID(ROOM), UserID(SELLER), UserID(SELLER), "join", "Anna")]
    assert parse_event(
        {"type": "m.room.power_levels", "room_id": ROOM, "sender": SELLER, "content": {}},
        is_ours,
    ) == [PowerLevelsChange(RoomID(ROOM), UserID(SELLER))]
    assert parse_event(
        {"type": "m.typing", "room_id": ROOM, "content": {"user_ids": [SELLER, 7]}}, is_ours
    ) == [TypingChange(RoomID(ROOM), frozenset({UserID(SELLER)}))]
    receipts = parse_event(
        {
            "type": "m.receipt",
            "room_id": ROOM,
            "content": {
                "$e1": {"m.read": {SELLER: {"ts": 1}, BOT: {"ts": 1}}},
                "$e2": {"m.read": "not a map"},
            },
        },
        is_ours,
    )
    # The bot's own receipt is not a reader's.
    assert receipts == [ReadReceipt(RoomID(ROOM), UserID(SELLER), EventID("$e1"))]


def test_someone_elses_membership_change_carries_no_display_name() -> None:
    (change,) = parse_event(
        {
            "type": "m.room.member",
            "room_id": ROOM,
            "sender": BOT,
            "state_key": SELLER,
            "content": {"membership": "invite", "displayname": "Anna"},
        },
        is_ours,
    )
    assert isinstance(change, MembershipChange) and change.display_name is None


@pytest.mark.parametrize(
    "event",
    [
        message({"msgtype": "m.text", "body": "From the bridge itself"}, sender=BOT),
        message({"msgtype": "m.text", "body": "   "}),
        message({"msgtype": "m.text", "body": 42}),
        message({"msgtype": "m.location", "body": "Here", "geo_uri": "geo:0,0"}),
        message({"msgtype": "m.image", "body": "secret.png", "file": {"url": "mxc://hs/e"}}),
        message({"msgtype": "m.image", "body": "x.png", "url": "https://example.com/x.png"}),
        message({"msgtype": "m.text", "body": "x"}, event_id=None),
        message("not a map"),  # type: ignore[arg-type]
        message({"msgtype": "m.text", "body": "x"}, room_id=["!room:hs"]),
        message(
            {"body": "* x", "m.relates_to": {"rel_type": "m.replace", "event_id": "$e0"}}
        ),  # an edit without its new content
        {"type": "m.room.member", "room_id": ROOM, "sender": SELLER, "content": {}},
        {"type": "m.typing", "room_id": ROOM, "content": {"user_ids": "@anna:hs"}},
        {"type": "m.room.topic", "room_id": ROOM, "sender": SELLER, "content": {"topic": "x"}},
        {},
    ],
)
def test_what_the_bridge_has_no_use_for_parses_to_nothing(event: dict[str, Any]) -> None:
    assert parse_event(event, is_ours) == []
