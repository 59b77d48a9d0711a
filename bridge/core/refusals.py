"""The refusals both desks make, each spelled once: a conversation or message that isn't
there (or not the caller's, which looks the same), and a blocked conversation."""

from __future__ import annotations

from bridge.core.ids import ConversationID, MessageID
from bridge.core.models import Conversation, ConversationState, Message
from bridge.core.storage import MessageRecords
from bridge.errors import Forbidden, NotFound

BLOCKED = "BAZAAR_BLOCKED"


def unknown_conversation(conversation_id: ConversationID) -> NotFound:
    return NotFound(f"Unknown conversation '{conversation_id}'", "BAZAAR_UNKNOWN_CONVERSATION")


def blocked() -> Forbidden:
    return Forbidden("This conversation is blocked", BLOCKED)


def refuse_if_blocked(conversation: Conversation) -> None:
    """A blocked conversation takes no buyer message. The store decides it once more when
    the message is stored (`ConversationBlocked`), for a block that came meanwhile."""
    if conversation.state == ConversationState.BLOCKED:
        raise blocked()


async def message_in(
    messages: MessageRecords, conversation: Conversation, message_id: MessageID
) -> Message:
    """The message, when it belongs to this conversation; any other id is unknown."""
    message = await messages.get_message(message_id)
    if message is None or message.conversation_id != conversation.conversation_id:
        raise NotFound(f"Unknown message '{message_id}'", "BAZAAR_UNKNOWN_MESSAGE")
    return message
