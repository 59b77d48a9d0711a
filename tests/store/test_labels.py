"""Labels and assignees in the store, on SQLite and PostgreSQL: written with their events,
filtered whole; and the label sections of a seller's Space, kept across restarts."""

from __future__ import annotations

from bridge.core.events import WebhookEvent
from bridge.core.ids import ConversationID, RoomID, SellerID, UserID
from bridge.core.models import Conversation
from bridge.store.repository import SqlRepository
from tests.store.test_repository import SITE, conversation, engine, repository, seeded

__all__ = ["engine", "repository"]


def updated(conversation: Conversation) -> list[WebhookEvent]:
    payload = {"labels": list(conversation.labels), "assignee": conversation.assignee}
    return [WebhookEvent(SITE, "conversation.updated", conversation.conversation_id, payload)]


async def test_labels_and_assignee_are_stored_with_their_webhook_and_filter(
    repository: SqlRepository,
) -> None:
    first = await seeded(repository)
    second, _ = await repository.create_conversation(conversation("p2"), [])
    changed = await repository.set_labels(first.conversation_id, ["zone-north", "vip"], updated)
    assert changed is not None
    assert changed.labels == ("vip", "zone-north")
    await repository.set_labels(second.conversation_id, ["zone-north-east"], updated)
    await repository.set_assignee(second.conversation_id, UserID("@o:x"), updated)

    def ids(found: list[Conversation]) -> set[ConversationID]:
        return {c.conversation_id for c in found}

    assert ids(await repository.list_conversations(SITE, label="zone-north")) == {
        first.conversation_id
    }
    assert ids(await repository.list_conversations(SITE, label="zone-north-east")) == {
        second.conversation_id
    }
    assert await repository.list_conversations(SITE, label="zone") == []
    assert ids(await repository.list_conversations(SITE, assignee=UserID("@o:x"))) == {
        second.conversation_id
    }
    stored = await repository.get_conversation_by_id(second.conversation_id)
    assert stored is not None
    assert (stored.labels, stored.assignee) == (("zone-north-east",), "@o:x")
    due = await repository.due_webhooks(SITE, stored.created_at.replace(year=2100), 10)
    assert [b'"assignee":"@o:x"' in webhook.body for webhook in due] == [False, False, True]

    cleared = await repository.set_assignee(second.conversation_id, None, updated)
    assert cleared is not None and cleared.assignee is None
    assert await repository.set_labels(ConversationID("nope"), [], updated) is None


async def test_label_sections_and_placements_are_remembered(repository: SqlRepository) -> None:
    seller = SellerID("s1")
    assert await repository.label_sections(SITE, seller) == {}
    await repository.remember_label_section(SITE, seller, "vip", RoomID("!vip:x"))
    await repository.remember_label_section(SITE, seller, "zone-north", RoomID("!north:x"))
    assert await repository.label_sections(SITE, seller) == {
        "vip": "!vip:x",
        "zone-north": "!north:x",
    }
    room = RoomID("!room:x")
    await repository.remember_label_placement(room, "vip", True)
    await repository.remember_label_placement(room, "zone-north", True)
    await repository.remember_label_placement(room, "vip", True)
    assert await repository.label_placements(room) == {"vip", "zone-north"}
    await repository.remember_label_placement(room, "vip", False)
    assert await repository.label_placements(room) == {"zone-north"}
