"""Renders the bridge's mails whole: text and HTML parts in the recipient's language, under
the marketplace's name.

Names, titles and messages are hostile: the HTML part escapes them, and every header value
loses its CR/LF and goes through `EmailMessage` with the SMTP policy, which encodes it, so
no name or title can add a header.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid

from bridge.core.models import Buyer, Conversation, Feedback, Message, Seller, Site
from bridge.notify.files import file_link

_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")
SUBJECT_CHARS = 200
# RFC 5322's line limit, not 78: a folded `List-Unsubscribe` would start with a blank,
# which some clients keep in the link.
POLICY = SMTP.clone(max_line_length=998)

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "new_subject": "New conversation from {buyer}: {title}",
        "new_intro": "{buyer} started a conversation with {seller} about “{title}”.",
        "new_hint": "Answer in your Matrix client, in the conversation's room.",
        "copy_subject": "{buyer} wrote about {title}",
        "copy_intro": "{buyer} wrote to {seller} about “{title}”:",
        "files": "{count} file(s): see them in the conversation room",
        "feedback_subject": "Feedback from {buyer} (chat is off)",
        "feedback_intro": "{buyer} left this while the chat of {seller} was off:",
        "contact": "Contact: {contact}",
        "no_contact": "Contact: none given",
        "digest_subject": "{seller} replied: {title}",
        "digest_intro": "{seller} answered you about “{title}”:",
        "link": "Open the chat: {url}",
        "reply_hint": "You can also answer this mail.",
        "unsubscribe": "No more of these mails: {url}",
        "someone": "A buyer",
    },
    "ru": {
        "new_subject": "Новый разговор от {buyer}: {title}",
        "new_intro": "{buyer} начал(а) разговор с {seller} о «{title}».",
        "new_hint": "Ответьте в своём клиенте Matrix, в комнате разговора.",
        "copy_subject": "{buyer} написал(а) о {title}",
        "copy_intro": "{buyer} написал(а) {seller} о «{title}»:",
        "files": "Файлов: {count}, смотрите их в комнате переписки",
        "feedback_subject": "Отзыв от {buyer} (чат выключен)",
        "feedback_intro": "{buyer} оставил(а) это, пока чат {seller} был выключен:",
        "contact": "Контакт: {contact}",
        "no_contact": "Контакт не указан",
        "digest_subject": "{seller} ответил(а): {title}",
        "digest_intro": "{seller} ответил(а) вам о «{title}»:",
        "link": "Открыть чат: {url}",
        "reply_hint": "Можно ответить и на это письмо.",
        "unsubscribe": "Больше не получать такие письма: {url}",
        "someone": "Покупатель",
    },
}


def header_value(value: str) -> str:
    """A header value on one line: CR, LF and other line breaks become spaces."""
    return _LINE_BREAKS.sub(" ", value).strip()


def language_of(*choices: str | None) -> str:
    """The first known language among the choices (a tag like `ru-RU` counts as `ru`)."""
    for choice in choices:
        if choice:
            base = choice.split("-")[0].split("_")[0].lower()
            if base in TEXTS:
                return base
    return "en"


class MailComposer:
    """Implements `core.mailing.MailComposer` for the config's from address, public URL and
    (optional) inbound domain."""

    def __init__(
        self, from_address: str, public_url: str, inbound_domain: str | None = None
    ) -> None:
        self._from = from_address
        self._public_url = public_url.rstrip("/")
        self._inbound = inbound_domain

    @property
    def from_address(self) -> str:
        return self._from

    def _envelope(
        self,
        site: Site,
        to: str,
        subject: str,
        text: str,
        body_html: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> str:
        mail = EmailMessage(policy=POLICY)
        mail["From"] = formataddr((header_value(site.name), self._from))
        mail["To"] = header_value(to)
        mail["Subject"] = header_value(subject)[:SUBJECT_CHARS]
        mail["Date"] = format_datetime(datetime.now(UTC))
        mail["Message-ID"] = make_msgid(domain=self._from.rpartition("@")[2] or None)
        for name, value in headers:
            mail[name] = header_value(value)
        # Quoted-printable keeps the stored message plain ASCII whatever the language.
        mail.set_content(text, cte="quoted-printable")
        mail.add_alternative(
            f'<!DOCTYPE html><html><body style="font-family:sans-serif">{body_html}</body></html>',
            subtype="html",
            cte="quoted-printable",
        )
        return mail.as_string()

    def new_conversation(
        self, site: Site, seller: Seller, buyer: Buyer, conversation: Conversation, to: str
    ) -> str:
        words = TEXTS[language_of(seller.language, site.language)]
        names = _names(seller, buyer, conversation)
        lines = [words["new_intro"].format(**names)]
        lines += _link_lines(words, conversation)
        lines.append(words["new_hint"])
        return self._envelope(
            site,
            to,
            words["new_subject"].format(**names),
            "\n\n".join(lines) + "\n",
            "".join(f"<p>{_html_line(line)}</p>" for line in lines),
        )

    def message_copy(
        self,
        site: Site,
        seller: Seller,
        buyer: Buyer,
        conversation: Conversation,
        message: Message,
        to: str,
    ) -> str:
        words = TEXTS[language_of(seller.language, site.language)]
        names = _names(seller, buyer, conversation)
        intro = words["copy_intro"].format(**names)
        # The buyer's files are in the seller's room; the seller reads them there.
        said = _message_text(message, [])
        if message.attachments:
            said += f"\n[{words['files'].format(count=len(message.attachments))}]"
        tail = [*_link_lines(words, conversation), words["new_hint"]]
        return self._envelope(
            site,
            to,
            words["copy_subject"].format(**names),
            "\n\n".join([intro, _quote(said), *tail]) + "\n",
            f"<p>{html.escape(intro)}</p>{_html_quote(said)}"
            + "".join(f"<p>{_html_line(line)}</p>" for line in tail),
        )

    def feedback(
        self, site: Site, seller: Seller, buyer: Buyer | None, feedback: Feedback, to: str
    ) -> str:
        words = TEXTS[language_of(seller.language, site.language)]
        names = {"buyer": buyer.name if buyer else words["someone"], "seller": seller.name}
        intro = words["feedback_intro"].format(**names)
        contact = (
            words["contact"].format(contact=feedback.contact)
            if feedback.contact
            else words["no_contact"]
        )
        return self._envelope(
            site,
            to,
            words["feedback_subject"].format(**names),
            "\n\n".join([intro, _quote(feedback.text), contact]) + "\n",
            f"<p>{html.escape(intro)}</p>{_html_quote(feedback.text)}<p>{html.escape(contact)}</p>",
        )

    def buyer_digest(
        self,
        site: Site,
        seller: Seller,
        buyer: Buyer,
        conversation: Conversation,
        messages: Sequence[Message],
        token: str,
        to: str,
    ) -> str:
        words = TEXTS[language_of(buyer.language, site.language)]
        names = _names(seller, buyer, conversation)
        intro = words["digest_intro"].format(**names)
        unsubscribe = f"{self._public_url}/mail/v1/unsubscribe/{token}"
        tail = _link_lines(words, conversation)
        headers = [
            ("List-Unsubscribe", f"<{unsubscribe}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ]
        if self._inbound:
            headers.insert(0, ("Reply-To", f"reply+{token}@{self._inbound}"))
            tail.append(words["reply_hint"])
        tail.append(words["unsubscribe"].format(url=unsubscribe))

        def files(message: Message) -> list[tuple[str, str]]:
            return [
                (a.name, file_link(self._public_url, token, a.attachment_id))
                for a in message.attachments
            ]

        return self._envelope(
            site,
            to,
            words["digest_subject"].format(**names),
            "\n\n".join([intro, *(_quote(_message_text(m, files(m))) for m in messages), *tail])
            + "\n",
            f"<p>{html.escape(intro)}</p>"
            + "".join(_html_message(m, files(m)) for m in messages)
            + "".join(f"<p>{_html_line(line)}</p>" for line in tail),
            headers,
        )


def _names(seller: Seller, buyer: Buyer, conversation: Conversation) -> dict[str, str]:
    return {"buyer": buyer.name, "seller": seller.name, "title": conversation.context.title}


def _message_text(message: Message, files: Sequence[tuple[str, str]]) -> str:
    """A message in the digest's text part; each file (a picture too) as its name and link."""
    parts = [message.text] if message.text else []
    parts += [f"{name}: {url}" for name, url in files]
    return "\n".join(parts)


def _html_message(message: Message, files: Sequence[tuple[str, str]]) -> str:
    links = "".join(
        f'<br><a href="{html.escape(url)}">{html.escape(name)}</a>' for name, url in files
    )
    escaped = html.escape(message.text).replace("\n", "<br>")
    return f"{_QUOTE_START}{escaped}{links}</blockquote>"


def _link_lines(words: dict[str, str], conversation: Conversation) -> list[str]:
    url = conversation.context.url
    return [words["link"].format(url=url)] if url else []


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" for line in text.splitlines() or [""])


_QUOTE_START = '<blockquote style="border-left:3px solid #ccc;padding-left:8px">'


def _html_quote(text: str) -> str:
    escaped = html.escape(text).replace("\n", "<br>")
    return f"{_QUOTE_START}{escaped}</blockquote>"


_URL = re.compile(r"https?://[^\s<>\"']+")


def _html_line(line: str) -> str:
    """A line escaped, with its http(s) links made clickable (and escaped too)."""
    out, last = [], 0
    for match in _URL.finditer(line):
        out.append(html.escape(line[last : match.start()]))
        url = html.escape(match.group(0))
        out.append(f'<a href="{url}">{url}</a>')
        last = match.end()
    out.append(html.escape(line[last:]))
    return "".join(out)
