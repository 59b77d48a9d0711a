"""The seller as a buyer finds them before writing: open or away, chat on or off; the
owner's `!chat off|on`; and the feedback form a buyer leaves while chat is off."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from typing_extensions import TypedDict

from bridge.core.availability import availability_json
from bridge.core.commands import BadCommand, Command, ManagementCall
from bridge.core.events import Announcer
from bridge.core.ids import SellerID, SiteID, new_feedback_id
from bridge.core.limits import RateLimiter
from bridge.core.models import Buyer, Feedback, Role, Seller, Site
from bridge.core.ports import HomeserverUnavailable, MatrixPort, MatrixRejected
from bridge.core.seller_storage import FeedbackRecords
from bridge.core.tasks import TaskKeeper
from bridge.core.team import AnsweringRoles
from bridge.core.validation import MAX_TEXT_CHARS, require_text
from bridge.errors import Conflict

logger = logging.getLogger(__name__)

MAX_CONTACT_CHARS = 320
CHAT_HELP = ("!chat off / !chat on — close or reopen the chat; while off, buyers get a form",)
CHAT_ENABLED = "BAZAAR_CHAT_ENABLED"


class ReplySpeed(Protocol):
    """The seller's usual reply time in minutes (`core/stats.py`), None until measured."""

    async def usually_replies_within(self, seller: Seller) -> int | None: ...


class FeedbackOutlet(Protocol):
    """Somewhere else a stored feedback form goes after the management room; pass it to
    `FeedbackDesk(outlets=…)`. The seller's mail does not use it: it is an event stored
    with the form (`Announcer.feedback_created`), so it can be neither lost nor doubled."""

    async def feedback_left(self, seller: Seller, feedback: Feedback) -> None: ...


class SellerStateView(TypedDict):
    """What the widget shows before the buyer writes: open or away, chat on or off."""

    seller_id: SellerID
    name: str
    chat_enabled: bool
    open_now: bool
    next_open_at: str | None
    # The seller's usual reply time, rounded up to a friendly step; null until measured.
    usually_replies_within_minutes: int | None


class FeedbackLeft(TypedDict):
    """The feedback form is stored; the seller's management room is told."""

    feedback_id: str


def _contact(value: object) -> str | None:
    """How the seller may answer (an e-mail, a phone): optional, a blank one is none."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return require_text(value, "contact", limit=MAX_CONTACT_CHARS).strip()


def feedback_notice(feedback: Feedback, buyer: Buyer) -> str:
    contact = feedback.contact or "none given"
    return (
        f"Feedback from {buyer.name} (chat is off):\n{feedback.text}\n"
        f"Contact: {contact}\nSay !chat on to take questions in chat again."
    )


class FeedbackDesk:
    def __init__(
        self,
        store: FeedbackRecords,
        matrix: MatrixPort,
        announcer: Announcer,
        limiter: RateLimiter,
        answering: AnsweringRoles,
        sites: Mapping[SiteID, Site],
        tasks: TaskKeeper,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        outlets: Sequence[FeedbackOutlet] = (),
        reply_speed: ReplySpeed | None = None,
    ) -> None:
        self._store = store
        self._matrix = matrix
        self._announcer = announcer
        self._limiter = limiter
        self._answering = answering
        self._sites = sites
        self._tasks = tasks
        self._clock = clock
        self._outlets = tuple(outlets)
        self._reply_speed = reply_speed

    def state_json(
        self, seller: Seller, replies_within_minutes: int | None = None
    ) -> SellerStateView:
        """What the widget shows before the buyer writes (`GET /widget/v1/sellers/{id}`)."""
        return {
            "seller_id": seller.seller_id,
            "name": seller.name,
            "chat_enabled": seller.chat_enabled,
            **availability_json(seller, self._clock()),
            "usually_replies_within_minutes": replies_within_minutes,
        }

    async def state(self, seller: Seller) -> SellerStateView:
        """`state_json` with the seller's usual reply time, when it is measured."""
        within = (
            await self._reply_speed.usually_replies_within(seller)
            if self._reply_speed is not None
            else None
        )
        return self.state_json(seller, within)

    async def leave(self, buyer: Buyer, seller: Seller, text: object, contact: object) -> Feedback:
        """Store a buyer's form for a seller whose chat is off, with its webhook; then tell
        the seller's management room. Nothing is stored when any part is refused."""
        if seller.chat_enabled:
            raise Conflict(
                f"{seller.name} takes questions in chat: write to them there", CHAT_ENABLED
            )
        words = require_text(text, "text", limit=MAX_TEXT_CHARS).strip()
        reach = _contact(contact)
        self._limiter.take(f"{buyer.site}/{buyer.buyer_id}", "feedback")
        feedback = Feedback(
            feedback_id=new_feedback_id(),
            site=seller.site,
            seller_id=seller.seller_id,
            text=words,
            contact=reach,
            created_at=self._clock(),
            buyer_id=buyer.buyer_id,
        )
        # The seller's mail is one of the events stored with the form, not an outlet called
        # afterwards: a crash between the two would lose it, a retry would repeat it.
        await self._store.add_feedback(
            feedback, self._announcer.feedback_created(feedback, seller, buyer)
        )
        self._announcer.site_published(seller.site)
        self._tasks.spawn(
            self._tell(seller, buyer, feedback), name=f"feedback:{feedback.feedback_id}"
        )
        return feedback

    async def _tell(self, seller: Seller, buyer: Buyer, feedback: Feedback) -> None:
        try:
            await self._matrix.tell_seller(
                seller,
                self._answering.members(seller),
                self._sites[seller.site].name,
                feedback_notice(feedback, buyer),
                key=f"feedback:{feedback.feedback_id}",
            )
        except (HomeserverUnavailable, MatrixRejected) as error:
            # The form is stored and the webhook on its way: the room only misses a notice.
            logger.warning("Could not show feedback %s in Matrix: %s", feedback.feedback_id, error)
        for outlet in self._outlets:
            await outlet.feedback_left(seller, feedback)

    async def switch_chat(self, call: ManagementCall) -> str:
        """`!chat off` / `!chat on`, the owner's alone."""
        wanted = call.args.lower()
        if wanted not in ("off", "on"):
            raise BadCommand("Say !chat off or !chat on.")
        if call.member.role != Role.OWNER:
            return "Only the shop's owner can turn the chat off or on."
        enabled = wanted == "on"
        if call.seller.chat_enabled == enabled:
            return f"The chat is already {wanted}."
        await self._store.set_chat_enabled(call.seller.site, call.seller.seller_id, enabled)
        if enabled:
            return "The chat is on: buyers can write to you again."
        return (
            "The chat is off: buyers see a feedback form instead, and each form they send "
            "is shown here. Say !chat on to reopen it."
        )

    def command(self) -> Command[ManagementCall]:
        return Command("chat", CHAT_HELP, self.switch_chat)
