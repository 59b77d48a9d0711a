"""Sends the mail outbox through the SMTP relay, in the background: one connection per
batch, retried with backoff while the relay is down or answers 4xx; a mail the relay
refuses for good (5xx) fails, is logged, and the others go on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiosmtplib

from bridge.config.sections import SmtpConfig
from bridge.core.seller_storage import MailOutbox, OutgoingMail
from bridge.core.tasks import TaskKeeper

logger = logging.getLogger(__name__)

BATCH = 50
# After a wake-up, how long to let more mail gather before opening a connection: a burst of
# commits (a broadcast, a backlog) then goes over a few connections, not one per commit.
GATHER_SECONDS = 0.1


@dataclass(frozen=True)
class MailRetry:
    first: float = 5.0
    longest: float = 1800.0

    def delay(self, attempts: int) -> float:
        return float(min(self.first * 2 ** min(attempts, 30), self.longest))


class RelayDown(Exception):
    """The relay can't be reached or dropped the connection: the batch waits."""


class MailSender:
    def __init__(
        self,
        outbox: MailOutbox,
        smtp: SmtpConfig,
        tasks: TaskKeeper,
        retry: MailRetry = MailRetry(),
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self._outbox = outbox
        self._smtp = smtp
        self._tasks = tasks
        self._retry = retry
        self._tls_context = tls_context
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # While the relay is down nothing is tried before `_down_until`, woken or not, so
        # mail queued meanwhile waits with the rest and all go in the order they were queued.
        self._down_until: datetime | None = None
        self._down_times = 0

    def start(self) -> None:
        self._task = self._tasks.spawn(self.run(), name="mail-sender")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        """Mail was committed to the outbox."""
        self._wakeup.set()

    async def run(self) -> None:
        """Send what the outbox holds, as it comes, until cancelled."""
        while True:
            if self._down_until is not None:
                await asyncio.sleep(
                    max(0.0, (self._down_until - datetime.now(UTC)).total_seconds())
                )
                self._down_until = None
            await asyncio.sleep(GATHER_SECONDS)
            self._wakeup.clear()
            try:
                await self._send_due()
                next_at = await self._outbox.next_mail_attempt()
            except Exception:
                logger.exception("Sending mail failed; retrying")
                next_at = datetime.now(UTC) + timedelta(seconds=self._retry.first)
            wait = None if next_at is None else (next_at - datetime.now(UTC)).total_seconds()
            if wait is not None and wait <= 0:
                continue
            try:
                async with asyncio.timeout(wait):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    def _client(self) -> aiosmtplib.SMTP:
        smtp = self._smtp
        return aiosmtplib.SMTP(
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=smtp.password if smtp.username else None,
            use_tls=smtp.security == "tls",
            start_tls=smtp.security == "starttls",
            timeout=smtp.timeout_seconds,
            tls_context=self._tls_context,
        )

    async def _send_due(self) -> None:
        while True:
            due = await self._outbox.due_mails(datetime.now(UTC), BATCH)
            if not due:
                return
            client = self._client()
            try:
                await client.connect()
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as failure:
                await self._relay_down(due, f"relay unreachable: {failure!r}")
                return
            self._down_times = 0
            sent: list[str] = []
            try:
                for index, mail in enumerate(due):
                    try:
                        if await self._send(client, mail):
                            sent.append(mail.mail_id)
                    except RelayDown as down:
                        await self._relay_down(due[index:], str(down))
                        return
            finally:
                # One write for the batch: a crash before it sends those again (at least
                # once, as any mail accepted by the relay but not yet marked).
                await self._outbox.mark_mails_sent(sent, datetime.now(UTC))
                with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                    await client.quit()
            if len(due) < BATCH:
                return

    async def _send(self, client: aiosmtplib.SMTP, mail: OutgoingMail) -> bool:
        """Hand one mail to the relay: True when it took it; a refusal is recorded here,
        and a relay gone away raises RelayDown."""
        try:
            await client.sendmail(mail.sender, [mail.recipient], mail.message.encode())
        except aiosmtplib.SMTPRecipientsRefused as refused:
            code = refused.recipients[0].code if refused.recipients else 550
            await self._refused(mail, code, str(refused))
            return False
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as failure:
            raise RelayDown(repr(failure)) from failure
        except aiosmtplib.SMTPResponseException as response:
            await self._refused(mail, response.code, f"{response.code} {response.message}")
            return False
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as failure:
            raise RelayDown(repr(failure)) from failure
        return True

    async def _refused(self, mail: OutgoingMail, code: int, error: str) -> None:
        if 500 <= code < 600:
            logger.warning(
                "The relay refused mail %s to %s for good (%s): not sent",
                mail.mail_id,
                mail.recipient,
                error,
            )
            await self._outbox.fail_mail(mail.mail_id, datetime.now(UTC), error)
            return
        await self._defer(mail, error)

    async def _defer(self, mail: OutgoingMail, error: str, delay: float | None = None) -> None:
        if delay is None:
            delay = self._retry.delay(mail.attempts)
        logger.warning(
            "Mail %s to %s not sent (%s); retry in %.0fs",
            mail.mail_id,
            mail.recipient,
            error,
            delay,
        )
        await self._outbox.defer_mail(
            mail.mail_id, datetime.now(UTC) + timedelta(seconds=delay), error
        )

    async def _relay_down(self, mails: list[OutgoingMail], error: str) -> None:
        delay = self._retry.delay(self._down_times)
        self._down_times += 1
        self._down_until = datetime.now(UTC) + timedelta(seconds=delay)
        for mail in mails:
            await self._defer(mail, error, delay)
