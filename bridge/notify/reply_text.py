"""The new words of a mailed reply: the quoted mail and the signature cut off, HTML turned
into plain text. Pure functions over strings, no I/O."""

from __future__ import annotations

import re
from html.parser import HTMLParser

# "On Tue, 1 Dec 2026 at 10:00, ACME <shop@example.com> wrote:" and its kin; the Russian
# clients write "… пишет:" or "… написал(а):".
_ATTRIBUTION_ENDS = re.compile(
    r"(wrote|writes|schrieb|a écrit|escribió|пишет|написал|написала|написал\(а\))\s*:\s*$",
    re.IGNORECASE,
)
# How an attribution opens: "On …", a date ("01.12.2026, 10:00, …"), a weekday ("пн, …").
_ATTRIBUTION_START = re.compile(r"^\s*(On\s|Am\s|Le\s|El\s|\d|\w{2,3}\.?,\s)", re.IGNORECASE)
# Gmail in Russian writes no verb: "пн, 1 дек. 2026 г. в 10:00, ACME <shop@example.com>:".
_ADDRESS_COLON = re.compile(r"<[^<>\s]+@[^<>\s]+>\s*:\s*$")
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(original message|исходное сообщение|пересланное сообщение|"
    r"forwarded message)\s*-{2,}\s*$",
    re.IGNORECASE,
)
# Outlook quotes with a header block: "From: …" then "Sent:", "To:", "Subject:" lines.
_OUTLOOK_FROM = re.compile(r"^\s*\*?(from|от)\s*:\*?\s", re.IGNORECASE)
_OUTLOOK_FIELD = re.compile(
    r"^\s*\*?(sent|date|to|cc|subject|отправлено|дата|кому|копия|тема)\s*:", re.IGNORECASE
)
_RULE = re.compile(r"^\s*_{5,}\s*$")
_MOBILE_TRAILERS = re.compile(
    r"^\s*(sent from my \w+|отправлено с (моего )?\w+|get outlook for \w+)\b.*$", re.IGNORECASE
)
# How far below an attribution's first line its "wrote:" may be (clients wrap it).
_ATTRIBUTION_LINES = 3
# How far below "From:" the other fields of an Outlook block must start.
_OUTLOOK_LINES = 4


def new_words(text: str) -> str:
    """The reply without the mail it quotes and without its signature; "" when nothing of
    the writer's own is left."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = lines[: _quote_start(lines)]
    lines = [line.rstrip() for line in lines if not line.startswith(">")]
    while lines and (not lines[-1].strip() or _MOBILE_TRAILERS.match(lines[-1])):
        lines.pop()
    return _squeeze("\n".join(lines))


def _quote_start(lines: list[str]) -> int:
    """The index of the first line that belongs to the quoted mail or the signature."""
    for index, line in enumerate(lines):
        if line in ("-- ", "--"):
            return index
        if _ORIGINAL_MESSAGE.match(line):
            return index
        if _is_attribution(lines, index):
            return index
        if _OUTLOOK_FROM.match(line) and any(
            _OUTLOOK_FIELD.match(following)
            for following in lines[index + 1 : index + 1 + _OUTLOOK_LINES]
        ):
            # The rule Outlook draws above its header block belongs to the quote too.
            start = index
            while start > 0 and (_RULE.match(lines[start - 1]) or not lines[start - 1].strip()):
                start -= 1
            return start
    return len(lines)


def _is_attribution(lines: list[str], index: int) -> bool:
    line = lines[index]
    if not line.strip() or line.startswith(">"):
        return False
    if _ADDRESS_COLON.search(line) and _quoted_next(lines, index + 1):
        return True
    if _ATTRIBUTION_ENDS.search(line):
        # One line: it opens like an attribution, or names a date or an address above a
        # quote. A buyer's own "as you wrote:" followed by their words stays.
        return bool(_ATTRIBUTION_START.match(line)) or (
            _quoted_next(lines, index + 1) and bool(re.search(r"[@\d]", line))
        )
    if not _ATTRIBUTION_START.match(line):
        return False
    # Clients wrap a long attribution: "wrote:" a line or two below, with no gap.
    for following in lines[index + 1 : index + _ATTRIBUTION_LINES]:
        if not following.strip() or following.startswith(">"):
            return False
        if _ATTRIBUTION_ENDS.search(following):
            return True
    return False


def _quoted_next(lines: list[str], index: int) -> bool:
    """Whether the next line with words is a quoted one."""
    for line in lines[index:]:
        if line.strip():
            return line.startswith(">")
    return True


def _squeeze(text: str) -> str:
    """Trim the ends and allow at most one empty line in a row."""
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def unflow(text: str, *, delsp: bool) -> str:
    """Undo RFC 3676 `format=flowed`: a line ending in a space goes on in the next one."""
    joined: list[str] = []
    carry = ""
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw[1:] if raw.startswith(" ") else raw  # space-stuffed
        if line != "-- " and line.endswith(" ") and not line.startswith(">"):
            carry += line[:-1] if delsp else line
            continue
        joined.append(carry + line)
        carry = ""
    if carry:
        joined.append(carry)
    return "\n".join(joined)


_BLOCKS = {
    "address",
    "article",
    "blockquote",
    "br",
    "div",
    "dl",
    "dt",
    "dd",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "section",
    "table",
    "tr",
    "ul",
}
_HIDDEN = {"head", "script", "style", "title", "template", "noscript"}


class _TextOfHtml(HTMLParser):
    """Collects the visible text; quoted blocks come out as "> " lines, so `new_words`
    cuts them as it cuts a plain-text quote."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self._hidden = 0
        self._quoted = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self._hidden += 1
        if tag in _BLOCKS:
            self._break()
        if tag == "blockquote":
            self._quoted += 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self._break()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        if tag == "blockquote":
            self._quoted = max(0, self._quoted - 1)
        if tag in _BLOCKS:
            self._break()

    def handle_data(self, data: str) -> None:
        if self._hidden:
            return
        words = re.sub(r"\s+", " ", data)
        if not words.strip() and not self.lines[-1]:
            return
        if not self.lines[-1] and self._quoted:
            self.lines[-1] = ">" * self._quoted + " "
        self.lines[-1] += words

    def _break(self) -> None:
        self.lines[-1] = self.lines[-1].strip() if not self._quoted else self.lines[-1].rstrip()
        self.lines.append("")


def html_to_text(html: str) -> str:
    """The visible text of an HTML mail, without markup, scripts or styles."""
    parser = _TextOfHtml()
    parser.feed(html)
    parser.close()
    lines = [line.strip() if not line.startswith(">") else line for line in parser.lines]
    return _squeeze("\n".join(lines))
