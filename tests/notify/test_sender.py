"""The mail sender against a real aiosmtpd relay: sent once, a refused recipient fails
alone, a relay that is down makes mail wait, STARTTLS with AUTH works."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from bridge.config.sections import SmtpConfig
from bridge.core.seller_storage import OutgoingMail
from bridge.core.tasks import TaskKeeper
from bridge.notify.sender import MailRetry, MailSender
from tests.support.mailbox import Mailbox
from tests.support.waiting import eventually


@dataclass
class Stored:
    mail: OutgoingMail
    next_attempt_at: datetime
    sent_at: datetime | None = None
    failed_at: datetime | None = None
    last_error: str | None = None


class MemoryOutbox:
    """The outbox port over a dict, as `store/mail_outbox.py` keeps it in SQL."""

    def __init__(self) -> None:
        self.mails: dict[str, Stored] = {}

    def add(self, mail_id: str, recipient: str, subject: str = "Hello") -> None:
        message = (
            f"From: shop@example.org\r\nTo: {recipient}\r\nSubject: {subject}\r\n"
            f"Message-ID: <{mail_id}@example.org>\r\n\r\nHi.\r\n"
        )
        self.mails[mail_id] = Stored(
            OutgoingMail(mail_id, "shop@example.org", recipient, message, 0), datetime.now(UTC)
        )

    def _unsent(self) -> list[Stored]:
        return [s for s in self.mails.values() if s.sent_at is None and s.failed_at is None]

    async def due_mails(self, now: datetime, limit: int) -> list[OutgoingMail]:
        return [s.mail for s in self._unsent() if s.next_attempt_at <= now][:limit]

    async def next_mail_attempt(self) -> datetime | None:
        return min((s.next_attempt_at for s in self._unsent()), default=None)

    async def mark_mails_sent(self, mail_ids: Sequence[str], at: datetime) -> None:
        for mail_id in mail_ids:
            self.mails[mail_id].sent_at = at

    async def defer_mail(self, mail_id: str, next_attempt_at: datetime, error: str) -> None:
        stored = self.mails[mail_id]
        stored.next_attempt_at, stored.last_error = next_attempt_at, error
        stored.mail = replace(stored.mail, attempts=stored.mail.attempts + 1)

    async def fail_mail(self, mail_id: str, at: datetime, error: str) -> None:
        self.mails[mail_id].failed_at, self.mails[mail_id].last_error = at, error


@pytest_asyncio.fixture
async def tasks() -> AsyncIterator[TaskKeeper]:
    keeper = TaskKeeper()
    yield keeper
    await keeper.close()


def smtp_of(mailbox: Mailbox) -> SmtpConfig:
    return SmtpConfig(**mailbox.smtp_config())


FAST = MailRetry(first=0.1, longest=0.3)


async def test_each_mail_arrives_once_and_a_refused_recipient_fails_alone(
    tasks: TaskKeeper, caplog: pytest.LogCaptureFixture
) -> None:
    mailbox = Mailbox(refuse=["gone@example.org"])
    mailbox.start()
    try:
        outbox = MemoryOutbox()
        outbox.add("m1", "anna@example.org")
        outbox.add("m2", "gone@example.org")
        outbox.add("m3", "boris@example.org")
        sender = MailSender(outbox, smtp_of(mailbox), tasks, FAST)
        sender.start()
        await eventually(lambda: _async(len(mailbox.received) == 2), what="two mails at the relay")
        await eventually(lambda: _async(outbox.mails["m2"].failed_at is not None), what="m2 failed")
        assert [m.recipients for m in mailbox.received] == [
            ("anna@example.org",),
            ("boris@example.org",),
        ]
        assert "550" in (outbox.mails["m2"].last_error or "")
        assert "gone@example.org" in caplog.text
        # Woken again with nothing new, it sends nothing twice.
        outbox.add("m4", "carla@example.org")
        sender.wake()
        await eventually(lambda: _async(len(mailbox.received) == 3), what="the fourth mail")
        assert [m.message["Message-ID"] for m in mailbox.received] == [
            "<m1@example.org>",
            "<m3@example.org>",
            "<m4@example.org>",
        ]
    finally:
        mailbox.stop()


async def test_mail_waits_while_the_relay_is_down_and_goes_once_it_is_up(
    tasks: TaskKeeper,
) -> None:
    mailbox = Mailbox()
    outbox = MemoryOutbox()
    outbox.add("m1", "anna@example.org")
    sender = MailSender(outbox, smtp_of(mailbox), tasks, FAST)
    sender.start()
    await eventually(
        lambda: _async(outbox.mails["m1"].last_error is not None), what="a failed attempt"
    )
    assert outbox.mails["m1"].sent_at is None
    mailbox.start()
    try:
        await eventually(lambda: _async(len(mailbox.received) == 1), what="the mail")
        assert mailbox.received[0].recipients == ("anna@example.org",)
    finally:
        mailbox.stop()


async def test_starttls_with_login(tasks: TaskKeeper) -> None:
    mailbox = Mailbox(login=("bridge", "s3cret-pass"))
    mailbox.start()
    try:
        assert mailbox.tls is not None
        outbox = MemoryOutbox()
        outbox.add("m1", "anna@example.org")
        sender = MailSender(
            outbox, smtp_of(mailbox), tasks, FAST, tls_context=mailbox.tls.client_context()
        )
        sender.start()
        await eventually(lambda: _async(len(mailbox.received) == 1), what="the mail over TLS")
        assert mailbox.logins == ["bridge"]
    finally:
        mailbox.stop()


async def test_a_wrong_password_keeps_the_mail_waiting(tasks: TaskKeeper) -> None:
    mailbox = Mailbox(login=("bridge", "s3cret-pass"))
    mailbox.start()
    try:
        assert mailbox.tls is not None
        outbox = MemoryOutbox()
        outbox.add("m1", "anna@example.org")
        config = replace(smtp_of(mailbox), password="wrong")
        sender = MailSender(outbox, config, tasks, FAST, tls_context=mailbox.tls.client_context())
        sender.start()
        await eventually(
            lambda: _async(outbox.mails["m1"].mail.attempts >= 2), what="retried attempts"
        )
        assert mailbox.received == [] and outbox.mails["m1"].failed_at is None
    finally:
        mailbox.stop()


async def _async(value: bool) -> bool:
    return value
