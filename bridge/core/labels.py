"""What a seller marks a conversation with: its labels (a delivery zone, a topic) and the
member who answers it. Both are the seller's own: the marketplace hears of them, the buyer
never does."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from bridge.core.events import Announcer
from bridge.core.ids import ConversationID, UserID
from bridge.core.models import Conversation, Seller
from bridge.core.refusals import unknown_conversation
from bridge.core.seller_storage import ConversationTags
from bridge.core.team import AnsweringRoles
from bridge.errors import BadRequest

MAX_LABELS = 10
MAX_LABEL_CHARS = 32
BAD_LABEL = "BAZAAR_BAD_LABEL"
_LABEL = re.compile(r"[a-z0-9-]{1,32}")

# Called with conversations whose room must follow a change (its state, its Space sections).
RoomsFollow = Callable[[Sequence[ConversationID]], Awaitable[None]]


class BadLabel(BadRequest):
    """A label that is not 1–32 lower-case letters, digits and '-', or one too many."""

    def __init__(self, error: str) -> None:
        super().__init__(error, BAD_LABEL)


def parse_label(raw: Any) -> str:
    """A label as stored: lower-cased, checked."""
    if not isinstance(raw, str):
        raise BadLabel("A label must be a string such as 'zone-north'")
    label = raw.strip().lower()
    if not label:
        raise BadLabel("A label can't be empty")
    if len(label) > MAX_LABEL_CHARS:
        raise BadLabel(f"A label has at most {MAX_LABEL_CHARS} characters: '{label[:40]}'")
    if not _LABEL.fullmatch(label):
        raise BadLabel(
            f"'{label[:40]}' is not a label: use lower-case letters, digits and '-', "
            "such as 'zone-north'"
        )
    return label


def parse_labels(raw: Any) -> tuple[str, ...]:
    """A conversation's whole set of labels, sorted, repeats dropped."""
    if not isinstance(raw, list):
        raise BadLabel("'labels' must be a list of labels such as [\"zone-north\"]")
    return _checked_set(parse_label(entry) for entry in raw)


def _checked_set(labels: Iterable[str]) -> tuple[str, ...]:
    unique = tuple(sorted(set(labels)))
    if len(unique) > MAX_LABELS:
        raise BadLabel(f"A conversation has at most {MAX_LABELS} labels")
    return unique


class NotAnswering(BadRequest):
    """The user named to answer a conversation does not answer for its seller."""


class SellerMarks:
    """Labels and the assignee, as the marketplace's API and the members' commands set them;
    stored with the marketplace's `conversation.updated` webhook, then the room follows
    (its `io.bazaar.conversation` state and the label sections of the seller's Space)."""

    def __init__(
        self,
        store: ConversationTags,
        announcer: Announcer,
        answering: AnsweringRoles,
        rooms_follow: RoomsFollow,
    ) -> None:
        self._store = store
        self._announcer = announcer
        self._answering = answering
        self._rooms_follow = rooms_follow

    async def set_labels(self, conversation: Conversation, labels: Sequence[str]) -> Conversation:
        """Replace the labels (already parsed); nothing is written when they stay the same."""
        wanted = _checked_set(labels)
        if wanted == conversation.labels:
            return conversation
        stored = await self._store.set_labels(
            conversation.conversation_id, wanted, self._announcer.conversation_marked
        )
        return await self._changed(conversation.conversation_id, stored)

    async def add_label(self, conversation: Conversation, label: str) -> Conversation:
        return await self.set_labels(conversation, [*conversation.labels, parse_label(label)])

    async def remove_label(self, conversation: Conversation, label: str) -> Conversation:
        gone = parse_label(label)
        return await self.set_labels(conversation, [x for x in conversation.labels if x != gone])

    def answering_member(self, seller: Seller, user_id: UserID) -> UserID:
        """The user, when they answer for the seller; else NotAnswering."""
        if user_id not in self._answering.user_ids(seller):
            raise NotAnswering(f"{user_id} does not answer for {seller.name}")
        return user_id

    async def assign(
        self, conversation: Conversation, seller: Seller, assignee: UserID | None
    ) -> Conversation:
        """Say who answers the conversation (None: nobody in particular)."""
        if assignee is not None:
            self.answering_member(seller, assignee)
        if assignee == conversation.assignee:
            return conversation
        stored = await self._store.set_assignee(
            conversation.conversation_id, assignee, self._announcer.conversation_marked
        )
        return await self._changed(conversation.conversation_id, stored)

    async def _changed(
        self, conversation_id: ConversationID, stored: Conversation | None
    ) -> Conversation:
        if stored is None:
            raise unknown_conversation(conversation_id)
        self._announcer.published(stored)
        if stored.room_id is not None:
            await self._rooms_follow([conversation_id])
        return stored
