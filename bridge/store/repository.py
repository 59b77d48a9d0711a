"""The SQL implementation of every store port of the domain (`core/storage.Repository`),
assembled from its parts.

ORM rows never leave `store/`: each part turns them into domain records.
"""

from __future__ import annotations

from bridge.store.conversations import ConversationStore
from bridge.store.matrix_state import MatrixStateStore
from bridge.store.messages import MessageStore
from bridge.store.outbox import OutboxStore
from bridge.store.parties import PartyStore
from bridge.store.translations import TranslationStore


class SqlRepository(
    PartyStore,
    ConversationStore,
    MessageStore,
    OutboxStore,
    MatrixStateStore,
    TranslationStore,
):
    """Every store operation the bridge needs, on SQLite or PostgreSQL."""


__all__ = ["SqlRepository"]
