"""The bridge's own SMTP listener for buyers' replies to `reply+{token}@{inbound.domain}`:
every refusal is given in the SMTP dialogue, so the buyer's mail server bounces it with
the reason; an accepted reply becomes the buyer's message in the conversation.

- RCPT TO: not a reply address of this domain, or an unknown token → 550 5.1.1; the
  envelope sender (MAIL FROM) is not the buyer's stored e-mail → 550 5.7.1; a blocked
  conversation → 550 5.7.1; a second, different reply address → 452 4.5.3.
- DATA: over `max_message_bytes` → 552 5.3.4 (SIZE is announced, a larger SIZE= is refused
  at MAIL FROM); the From header is not the buyer's → 550 5.7.1; unreadable → 550 5.6.0;
  nothing of the buyer's own left after the quote and signature are cut → 550 5.6.0; an
  attachment the widget would refuse → 550 5.7.1 naming it (nothing is stored); an
  automatic answer (RFC 3834: an out-of-office) → 250, and nothing is posted.
- Anything unexpected → 451 4.3.0 (the sender tries again later), logged.

A buyer who unsubscribed may still write: unsubscribing stops the bridge's mail to them,
not their own words to the seller.
"""

from __future__ import annotations

import asyncio
import logging
import re
import weakref
from dataclasses import dataclass
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bridge.config.sections import InboundConfig
from bridge.core.attachments import AttachmentFiles
from bridge.core.ids import BuyerID, ConversationID, SiteID
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import Attachment, Buyer, Conversation, ConversationState
from bridge.core.seller_storage import ReplyTokens
from bridge.core.validation import MAX_TEXT_CHARS
from bridge.errors import BadRequest, Conflict, Forbidden, NotFound, TooLarge
from bridge.notify.inbound_mail import MailedReply, UnreadableMail, read_reply, sender_matches

logger = logging.getLogger(__name__)

# A mail client that stops talking for this long is dropped.
SESSION_TIMEOUT_SECONDS = 60.0
# Reading a big hostile mail is CPU work; past this it is refused for now (451).
READ_TIMEOUT_SECONDS = 20.0

NO_SUCH_ADDRESS = "550 5.1.1 No such reply address"
NOT_THE_BUYER = "550 5.7.1 This reply address belongs to another sender"
BLOCKED = "550 5.7.1 This conversation is blocked"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"


@dataclass(frozen=True)
class ReplyTarget:
    """What a reply address stands for, loaded once at RCPT TO and handed to DATA."""

    address: str
    buyer: Buyer
    conversation: Conversation


class MailReplies:
    """The aiosmtpd handler: its `handle_*` hooks answer each step of the dialogue."""

    def __init__(
        self,
        tokens: ReplyTokens,
        desk: MarketplaceDesk,
        files: AttachmentFiles,
        config: InboundConfig,
    ) -> None:
        self._tokens = tokens
        self._desk = desk
        self._files = files
        self._config = config
        self._address = re.compile(
            r"reply\+([a-z0-9]{8,64})@" + re.escape(config.domain.lower()), re.IGNORECASE
        )
        # RSET and the next MAIL start a new envelope; its target goes with the old one.
        self._targets: weakref.WeakKeyDictionary[Envelope, ReplyTarget] = (
            weakref.WeakKeyDictionary()
        )

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        try:
            return await self._recipient(envelope, address, rcpt_options)
        except Exception:
            logger.exception("Mail in: RCPT TO %r failed", address[:200])
            return TRY_LATER

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        target = self._targets.pop(envelope, None)
        if target is None:
            return "503 5.5.1 No valid reply address"
        try:
            return await self._deliver(target, envelope.original_content or b"")
        except Exception:
            logger.exception(
                "Mail in: a reply into conversation %s failed",
                target.conversation.conversation_id,
            )
            return TRY_LATER

    async def handle_exception(self, error: Exception) -> str:
        logger.error("Mail in: the SMTP session failed", exc_info=error)
        return TRY_LATER

    async def _recipient(self, envelope: Envelope, address: str, options: list[str]) -> str:
        found = self._address.fullmatch(address.strip())
        if found is None:
            return NO_SUCH_ADDRESS
        if envelope.rcpt_tos:
            if envelope.rcpt_tos[0].lower() == address.lower():
                return "250 2.1.5 OK"
            # One reply is one buyer's message in one conversation.
            return "452 4.5.3 One reply address per mail"
        target = await self._target(found.group(1).lower(), address)
        if target is None:
            return NO_SUCH_ADDRESS
        if not sender_matches(envelope.mail_from, target.buyer.email):
            logger.warning(
                "Mail in: refused a reply into conversation %s from another sender",
                target.conversation.conversation_id,
            )
            return NOT_THE_BUYER
        if target.conversation.state == ConversationState.BLOCKED:
            return BLOCKED
        self._targets[envelope] = target
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 OK"

    async def _target(self, token: str, address: str) -> ReplyTarget | None:
        named = await self._tokens.by_reply_token(token)
        if named is None:
            return None
        site, buyer_id, conversation_id = named
        try:
            conversation = await self._desk.conversation(
                SiteID(site), ConversationID(conversation_id)
            )
            buyer = await self._desk.buyer(SiteID(site), BuyerID(buyer_id))
        except NotFound:
            return None
        if conversation.buyer_id != buyer.buyer_id:
            return None
        return ReplyTarget(address, buyer, conversation)

    async def _deliver(self, target: ReplyTarget, raw: bytes) -> str:
        limit = self._config.max_message_bytes
        if len(raw) > limit:
            return f"552 5.3.4 Message larger than {limit} bytes"
        try:
            async with asyncio.timeout(READ_TIMEOUT_SECONDS):
                reply = await asyncio.to_thread(read_reply, raw)
        except UnreadableMail as error:
            return f"550 5.6.0 {_printable(str(error))}"
        if not sender_matches(reply.from_address, target.buyer.email):
            logger.warning(
                "Mail in: refused a reply into conversation %s whose From is another sender",
                target.conversation.conversation_id,
            )
            return "550 5.7.1 The From header is not the address this reply address belongs to"
        if reply.automatic:
            logger.info(
                "Mail in: an automatic answer into conversation %s, not posted",
                target.conversation.conversation_id,
            )
            return "250 2.0.0 Automatic answer: not posted"
        if not reply.text and not reply.files:
            return "550 5.6.0 No text: only quoted mail or a signature"
        if len(reply.text) > MAX_TEXT_CHARS:
            return f"552 5.3.4 The text is longer than {MAX_TEXT_CHARS} characters"
        attachments: list[Attachment] = []
        for file in reply.files:
            # Checked like the widget's uploads; one refusal refuses the whole mail, so the
            # buyer hears of it in the bounce and nothing is half-stored.
            name = _printable(file.name or "unnamed")
            try:
                attachments.append(await self._files.accept_upload(file.data, file.name))
            except TooLarge:
                return f"552 5.3.4 Attachment '{name}' is too large"
            except BadRequest as error:
                return f"550 5.7.1 Attachment '{name}' refused: {_printable(error.error)}"
        return await self._post(target, reply, attachments)

    async def _post(
        self, target: ReplyTarget, reply: MailedReply, attachments: list[Attachment]
    ) -> str:
        # A message holds one file: the text goes with the first, each other file is a
        # message of its own, with a client id of its own.
        parts: list[tuple[str, Attachment | None]] = [
            (reply.text, attachments[0] if attachments else None),
            *(("", attachment) for attachment in attachments[1:]),
        ]
        stored = 0
        for index, (text, attachment) in enumerate(parts):
            client_id = reply.client_id if index == 0 else f"{reply.client_id}:{index + 1}"
            try:
                _, created = await self._desk.post_buyer_message(
                    target.conversation, target.buyer, text, client_id, attachment
                )
            except Forbidden:
                return BLOCKED
            except Conflict:
                return "550 5.7.1 This Message-ID was already used for another message"
            stored += created
        logger.info(
            "Mail in: a reply into conversation %s (%d message(s) stored)",
            target.conversation.conversation_id,
            stored,
        )
        return "250 2.0.0 Reply posted" if stored else "250 2.0.0 Reply already received"


def _printable(text: str) -> str:
    """Safe inside an SMTP reply line: printable ASCII, no CR/LF, short."""
    return re.sub(r"[^\x20-\x7e]", "?", text)[:120]


class ReplySMTP(SMTP):
    """aiosmtpd's SMTP with enhanced status codes on its own size refusals."""

    async def push(self, status: Any) -> None:
        if isinstance(status, str) and status.startswith("552 Error"):
            status = f"552 5.3.4 Message larger than {self.data_size_limit} bytes"
        await super().push(status)


class InboundListener:
    """The SMTP server on the running event loop, started and stopped with the bridge."""

    def __init__(self, handler: MailReplies, config: InboundConfig) -> None:
        self._handler = handler
        self._config = config
        self._server: asyncio.Server | None = None
        self._sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._new_session, self._config.hostname, self._config.port
        )
        logger.info(
            "Mail in: listening on %s:%d for reply+…@%s",
            self._config.hostname,
            self._config.port,
            self._config.domain,
        )

    def _new_session(self) -> SMTP:
        session = ReplySMTP(
            self._handler,
            data_size_limit=self._config.max_message_bytes,
            enable_SMTPUTF8=True,
            hostname=self._config.domain,
            ident="Bazaar Bridge",
            timeout=SESSION_TIMEOUT_SECONDS,
            loop=asyncio.get_running_loop(),
        )
        self._sessions.add(session)
        return session

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        # Python 3.11's wait_closed does not wait for open sessions: close them first.
        for session in list(self._sessions):
            if session.transport is not None:
                session.transport.close()
        await self._server.wait_closed()
        self._server = None
