"""The mail rules, without I/O: who gets which mail, and when the buyer's digest goes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from email import message_from_string
from email.policy import default

from bridge.core.events import Event, MailEvent
from bridge.core.ids import BuyerID, ConversationID, SellerID, SiteID, UserID
from bridge.core.mailing import BUYER_DIGEST, BuyerDigest, Mailing
from bridge.core.models import Buyer, Feedback, Member, Role, Seller
from bridge.core.seller_storage import UnreadReplies
from bridge.notify.compose import MailComposer
from tests.notify.test_compose import BUYER, NOW, SELLER, SITE, conversation, reply

SITES = {SITE.site_id: SITE}
COMPOSER = MailComposer("bridge@shop.example", "https://bridge.example")


def mailing() -> Mailing:
    return Mailing(COMPOSER, SITES)


def test_a_new_conversation_mails_the_owner_address_only() -> None:
    seller = Seller(
        SiteID("shop"),
        SellerID("acme"),
        "ACME",
        "en",
        email="owner@acme.example",
        members=(Member(UserID("@m:localhost"), Role.MANAGER),),
    )
    [mail] = mailing().conversation_opened(seller, BUYER, conversation())
    assert (mail.recipient, mail.kind, mail.sender) == (
        "owner@acme.example",
        "conversation.created",
        "bridge@shop.example",
    )
    assert mail.dedupe_key == "conversation:c1"


def test_no_address_no_mail_and_copies_only_when_asked() -> None:
    silent = Seller(SiteID("shop"), SellerID("acme"), "ACME", "en", email=None, email_copies=True)
    assert mailing().conversation_opened(silent, BUYER, conversation()) == []
    assert mailing().buyer_wrote(silent, BUYER, conversation(), reply("hi")) == []
    assert mailing().buyer_wrote(SELLER, BUYER, conversation(), reply("hi")) == []
    copies = Seller(
        SiteID("shop"), SellerID("acme"), "ACME", "ru", email="o@a.example", email_copies=True
    )
    [copy] = mailing().buyer_wrote(copies, BUYER, conversation(), reply("hi"))
    assert copy.recipient == "o@a.example" and copy.kind == "message.copy"
    subject = message_from_string(copy.message, policy=default)["Subject"]
    assert subject == "Anna написал(а) о Kettle"


def test_feedback_mails_the_seller() -> None:
    feedback = Feedback("f1", SiteID("shop"), SellerID("acme"), "Deliver?", None, NOW)
    [mail] = mailing().feedback_left(SELLER, None, feedback)
    assert mail.recipient == "owner@acme.example" and mail.dedupe_key == "feedback:f1"


class DigestFake:
    def __init__(self, buyer: Buyer, unread: list[UnreadReplies]) -> None:
        self.buyer = buyer
        self.unread = unread
        self.mailed_seq = 0
        self.queued: list[Event] = []
        self.unsubscribed = False
        self.asked_before: list[datetime] = []

    async def unread_replies(self, written_before: datetime, limit: int) -> list[UnreadReplies]:
        self.asked_before.append(written_before)
        return [u for u in self.unread if u.last_seq > self.mailed_seq]

    async def queue_digest(
        self, conversation_id: ConversationID, last_seq: int, events: Sequence[Event]
    ) -> bool:
        if last_seq <= self.mailed_seq:
            return False
        self.mailed_seq = last_seq
        self.queued += events
        return True

    async def get_buyer(self, site: SiteID, buyer_id: BuyerID) -> Buyer | None:
        return self.buyer

    async def get_seller(self, site: SiteID, seller_id: SellerID) -> Seller | None:
        return SELLER

    async def reply_token(
        self, site: SiteID, buyer_id: BuyerID, conversation_id: ConversationID
    ) -> str:
        return "tok"

    async def is_unsubscribed(self, site: SiteID, buyer_id: BuyerID) -> bool:
        return self.unsubscribed

    # Unused by the digest.
    async def put_seller(self, seller: Seller) -> Seller:
        raise NotImplementedError

    async def list_sellers(self, site: SiteID) -> list[Seller]:
        raise NotImplementedError

    async def put_buyer(self, buyer: Buyer) -> Buyer:
        raise NotImplementedError

    async def by_reply_token(self, token: str) -> tuple[SiteID, BuyerID, ConversationID] | None: ...
    async def unsubscribe(self, site: SiteID, buyer_id: BuyerID) -> None: ...


def digest(
    store: DigestFake, open_streams: frozenset[BuyerID] = frozenset()
) -> tuple[BuyerDigest, list[int]]:
    woken: list[int] = []
    return (
        BuyerDigest(
            store,
            COMPOSER,
            SITES,
            lambda site, buyer: buyer in open_streams,
            lambda: woken.append(1),
            timedelta(minutes=10),
        ),
        woken,
    )


def unread(seq: int = 5) -> UnreadReplies:
    return UnreadReplies(conversation(), [reply("Yes, in stock")], seq)


async def test_the_digest_goes_once_per_reply_batch_and_wakes_the_sender() -> None:
    store = DigestFake(BUYER, [unread()])
    task, woken = digest(store)
    assert await task.sweep(NOW) == 1
    assert store.asked_before == [NOW - timedelta(minutes=10)]
    [mail] = store.queued
    assert isinstance(mail, MailEvent) and mail.kind == BUYER_DIGEST
    assert mail.recipient == "anna@example.org" and woken == [1]
    assert await task.sweep(NOW) == 0 and len(store.queued) == 1


async def test_no_digest_while_a_stream_is_open_then_one_after() -> None:
    store = DigestFake(BUYER, [unread()])
    task, _ = digest(store, frozenset({BUYER.buyer_id}))
    assert await task.sweep(NOW) == 0 and store.mailed_seq == 0
    task, _ = digest(store)
    assert await task.sweep(NOW) == 1


async def test_no_digest_without_address_or_when_unsubscribed_and_the_replies_are_done() -> None:
    nameless = Buyer(SiteID("shop"), BuyerID("anna"), "Anna", "en", email=None)
    store = DigestFake(nameless, [unread()])
    task, woken = digest(store)
    assert await task.sweep(NOW) == 0 and store.queued == [] and store.mailed_seq == 5
    store = DigestFake(BUYER, [unread()])
    store.unsubscribed = True
    task, woken = digest(store)
    assert await task.sweep(NOW) == 0 and store.queued == [] and woken == []
