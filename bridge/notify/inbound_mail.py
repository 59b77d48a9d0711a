"""A buyer's mailed reply read once, where it enters: raw bytes become a frozen
`MailedReply` (sender, new words, files) or an `UnreadableMail`. All mail is hostile: deep
nesting, too many parts, unknown charsets and broken headers end here, as a refusal."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import collapse_rfc2231_value

from bridge.notify.reply_text import html_to_text, new_words, unflow

# A reply nests a few levels (mixed > alternative > related); more is not a mail client.
MAX_DEPTH = 8
MAX_PARTS = 64
MAX_FILES = 4


class UnreadableMail(Exception):
    """The mail can't be read as a reply; the message says why, for the SMTP reply."""


@dataclass(frozen=True)
class MailedFile:
    name: str | None
    data: bytes


@dataclass(frozen=True)
class MailedReply:
    # The address of the From header, lower-cased; None when it has none or several.
    from_address: str | None
    # The writer's own words: quote and signature cut off; "" when none are left.
    text: str
    files: tuple[MailedFile, ...]
    # "mail:" and a hash of the Message-ID (else of the whole mail): a redelivered mail
    # is the same message, stored once.
    client_id: str
    # An out-of-office or other automatic answer (RFC 3834), which is nobody's reply.
    automatic: bool


def read_reply(raw: bytes) -> MailedReply:
    """Raises UnreadableMail for a mail this bridge won't read."""
    try:
        mail = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(mail, EmailMessage)
        leaves = list(_leaves(mail, 0, related=False))
        if len(leaves) > MAX_PARTS:
            raise UnreadableMail(f"more than {MAX_PARTS} parts")
        text = _text_of(leaves)
        files = tuple(_files_of(leaves))
        return MailedReply(
            from_address=_from_address(mail),
            text=new_words(text),
            files=files,
            client_id=_client_id(mail, raw),
            automatic=_is_automatic(mail),
        )
    except UnreadableMail:
        raise
    except Exception as error:
        # The stdlib parser is lenient, but a hostile header can still trip one of its
        # corners; such a mail is refused for good, not retried.
        raise UnreadableMail(f"the mail could not be read ({type(error).__name__})") from error


@dataclass(frozen=True)
class _Leaf:
    part: EmailMessage
    # Inside multipart/related with a Content-ID: a picture the HTML shows (a logo in a
    # signature), not a file the buyer attached.
    embedded: bool


def _leaves(part: EmailMessage, depth: int, *, related: bool) -> Iterator[_Leaf]:
    if depth > MAX_DEPTH:
        raise UnreadableMail(f"parts nested deeper than {MAX_DEPTH}")
    if part.get_content_maintype() == "multipart":
        inner_related = part.get_content_subtype() == "related"
        for count, sub in enumerate(part.iter_parts()):
            if count >= MAX_PARTS:
                raise UnreadableMail(f"more than {MAX_PARTS} parts")
            assert isinstance(sub, EmailMessage)
            yield from _leaves(sub, depth + 1, related=inner_related)
        return
    if part.get_content_maintype() == "message":
        return  # a forwarded mail is quoted material
    yield _Leaf(part, embedded=related and part["Content-ID"] is not None)


def _is_body(leaf: _Leaf) -> bool:
    part = leaf.part
    return (
        part.get_content_maintype() == "text"
        and part.get_content_subtype() in ("plain", "html")
        and part.get_content_disposition() != "attachment"
        and part.get_filename() is None
    )


def _text_of(leaves: list[_Leaf]) -> str:
    """The first plain-text body, else the first HTML one as text."""
    bodies = [leaf.part for leaf in leaves if _is_body(leaf)]
    for part in bodies:
        if part.get_content_subtype() == "plain":
            text = _decoded(part)
            if _param(part, "format") == "flowed":
                text = unflow(text, delsp=_param(part, "delsp") == "yes")
            return text
    for part in bodies:
        return html_to_text(_decoded(part))
    return ""


def _param(part: EmailMessage, name: str) -> str:
    value = part.get_param(name, "")
    if isinstance(value, tuple):
        value = collapse_rfc2231_value(value)
    return str(value).lower()


def _decoded(part: EmailMessage) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return data.decode(charset, errors="replace")
    except LookupError:
        # An unknown charset: read it as UTF-8, with replacement marks where it isn't.
        return data.decode("utf-8", errors="replace")


def _files_of(leaves: list[_Leaf]) -> Iterator[MailedFile]:
    count = 0
    for leaf in leaves:
        if _is_body(leaf) or leaf.embedded:
            continue
        data = leaf.part.get_payload(decode=True)
        if not isinstance(data, bytes) or not data:
            continue
        count += 1
        if count > MAX_FILES:
            raise UnreadableMail(f"more than {MAX_FILES} attachments")
        yield MailedFile(_filename(leaf.part), data)


def _filename(part: EmailMessage) -> str | None:
    name = part.get_filename()
    return str(name) if name else None


def _from_address(mail: EmailMessage) -> str | None:
    header = mail.get_all("From") or []
    if len(header) != 1:
        return None
    addresses: tuple[Address, ...] = getattr(header[0], "addresses", ())
    if len(addresses) != 1 or not addresses[0].addr_spec or "@" not in addresses[0].addr_spec:
        return None
    return addresses[0].addr_spec.lower()


_AUTOMATIC_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}


def _is_automatic(mail: EmailMessage) -> bool:
    submitted = str(mail.get("Auto-Submitted", "no")).strip().lower()
    precedence = str(mail.get("Precedence", "")).strip().lower()
    return (
        submitted != "no"
        or precedence in _AUTOMATIC_PRECEDENCE
        or mail.get("X-Autoreply") is not None
        or mail.get("X-Autorespond") is not None
    )


_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")


def _client_id(mail: EmailMessage, raw: bytes) -> str:
    found = _MESSAGE_ID.search(str(mail.get("Message-ID", "")))
    key = found.group(0).encode() if found else raw
    return "mail:" + hashlib.sha256(key).hexdigest()[:32]


def sender_matches(envelope_sender: str | None, expected: str | None) -> bool:
    """Whether an address is the buyer's own (compared case-insensitively)."""
    if not envelope_sender or not expected:
        return False
    return envelope_sender.strip().lower() == expected.strip().lower()
