"""Who may speak in a conversation room, as its power levels say: no homeserver needed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.core.ids import UserID
from bridge.core.models import Member, Side
from bridge.matrix.power_levels import (
    BLOCKED_LEVEL,
    BOT_LEVEL,
    BUYER_LEVEL,
    MEMBER_LEVEL,
    power_levels,
    wanted_power_levels,
)

BOT = UserID("@bazaar:localhost")
GHOST = UserID("@bazaar_shop_anna:localhost")
OWNER = Member(UserID("@owner:localhost"), "owner")
MANAGER = Member(UserID("@manager:localhost"), "manager")


def level_of(levels: Mapping[str, Any], user_id: str) -> int:
    """`user_id`'s level as the spec reads power levels: listed, else `users_default`."""
    users = levels.get("users")
    listed = users.get(user_id) if isinstance(users, dict) else None
    level = listed if listed is not None else levels.get("users_default", 0)
    return level if isinstance(level, int) else 0


def test_a_new_room_lets_members_and_the_buyer_speak_and_only_the_bot_change_it() -> None:
    levels = power_levels(BOT, GHOST, list_bot=True)
    assert levels["users"] == {GHOST: BUYER_LEVEL, BOT: BOT_LEVEL}
    assert level_of(levels, OWNER.user_id) == level_of(levels, MANAGER.user_id) == MEMBER_LEVEL
    assert level_of(levels, GHOST) == BUYER_LEVEL
    assert level_of(levels, BOT) == BOT_LEVEL
    assert levels["events_default"] <= BUYER_LEVEL
    for key in ("state_default", "invite", "kick", "ban", "redact"):
        assert levels[key] == BOT_LEVEL > MEMBER_LEVEL
    for kind in ("m.room.name", "m.room.power_levels", "io.bazaar.conversation", "m.bridge"):
        assert levels["events"][kind] == BOT_LEVEL


def test_a_room_whose_creator_outranks_all_does_not_list_the_bot() -> None:
    levels = power_levels(BOT, GHOST, list_bot=False)
    assert BOT not in levels["users"]


def current(users: dict[str, int], events_default: int = 0) -> dict[str, object]:
    return {
        "users": users,
        "users_default": MEMBER_LEVEL,
        "events_default": events_default,
        "state_default": BOT_LEVEL,
    }


def test_levels_that_match_need_no_change() -> None:
    room = current({GHOST: BUYER_LEVEL, BOT: BOT_LEVEL})
    assert wanted_power_levels(room, GHOST, BOT, frozenset()) is None


def test_listed_members_are_dropped_for_the_default_and_the_rest_kept() -> None:
    room = current({OWNER.user_id: MEMBER_LEVEL, "@gone:localhost": MEMBER_LEVEL, GHOST: 0})
    room["users_default"] = 0
    wanted = wanted_power_levels(room, GHOST, BOT, frozenset())
    assert wanted == {
        "users": {GHOST: BUYER_LEVEL},
        "users_default": MEMBER_LEVEL,
        "events_default": 0,
        "state_default": BOT_LEVEL,
    }


def test_the_seller_blocking_silences_the_ghost() -> None:
    room = current({GHOST: BUYER_LEVEL})
    wanted = wanted_power_levels(room, GHOST, BOT, frozenset({Side.SELLER}))
    assert wanted is not None
    assert level_of(wanted, GHOST) == BLOCKED_LEVEL < wanted["events_default"]
    assert level_of(wanted, OWNER.user_id) >= wanted["events_default"]


def test_the_buyer_blocking_silences_the_members() -> None:
    room = current({GHOST: BUYER_LEVEL})
    wanted = wanted_power_levels(room, GHOST, BOT, frozenset({Side.BUYER}))
    assert wanted is not None
    assert level_of(wanted, OWNER.user_id) < wanted["events_default"]
    assert level_of(wanted, GHOST) == BUYER_LEVEL


def test_the_bot_stays_listed_only_where_the_room_lists_it() -> None:
    unlisted = current({GHOST: BUYER_LEVEL})
    assert wanted_power_levels(unlisted, GHOST, BOT, frozenset()) is None
    listed = current({OWNER.user_id: MEMBER_LEVEL, GHOST: BUYER_LEVEL, BOT: BOT_LEVEL})
    wanted = wanted_power_levels(listed, GHOST, BOT, frozenset())
    assert wanted is not None
    assert wanted["users"] == {GHOST: BUYER_LEVEL, BOT: BOT_LEVEL}
