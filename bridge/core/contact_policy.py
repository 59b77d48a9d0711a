"""The contact policy (`sites[].contact_policy`): contact and payment details in messages
sent before the conversation has an order, from either side.

Marketplaces lose the sale, and buyers their protection, when a deal moves to a phone
call or a bank transfer. With `warn` the message goes as written and both sides get a
notice; with `mask` the other side sees each detail replaced by a marker. Either way the
marketplace gets `message.flagged` with the words as written, stored with the message.
A conversation with an order is past this point: nothing is checked there.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import phonenumbers

from bridge.core.events import Announcer, Event
from bridge.core.ids import ConversationID, MessageID, new_message_id
from bridge.core.models import Conversation, Message, MessageStatus, SenderKind, Side

POLICY_NOTICE_PREFIX = "policy-"
# Fewer digits than this can't be a phone, card or account number: no parsing at all.
_MIN_DIGITS = 7
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-zA-Z]{2,}")
_MESSENGER = re.compile(
    r"(?:https?://)?(?:t\.me|telegram\.me|wa\.me|api\.whatsapp\.com|viber\.click|m\.me)"
    r"/[\w+./?=-]+"
    r"|(?<![\w@])@[a-zA-Z][\w]{4,31}\b"
    r"|\b(?:telegram|whatsapp|viber|signal|wechat|skype|телеграм|ватсап|вайбер)\b",
    re.IGNORECASE,
)
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


class Policy(enum.StrEnum):
    OFF = "off"
    WARN = "warn"
    MASK = "mask"


class ContactKind(enum.StrEnum):
    PHONE = "phone"
    EMAIL = "email"
    MESSENGER = "messenger"
    CARD = "card"
    IBAN = "iban"


@dataclass(frozen=True)
class Found:
    kind: ContactKind
    start: int
    end: int


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _iban(text: str) -> bool:
    compact = text.replace(" ", "")
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def find_contacts(text: str, phone_region: str | None = None) -> list[Found]:
    """Each contact or payment detail in `text`, in order, none overlapping another.
    Phone numbers without a country code are found only with the site's `phone_region`."""
    found: list[Found] = []

    def add(kind: ContactKind, start: int, end: int) -> None:
        if not any(start < other.end and other.start < end for other in found):
            found.append(Found(kind, start, end))

    for match in _EMAIL.finditer(text):
        add(ContactKind.EMAIL, match.start(), match.end())
    for match in _MESSENGER.finditer(text):
        add(ContactKind.MESSENGER, match.start(), match.end())
    if sum(char.isdigit() for char in text) >= _MIN_DIGITS:
        for match in _IBAN.finditer(text):
            if _iban(match.group()):
                add(ContactKind.IBAN, match.start(), match.end())
        for match in _CARD.finditer(text):
            digits = re.sub(r"\D", "", match.group())
            if 13 <= len(digits) <= 19 and _luhn(digits):
                add(ContactKind.CARD, match.start(), match.end())
        for number in phonenumbers.PhoneNumberMatcher(text, phone_region):
            add(ContactKind.PHONE, number.start, number.end)
    return sorted(found, key=lambda item: item.start)


def masked(text: str, found: Sequence[Found]) -> str:
    """`text` with each detail replaced by a marker that names its kind."""
    parts: list[str] = []
    at = 0
    for item in found:
        parts += [text[at : item.start], f"[{item.kind} hidden]"]
        at = item.end
    return "".join([*parts, text[at:]])


@dataclass(frozen=True)
class Screened:
    """A message's words as the other side gets them, and what the policy found."""

    text: str
    kinds: tuple[ContactKind, ...]
    policy: Policy

    @property
    def flagged(self) -> bool:
        return bool(self.kinds)


_BUYER_WORDS = {
    "en": {
        Side.BUYER: "For your safety, keep contacts and payments on the marketplace until "
        "you order: the seller was told so too.",
        Side.SELLER: "The seller's message held contact or payment details. Pay only "
        "through the marketplace: that is what keeps your purchase protected.",
    },
    "ru": {
        Side.BUYER: "Ради вашей безопасности оставайтесь на площадке до заказа: не "
        "обменивайтесь контактами и не платите напрямую. Продавцу сказано то же.",
        Side.SELLER: "В сообщении продавца были контакты или реквизиты. Платите только "
        "через площадку: так ваша покупка защищена.",
    },
}


def buyer_notice_text(side: Side, language: str | None) -> str:
    words = _BUYER_WORDS["ru" if (language or "").lower().startswith("ru") else "en"]
    return words[side]


def room_notice_text(message: Message) -> str | None:
    """The room's notice for a policy message, from its client id
    (`policy-<side>-<policy>-<kinds>-<message id>`)."""
    parts = (message.client_id or "").split("-", 4)
    if len(parts) != 5:
        return None
    _, side, policy, kinds, _ = parts
    what = ", ".join(kinds.split("+"))
    whose = "The buyer's" if side == Side.BUYER else "Your"
    done = "hidden from the other side" if policy == Policy.MASK else "sent as written"
    return (
        f"{whose} message above holds contact or payment details ({what}): {done}. "
        "Before an order, keep the deal on the marketplace; the marketplace was told."
    )


def policy_notice(
    conversation: Conversation,
    message_id: MessageID,
    side: Side,
    screened: Screened,
    language: str | None,
    message: Message,
) -> Message:
    """The system message that tells both sides: the buyer reads its text, the room gets
    `room_notice_text` of it through the courier."""
    kinds = "+".join(screened.kinds)
    return Message(
        message_id=message_id,
        conversation_id=conversation.conversation_id,
        sender=SenderKind.SYSTEM,
        sender_name="Marketplace",
        text=buyer_notice_text(side, language),
        lang=language,
        status=MessageStatus.SENT,
        created_at=message.created_at,
        client_id=f"{POLICY_NOTICE_PREFIX}{side}-{screened.policy}-{kinds}-{message.message_id}",
    )


def flagged_json(message: Message, side: Side, written: str, screened: Screened) -> dict[str, Any]:
    """The `message.flagged` webhook's payload: the words as written are the marketplace's
    to see, whatever the other side got."""
    return {
        "message_id": message.message_id,
        "side": side.value,
        "policy": screened.policy.value,
        "kinds": list(screened.kinds),
        "text": written,
        "shown": screened.text,
    }


class ContactScreen:
    """Screens a message's words by its site's policy (`Screened`); the caller stores the
    result, its webhook and its notice with the message."""

    def __init__(self, policies: dict[Any, tuple[Policy, str | None]]) -> None:
        # Per site: the policy and the region of phone numbers written without a country code.
        self._policies = policies

    def applies(self, conversation: Conversation) -> bool:
        policy, _ = self._policies.get(conversation.site, (Policy.OFF, None))
        return policy != Policy.OFF

    def screen(self, conversation: Conversation, text: str) -> Screened:
        policy, region = self._policies.get(conversation.site, (Policy.OFF, None))
        if policy == Policy.OFF or not text:
            return Screened(text, (), Policy.OFF)
        found = find_contacts(text, region)
        if not found:
            return Screened(text, (), policy)
        kinds = tuple(dict.fromkeys(item.kind for item in found))
        shown = masked(text, found) if policy == Policy.MASK else text
        return Screened(shown, kinds, policy)


class OrderLookup(Protocol):
    async def has_orders(self, conversation_id: ConversationID) -> bool: ...


@dataclass(frozen=True)
class Guarded:
    """A message as the other side gets it, with what is stored beside it: the
    `message.flagged` webhook and the notice for both sides (none when nothing was found)."""

    message: Message
    events: tuple[Event, ...] = ()
    notices: tuple[Message, ...] = ()


class ContactGuard:
    """Applies the site's policy to a message about to be stored, from either side."""

    def __init__(
        self,
        screen: ContactScreen,
        store: OrderLookup,
        announcer: Announcer,
        room_owed: Callable[[ConversationID], None],
    ) -> None:
        self._screen = screen
        self._store = store
        self._announcer = announcer
        # Wakes the courier, which posts the room's notice after the message.
        self._room_owed = room_owed

    def applies(self, conversation: Conversation) -> bool:
        return self._screen.applies(conversation)

    async def guard(
        self, conversation: Conversation, side: Side, message: Message, language: str | None
    ) -> Guarded:
        """`language` is the buyer's, for the notice they read."""
        if not self._screen.applies(conversation):
            return Guarded(message)
        screened = self._screen.screen(conversation, message.text)
        if not screened.flagged or await self._store.has_orders(conversation.conversation_id):
            return Guarded(message)
        shown = message
        if screened.policy == Policy.MASK:
            original = message.original
            if original is not None:
                original = replace(
                    original, text=self._screen.screen(conversation, original.text).text
                )
            # The formatting is of the words as written: the masked words go without it.
            shown = replace(message, text=screened.text, html=None, original=original)
        notice = policy_notice(conversation, new_message_id(), side, screened, language, shown)
        events = self._announcer.message_flagged(
            conversation, flagged_json(shown, side, message.text, screened)
        )
        return Guarded(
            shown, (*events, *self._announcer.message_created(conversation, notice)), (notice,)
        )

    def stored(self, conversation: Conversation, guarded: Guarded) -> None:
        """Once the message and its notice are stored: the room owes the notice."""
        if guarded.notices:
            self._room_owed(conversation.conversation_id)
