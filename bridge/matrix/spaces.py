"""The seller's Space: one per seller and site, with sections Active, Archived and Blocked,
each conversation room in exactly the section of its state, a section per label the seller
uses (a room in the section of each of its labels), and a management room."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from bridge.core.ids import RoomID, SellerID, SiteID, UserID
from bridge.core.models import ConversationState, Member, Seller, SellerSpace, Site
from bridge.core.ports import MatrixRejected
from bridge.matrix.bot import Bot
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.room_state import RoomStates

logger = logging.getLogger(__name__)

SECTION_NAMES = {
    ConversationState.ACTIVE: "Active",
    ConversationState.ARCHIVED: "Archived",
    ConversationState.BLOCKED: "Blocked",
}
# The section of the rooms whose buyer waits for an answer (core/response_time.py).
UNANSWERED = "Unanswered"
MANAGEMENT_TOPIC = "Talk to the Bazaar bot here: say !help for the commands."


async def tolerant(change: Awaitable[object]) -> bool:
    """A membership change that may already have happened (another sync got there first):
    True when the homeserver took it."""
    try:
        await change
    except MatrixRejected as error:
        logger.info("Membership change not needed or refused: %s", error)
        return False
    return True


class SpaceMemory(Protocol):
    def exclusive(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """One replica at a time makes a room that must exist once, looking again inside."""

    async def seller_space(self, site: SiteID, seller_id: SellerID) -> SellerSpace | None: ...

    async def remember_seller_space(
        self, site: SiteID, seller_id: SellerID, space: SellerSpace
    ) -> None: ...

    async def space_section(self, room_id: RoomID) -> ConversationState | None:
        """The section a conversation room was last put in, across restarts."""

    async def remember_space_section(self, room_id: RoomID, state: ConversationState) -> None: ...

    async def site_room(self, site: SiteID, purpose: str) -> RoomID | None: ...

    async def label_sections(self, site: SiteID, seller_id: SellerID) -> dict[str, RoomID]:
        """The seller's label sections, by label."""

    async def remember_label_section(
        self, site: SiteID, seller_id: SellerID, label: str, room_id: RoomID
    ) -> None: ...

    async def label_placements(self, room_id: RoomID) -> frozenset[str]:
        """The labels whose sections a conversation room was last put in."""

    async def remember_label_placement(self, room_id: RoomID, label: str, placed: bool) -> None: ...

    async def remember_site_room(self, site: SiteID, purpose: str, room_id: RoomID) -> None: ...


ADMIN_ROOM = "admins"
ADMIN_TOPIC = "The marketplace's control room: say !help for the commands."


def _levels(bot_listed: bool, bot: UserID, people: Sequence[UserID]) -> dict[str, Any]:
    users: dict[str, int] = dict.fromkeys(people, 50)
    if bot_listed:
        users[bot] = 100
    return {
        "users": users,
        "users_default": 0,
        "events_default": 0,
        "state_default": 100,
        "invite": 100,
        "kick": 100,
        "ban": 100,
        "redact": 100,
    }


class SellerSpaces:
    def __init__(
        self,
        gateway: MatrixGateway,
        bot: Bot,
        names: MatrixNames,
        memory: SpaceMemory,
        admins: Mapping[SiteID, tuple[UserID, ...]],
        states: RoomStates,
    ) -> None:
        self._admins = admins
        # The Space's rooms' members and power levels, kept like the conversation rooms'.
        self._states = states
        self._gateway = gateway
        self._bot = bot
        self._names = names
        self._memory = memory
        self._locks: dict[object, asyncio.Lock] = {}
        self._placed: dict[RoomID, ConversationState] = {}
        self._labels_placed: dict[RoomID, frozenset[str]] = {}
        self._unanswered_placed: dict[RoomID, bool] = {}
        self._members: dict[RoomID, frozenset[Member]] = {}

    def _child_content(self, present: bool) -> dict[str, Any]:
        return {"via": [self._names.domain]} if present else {}

    def _child(self, parent: RoomID, child: RoomID, present: bool) -> Any:
        return self._gateway.put_state(
            parent, "m.space.child", self._child_content(present), state_key=child
        )

    def parent_state(self, space: SellerSpace) -> dict[str, Any]:
        """A conversation room's `m.space.parent`: the seller's Space, which holds it
        through a section. Not the section itself, which changes with the room's state and
        would leave a stale parent behind each move."""
        return {
            "type": "m.space.parent",
            "state_key": space.space_id,
            "content": {"via": [self._names.domain], "canonical": True},
        }

    async def ensure(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> SellerSpace:
        key = (seller.site, seller.seller_id)
        async with self._locks.setdefault(key, asyncio.Lock()):
            space = await self._memory.seller_space(*key)
            if space is None or space.marketplace_id is None:
                async with self._memory.exclusive(f"space {seller.site} {seller.seller_id}"):
                    return await self._make_missing(seller, members, site_name)
            return space

    async def _make_missing(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> SellerSpace:
        """The Space and its marketplace room, made unless another replica made them
        meanwhile (read again under the exclusive lock)."""
        key = (seller.site, seller.seller_id)
        space = await self._memory.seller_space(*key)
        if space is None:
            space = await self._create(seller, members, site_name)
            await self._memory.remember_seller_space(*key, space)
            self._members.update(dict.fromkeys(space.rooms, frozenset(members)))
        if space.marketplace_id is None:
            # A Space made before sellers had a marketplace room.
            marketplace_id = await self._new_marketplace_room(seller, members, site_name)
            await self._child(space.space_id, marketplace_id, present=True)
            space = replace(space, marketplace_id=marketplace_id)
            await self._memory.remember_seller_space(*key, space)
        return space

    async def _room(
        self,
        name: str,
        people: Sequence[UserID],
        *,
        space: bool = False,
        topic: str | None = None,
        children: Sequence[RoomID] = (),
    ) -> RoomID:
        initial_state = [
            {"type": "m.space.child", "state_key": child, "content": self._child_content(True)}
            for child in children
        ]
        levels = _levels(await self._bot.lists_itself(), self._names.bot, people)
        room_id = await self._bot.create_room(
            alias_localpart=None,
            name=name,
            topic=topic,
            invite=list(people),
            initial_state=initial_state,
            power_levels=levels,
            space=space,
        )
        await self._states.made(
            room_id,
            initial_state,
            levels,
            {self._names.bot: "join"} | {user_id: "invite" for user_id in people},
        )
        return room_id

    async def _new_marketplace_room(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> RoomID:
        people = [m.user_id for m in members]
        people += [a for a in self._admins.get(seller.site, ()) if a not in people]
        return await self._room(
            f"{seller.name} ⇄ {site_name}",
            people,
            topic=f"{seller.name} and the {site_name} team: questions either way, listings",
        )

    async def ensure_admin_room(
        self, site: SiteID, site_name: str, admins: Sequence[UserID]
    ) -> RoomID:
        """The site admins' control room, where !broadcast reaches every seller."""
        async with (
            self._locks.setdefault((site, ADMIN_ROOM), asyncio.Lock()),
            self._memory.exclusive(f"admin room {site}"),
        ):
            room_id = await self._memory.site_room(site, ADMIN_ROOM)
            if room_id is None:
                room_id = await self._room(
                    f"Bazaar · {site_name} admins", admins, topic=ADMIN_TOPIC
                )
                await self._memory.remember_site_room(site, ADMIN_ROOM, room_id)
            return room_id

    async def ensure_admin_rooms(self, sites: Iterable[Site]) -> None:
        """A control room for each site that names admins; a site without them has none."""
        for site in sites:
            if site.admins:
                await self.ensure_admin_room(site.site_id, site.name, site.admins)

    async def _create(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> SellerSpace:
        people = [member.user_id for member in members]
        title = f"{seller.name} · {site_name}"
        # The Space comes last, its children already in its createRoom: no state event
        # for each of them afterwards.
        sections = {
            state: await self._room(f"{label} · {title}", people, space=True)
            for state, label in SECTION_NAMES.items()
        }
        management_id = await self._room(f"Bazaar · {title}", people, topic=MANAGEMENT_TOPIC)
        marketplace_id = await self._new_marketplace_room(seller, members, site_name)
        space_id = await self._room(
            title,
            people,
            space=True,
            topic="Buyer conversations, by state",
            children=[*sections.values(), management_id, marketplace_id],
        )
        logger.info("Made the Space %s for %s/%s", space_id, seller.site, seller.seller_id)
        return SellerSpace(space_id, sections, management_id, marketplace_id)

    async def place(
        self, room_id: RoomID, state: ConversationState, space: SellerSpace, *, new: bool = False
    ) -> None:
        """Put the room in the section of its state, and only there. A `new` room, just
        made, is in no section yet: only the one it goes to is written."""
        if room_id not in self._placed and not new:
            placed = await self._memory.space_section(room_id)
            if placed is not None:
                self._placed[room_id] = placed
        if self._placed.get(room_id) == state:
            return
        for section_state, section in space.sections.items():
            if new and section_state != state:
                continue
            await self._child(section, room_id, present=section_state == state)
        await self._memory.remember_space_section(room_id, state)
        self._placed[room_id] = state

    async def place_labels(
        self,
        room_id: RoomID,
        labels: Iterable[str],
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        space: SellerSpace,
    ) -> None:
        """Put the room in the section of each of its labels (made when the seller first
        uses the label) and take it out of the others; a section left empty stays."""
        wanted = frozenset(labels)
        placed = self._labels_placed.get(room_id)
        if placed is None:
            placed = await self._memory.label_placements(room_id)
        if placed == wanted:
            self._labels_placed[room_id] = wanted
            return
        for label in sorted(wanted - placed):
            section = await self._label_section(seller, members, site_name, space, label)
            await self._child(section, room_id, present=True)
            await self._memory.remember_label_placement(room_id, label, True)
        sections = await self._memory.label_sections(seller.site, seller.seller_id)
        for label in sorted(placed - wanted):
            left = sections.get(label)
            if left is not None:
                await self._child(left, room_id, present=False)
            await self._memory.remember_label_placement(room_id, label, False)
        self._labels_placed[room_id] = wanted

    async def place_unanswered(
        self,
        room_id: RoomID,
        waiting: bool,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
    ) -> None:
        """Put the room in the Unanswered section while its buyer waits for an answer, and
        take it out after (the section is made when first needed). Where the room sits is
        read from the section itself once per run, so a change missed before a restart is
        repaired on the next sync."""
        placed = self._unanswered_placed.get(room_id)
        if placed == waiting:
            return
        space = await self._memory.seller_space(seller.site, seller.seller_id)
        if space is None:
            return
        section = space.unanswered_id
        if section is None:
            if not waiting:
                self._unanswered_placed[room_id] = False
                return
            section = await self._unanswered_section(seller, members, site_name)
        if placed is None:
            child = await self._gateway.room_state(section, "m.space.child", room_id)
            placed = bool(child and child.get("via"))
        if placed != waiting:
            await self._child(section, room_id, present=waiting)
        self._unanswered_placed[room_id] = waiting

    async def _unanswered_section(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> RoomID:
        key = (seller.site, seller.seller_id)
        async with (
            self._locks.setdefault((*key, UNANSWERED), asyncio.Lock()),
            self._memory.exclusive(f"unanswered {seller.site} {seller.seller_id}"),
        ):
            space = await self._memory.seller_space(*key)
            if space is None:
                raise MatrixRejected("BAZAAR_NO_ROOM", "the seller has no Space yet")
            if space.unanswered_id is not None:
                return space.unanswered_id
            people = [member.user_id for member in members]
            section = await self._room(
                f"{UNANSWERED} · {seller.name} · {site_name}", people, space=True
            )
            await self._child(space.space_id, section, present=True)
            await self._memory.remember_seller_space(*key, replace(space, unanswered_id=section))
            self._members[section] = frozenset(members)
            logger.info("Made the Unanswered section of %s/%s", *key)
            return section

    async def _label_section(
        self,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        space: SellerSpace,
        label: str,
    ) -> RoomID:
        sections = await self._memory.label_sections(seller.site, seller.seller_id)
        if label in sections:
            return sections[label]
        async with (
            self._locks.setdefault((seller.site, seller.seller_id, label), asyncio.Lock()),
            self._memory.exclusive(f"label {seller.site} {seller.seller_id} {label}"),
        ):
            sections = await self._memory.label_sections(seller.site, seller.seller_id)
            if label in sections:
                return sections[label]
            people = [member.user_id for member in members]
            section = await self._room(f"{label} · {seller.name} · {site_name}", people, space=True)
            await self._child(space.space_id, section, present=True)
            await self._memory.remember_label_section(seller.site, seller.seller_id, label, section)
            self._members[section] = frozenset(members)
            logger.info("Made the section %s of %s/%s", label, seller.site, seller.seller_id)
            return section

    async def follow_members(
        self,
        site: SiteID,
        space: SellerSpace,
        members: Sequence[Member],
        seller_id: SellerID | None = None,
    ) -> None:
        """The Space's rooms (its label sections too, given the seller) hold the same people
        as the conversation rooms (and the marketplace room the site's admins as well)."""
        # Rooms of one seller sync side by side; their shared Space is done one at a time.
        async with self._locks.setdefault(space.space_id, asyncio.Lock()):
            admins = self._admins.get(site, ())
            labelled = (
                (await self._memory.label_sections(site, seller_id)).values()
                if seller_id is not None
                else ()
            )
            for room_id in (*space.rooms, *labelled):
                extra = admins if room_id == space.marketplace_id else ()
                await self._follow(room_id, members, extra)

    async def _follow(
        self, room_id: RoomID, members: Sequence[Member], extra: Sequence[UserID]
    ) -> None:
        wanted = frozenset(members)
        if self._members.get(room_id) == wanted:
            return
        people = [member.user_id for member in members]
        people += [user_id for user_id in extra if user_id not in people]
        # Kept from the transactions and the bridge's own writes: no read of the room.
        state = await self._states.current(room_id)
        joined = {
            e["state_key"]
            for e in state
            if e.get("type") == "m.room.member"
            and e.get("content", {}).get("membership") in ("join", "invite")
        }
        wanted_ids = set(people)
        for user_id in sorted(joined - wanted_ids - {self._names.bot}):
            if await tolerant(
                self._gateway.kick(room_id, UserID(user_id), "No longer answers for the shop")
            ):
                await self._states.membership(room_id, UserID(user_id), "leave")
        for user_id in sorted(wanted_ids - joined):
            if await tolerant(self._bot.invite(room_id, user_id)):
                await self._states.membership(room_id, user_id, "invite")
        current: dict[str, Any] = next(
            (e.get("content", {}) for e in state if e.get("type") == "m.room.power_levels"), {}
        )
        # Whether this room lists the bot is the room's own version's rule, whatever version
        # the bridge makes new rooms in today (`bridge.room_version` may have changed).
        users = current.get("users")
        levels = _levels(
            isinstance(users, dict) and self._names.bot in users, self._names.bot, people
        )
        if any(current.get(key) != value for key, value in levels.items()):
            await self._gateway.put_state(room_id, "m.room.power_levels", levels)
            await self._states.wrote(room_id, "m.room.power_levels", levels)
        self._members[room_id] = wanted
