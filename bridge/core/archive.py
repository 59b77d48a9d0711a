"""The archive: a conversation quiet for `archive_after_days` is archived, and a new
message from either side makes it active again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from bridge.core.delivery import Courier
from bridge.core.events import Announcer
from bridge.core.models import Conversation, ConversationState
from bridge.core.storage import ConversationStates

logger = logging.getLogger(__name__)

SWEEP_EVERY_SECONDS = 3600.0


class Archive:
    def __init__(
        self,
        states: ConversationStates,
        courier: Courier,
        announcer: Announcer,
        after_days: int,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._states = states
        self._courier = courier
        self._announcer = announcer
        self._after = timedelta(days=after_days)
        self._clock = clock

    async def sweep(self, now: datetime | None = None) -> list[Conversation]:
        """Archive what has been quiet too long; returns the conversations archived."""
        quiet_since = (now or self._clock()) - self._after
        idle = await self._states.idle_conversations(quiet_since)
        archived = await self._states.set_state(
            idle,
            ConversationState.ARCHIVED,
            self._announcer.conversation_state,
            only_from=ConversationState.ACTIVE,
        )
        await self._follow(archived)
        if archived:
            logger.info("Archived %d quiet conversations", len(archived))
        return archived

    async def reactivate(self, conversation: Conversation) -> None:
        """A new message arrived in an archived conversation."""
        if conversation.state != ConversationState.ARCHIVED:
            return
        await self._follow(
            await self._states.set_state(
                [conversation.conversation_id],
                ConversationState.ACTIVE,
                self._announcer.conversation_state,
                only_from=ConversationState.ARCHIVED,
            )
        )

    async def _follow(self, changed: list[Conversation]) -> None:
        for conversation in changed:
            self._announcer.published(conversation)
        await self._courier.refresh_members(
            [c.conversation_id for c in changed if c.room_id is not None]
        )

    async def run(self) -> None:
        """Sweep now and then every hour, for as long as the bridge runs."""
        while True:
            try:
                await self.sweep()
            except Exception:
                logger.exception("Archive sweep failed; trying again later")
            await asyncio.sleep(SWEEP_EVERY_SECONDS)
