"""The demo's mail relay: a local aiosmtpd sink that keeps each mail the bridge sends as an
.eml file (open it with any mail program) and prints a line for it."""

from __future__ import annotations

import asyncio
import itertools
import logging
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path

from aiosmtpd.smtp import SMTP, Envelope, Session

logger = logging.getLogger(__name__)


class _Keeper:
    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._numbers = itertools.count(1)

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = bytes(envelope.original_content or b"")
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        path = self._folder / f"{stamp}-{next(self._numbers):04d}.eml"
        await asyncio.to_thread(path.write_bytes, raw)
        subject = message_from_bytes(raw, policy=default).get("Subject", "")
        print(f"mail ✉ to {', '.join(envelope.rcpt_tos)}: {subject} ({path.name})", flush=True)
        return "250 Kept"


class MailSink:
    """Listens on loopback at `port` and writes into `folder` (made when missing)."""

    host = "127.0.0.1"

    def __init__(self, folder: Path, port: int) -> None:
        self.folder = folder
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        keeper = _Keeper(self.folder)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(keeper, hostname="localhost"), self.host, self.port
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
