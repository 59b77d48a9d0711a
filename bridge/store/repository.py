"""The SQL implementation of every store port of the domain (`core/storage.Repository`),
assembled from its parts.

ORM rows never leave `store/`: each part turns them into domain records.
"""

from __future__ import annotations

from bridge.store.automatic import AutomaticReplyStore
from bridge.store.conversations import ConversationStore
from bridge.store.erasure import ErasureStoreSql
from bridge.store.feedback import FeedbackStore
from bridge.store.label_sections import LabelSectionStore
from bridge.store.mail_outbox import MailOutboxStore
from bridge.store.mail_tokens import MailTokenStore
from bridge.store.matrix_state import MatrixStateStore
from bridge.store.messages import MessageStore
from bridge.store.offers import OfferStoreSql
from bridge.store.orders import OrderStoreSql
from bridge.store.outbox import OutboxStore
from bridge.store.owed import RoomDuesStore
from bridge.store.parties import PartyStore
from bridge.store.room_state import RoomStateStore
from bridge.store.stats import WaitStatsStore
from bridge.store.templates import TemplateStore
from bridge.store.translations import TranslationStore
from bridge.store.waits import WaitStore


class SqlRepository(
    PartyStore,
    ConversationStore,
    MessageStore,
    OutboxStore,
    MatrixStateStore,
    TranslationStore,
    FeedbackStore,
    TemplateStore,
    LabelSectionStore,
    AutomaticReplyStore,
    MailTokenStore,
    MailOutboxStore,
    WaitStatsStore,
    WaitStore,
    OrderStoreSql,
    OfferStoreSql,
    RoomDuesStore,
    ErasureStoreSql,
    RoomStateStore,
):
    """Every store operation the bridge needs, on SQLite or PostgreSQL."""


__all__ = ["SqlRepository"]
