"""What a change tells the outside: webhooks for the marketplace, stream frames for the buyer.

Events are stored in the same transaction as the change that caused them (the outbox and
the buyer's feed), then `published` wakes whoever delivers them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bridge.core.ids import BuyerID, ConversationID, SiteID
from bridge.core.models import Buyer, Conversation, Feedback, Message, Seller, Site
from bridge.core.views import (
    buyer_conversation_json,
    conversation_json,
    feedback_json,
    message_json,
)

if TYPE_CHECKING:
    # Only for the annotations: orders and offers announce through this module.
    from bridge.core.offers import BuyerOfferView, OfferView
    from bridge.core.orders import OrderView


@dataclass(frozen=True)
class WebhookEvent:
    """One event bound for a marketplace's webhook."""

    site: SiteID
    type: str
    # None for an event about no conversation (a feedback form): the body says null.
    conversation_id: ConversationID | None
    payload: dict[str, Any]


@dataclass(frozen=True)
class FeedFrame:
    """One frame of a buyer's stream; the store gives it the buyer's next `seq`."""

    site: SiteID
    buyer_id: BuyerID
    type: str
    conversation_id: ConversationID
    payload: dict[str, Any]


@dataclass(frozen=True)
class MailEvent:
    """One mail for the outbox, rendered whole (RFC 5322); the same `dedupe_key` is queued
    once, so a repeat of what caused it (a retry, a restart) queues nothing more."""

    site: SiteID
    kind: str
    sender: str
    recipient: str
    message: str
    dedupe_key: str


class MailRules(Protocol):
    """Who gets a mail for a change (`core/mailing.py`); absent when e-mail is not set up."""

    def conversation_opened(
        self, seller: Seller, buyer: Buyer, conversation: Conversation
    ) -> list[MailEvent]: ...

    def buyer_wrote(
        self, seller: Seller, buyer: Buyer, conversation: Conversation, message: Message
    ) -> list[MailEvent]: ...

    def feedback_left(
        self, seller: Seller, buyer: Buyer | None, feedback: Feedback
    ) -> list[MailEvent]: ...

    def wake(self) -> None:
        """Mail was committed: wake whoever sends it."""


Event = WebhookEvent | FeedFrame | MailEvent
EventsFor = Callable[[Message], Sequence[Event]]
"""Builds the events for a message as it stands after a change."""


class Announcer:
    def __init__(
        self,
        sites: Mapping[SiteID, Site],
        webhooks_added: Callable[[SiteID], None],
        feed_added: Callable[[SiteID, BuyerID], None],
        mail: MailRules | None = None,
    ) -> None:
        self._sites = sites
        self._webhooks_added = webhooks_added
        self._feed_added = feed_added
        self._mail = mail
        # Conversations whose change carried a mail: their `published` wakes the sender, and
        # nothing else does (a typing frame or a receipt costs the outbox no look).
        self._mail_in: set[ConversationID] = set()

    def _with_mail(self, conversation: Conversation, mail: Sequence[Event]) -> list[Event]:
        if mail:
            self._mail_in.add(conversation.conversation_id)
        return list(mail)

    def _webhook(
        self, conversation: Conversation, kind: str, payload: dict[str, Any]
    ) -> list[Event]:
        if not self._sites[conversation.site].has_webhook:
            return []
        return [WebhookEvent(conversation.site, kind, conversation.conversation_id, payload)]

    @staticmethod
    def _frame(conversation: Conversation, kind: str, payload: dict[str, Any]) -> FeedFrame:
        return FeedFrame(
            conversation.site, conversation.buyer_id, kind, conversation.conversation_id, payload
        )

    def message_created(self, conversation: Conversation, message: Message) -> list[Event]:
        payload = {"message": message_json(message)}
        return [
            *self._webhook(conversation, "message.created", payload),
            self._frame(conversation, "message.created", payload),
        ]

    def buyer_message_created(
        self, conversation: Conversation, seller: Seller | None, buyer: Buyer, message: Message
    ) -> list[Event]:
        """A buyer's new message: its events, and the seller's copy by mail when asked for."""
        events = self.message_created(conversation, message)
        if self._mail is not None and seller is not None:
            events += self._with_mail(
                conversation, self._mail.buyer_wrote(seller, buyer, conversation, message)
            )
        return events

    def message_changed(self, conversation: Conversation, webhook_type: str) -> EventsFor:
        """Events for a message after a change: `webhook_type` tells the marketplace what
        changed (message.status, message.updated, message.deleted); the buyer's stream
        always gets message.updated."""

        def events(message: Message) -> list[Event]:
            payload = {"message": message_json(message)}
            return [
                *self._webhook(conversation, webhook_type, payload),
                self._frame(conversation, "message.updated", payload),
            ]

        return events

    def conversation_created(
        self,
        conversation: Conversation,
        seller: Seller | None = None,
        buyer: Buyer | None = None,
    ) -> list[Event]:
        """With the seller and buyer given, the seller's mail goes with it (e-mail set up)."""
        mail = (
            self._with_mail(
                conversation, self._mail.conversation_opened(seller, buyer, conversation)
            )
            if self._mail is not None and seller is not None and buyer is not None
            else []
        )
        return [
            *mail,
            *self._webhook(
                conversation,
                "conversation.created",
                {"conversation": conversation_json(conversation)},
            ),
            self._frame(
                conversation,
                "conversation.updated",
                {"conversation": buyer_conversation_json(conversation)},
            ),
        ]

    def conversation_state(self, conversation: Conversation) -> list[Event]:
        """The conversation became active, archived or blocked, or who blocks it changed
        (`blocked_by`, while it stays blocked)."""
        return [
            *self._webhook(
                conversation,
                "conversation.state",
                {"conversation": conversation_json(conversation)},
            ),
            *self.conversation_updated(conversation),
        ]

    def conversation_updated(self, conversation: Conversation) -> list[Event]:
        return [
            self._frame(
                conversation,
                "conversation.updated",
                {"conversation": buyer_conversation_json(conversation)},
            )
        ]

    def conversation_marked(self, conversation: Conversation) -> list[Event]:
        """The seller's labels or assignee changed: the marketplace hears of it; the buyer,
        who sees neither, does not."""
        return self._webhook(
            conversation, "conversation.updated", {"conversation": conversation_json(conversation)}
        )

    def buyer_reported(self, conversation: Conversation, report: dict[str, Any]) -> list[Event]:
        """A member reported the conversation's buyer to the marketplace."""
        return self._webhook(conversation, "buyer.reported", {"report": report})

    def order_updated(self, conversation: Conversation, order: OrderView) -> list[Event]:
        """An order of the conversation is new or changed (`core/orders.py`): the
        marketplace hears of it and the buyer's widget redraws its card."""
        payload = {"order": order}
        return [
            *self._webhook(conversation, "order.updated", payload),
            self._frame(conversation, "order.updated", payload),
        ]

    def message_flagged(self, conversation: Conversation, flagged: dict[str, Any]) -> list[Event]:
        """A message held contact or payment details before an order (`core/contact_policy.py`)."""
        return self._webhook(conversation, "message.flagged", {"flagged": flagged})

    def offer_created(self, conversation: Conversation, offer: OfferView) -> list[Event]:
        """A member made an offer (`core/offers.py`): the marketplace answers it; the
        buyer sees it only once it is open."""
        return self._webhook(conversation, "offer.created", {"offer": offer})

    def offer_updated(
        self, conversation: Conversation, offer: OfferView, buyer_view: BuyerOfferView
    ) -> list[Event]:
        """The marketplace opened or ended an offer: it hears of its own change as
        `offer.updated`, and the buyer's widget draws the card."""
        return [
            *self._webhook(conversation, "offer.updated", {"offer": offer}),
            self._frame(conversation, "offer.updated", {"offer": buyer_view}),
        ]

    def typing(self, conversation: Conversation, typing: bool, sender_name: str) -> list[Event]:
        return [self._frame(conversation, "typing", {"typing": typing, "sender_name": sender_name})]

    def feedback_created(
        self, feedback: Feedback, seller: Seller | None = None, buyer: Buyer | None = None
    ) -> list[Event]:
        """A buyer's feedback form, left while the seller's chat was off; with the seller
        given, the seller's mail goes with it (e-mail set up)."""
        events: list[Event] = []
        if self._mail is not None and seller is not None:
            events += self._mail.feedback_left(seller, buyer, feedback)
        if self._sites[feedback.site].has_webhook:
            events.append(
                WebhookEvent(
                    feedback.site, "feedback.created", None, {"feedback": feedback_json(feedback)}
                )
            )
        return events

    def takes_webhooks(self, site: SiteID) -> bool:
        return self._sites[site].has_webhook

    def site_published(self, site: SiteID) -> None:
        """Wake the site's webhook deliverer once a change about no conversation is committed."""
        if self._sites[site].has_webhook:
            self._webhooks_added(site)
        if self._mail is not None:
            self._mail.wake()

    def published(self, conversation: Conversation) -> None:
        """Wake the deliverers once a change to this conversation is committed."""
        if self._sites[conversation.site].has_webhook:
            self._webhooks_added(conversation.site)
        self._feed_added(conversation.site, conversation.buyer_id)
        if self._mail is not None and conversation.conversation_id in self._mail_in:
            self._mail_in.discard(conversation.conversation_id)
            self._mail.wake()
