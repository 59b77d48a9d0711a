"""Fault suite: buyer messages and seller replies through a bridge that is killed, a homeserver
and a database that restart, a webhook receiver that fails and a translator that hangs;
then what arrived is counted from the outside (issue 14).

Everything runs here on loopback, each part a real server: an embedded Synapse, a throwaway
PostgreSQL cluster (`tests/support/pgcluster.py`), the bridge as its own process
(`python -m bridge run -c …`, so SIGKILL is a real crash), a webhook receiver that checks
signatures, and `tests/support/libretranslate.py`'s fake LibreTranslate (seller `ru`, buyers
`en`, so every message goes through it). Buyers post through the marketplace API, one message
after the other per conversation, and repeat a send that got no answer with the same
`client_id` until it is acknowledged; sellers are Matrix users sending into the rooms with
their own transaction ids. While that traffic flows the faults run on a schedule. Once
delivery settles the rooms are read as a seller reads them (`/messages`), the buyers' side
through the marketplace API, and the webhooks as the receiver got them; the table counts what
was lost, duplicated or out of order. Goal: all zero (exit code 1 otherwise).

    python bench/faults.py [--messages 10000] [--conversations 200] [--replies 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import re
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml
from aiohttp import web

REPO = Path(__file__).resolve().parent.parent
# Run as a script, only bench/ is on the path; the suite's fakes live with the tests.
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

from bench.stage import (  # noqa: E402
    SITE,
    BenchError,
    Homeserver,
    bridge_settings,
    embedded_synapse,
    json_body,
    progress,
)
from bridge.config import parse_config  # noqa: E402
from bridge.demo.synapse import EmbeddedSynapse, free_port  # noqa: E402
from bridge.matrix.content import MESSAGE_ID_KEY  # noqa: E402
from tests.support.libretranslate import FakeLibreTranslate  # noqa: E402
from tests.support.loopback import LoopbackServer  # noqa: E402
from tests.support.pgcluster import PgCluster, StopMode  # noqa: E402
from tests.support.processes import BridgeProcess, BridgeProcessError  # noqa: E402

BUYER_LANGUAGE = "en"
SELLER_LANGUAGE = "ru"
ORIGINAL_KEY = "io.bazaar.original"
TRANSLATION_KEY = "io.bazaar.translation"
# The bridge gives up on the translator after this; a hang lasts longer.
TRANSLATION_TIMEOUT = 2
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=20, connect=5)
RETRY_PAUSE = 0.5
# How long one send may go unacknowledged before the run is declared broken.
SEND_DEADLINE = 180.0
SETUP_CONCURRENCY = 8
PAGE = 200
# After everything is in, a little longer for late repeats to show up before counting.
GRACE = 5.0
DETAIL_LINES = 40

BUYER_TEXT = re.compile(r"^Question (\d+) in conversation (\d+)$")
REPLY_TEXT = re.compile(r"^Ответ (\d+) в разговоре (\d+)$")


def buyer_text(conversation: int, n: int) -> str:
    return f"Question {n} in conversation {conversation}"


def reply_text(conversation: int, n: int) -> str:
    return f"Ответ {n} в разговоре {conversation}"


# --- the scenario ------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A fault that lasts: from `start` (seconds into the traffic) for `seconds`."""

    start: float
    seconds: float


@dataclass(frozen=True)
class Scenario:
    """The traffic and the faults; times are seconds after the first message is sent."""

    buyer_messages: int = 10_000
    conversations: int = 200
    seller_replies: int = 1_000
    sellers: int = 4
    # The messages are spread evenly over this long; faults happen inside it.
    traffic_seconds: float = 600.0
    bridge_kills: tuple[float, ...] = ()
    synapse_restarts: tuple[float, ...] = ()
    postgres_restarts: tuple[float, ...] = ()
    postgres_stop_mode: StopMode = "immediate"
    # How long PostgreSQL stays down (its own restart takes a fraction of a second).
    postgres_down_seconds: float = 5.0
    webhook_outage: Window | None = None
    translation_hang: Window | None = None
    # A hung translator answers after this long; longer than the bridge's timeout.
    translation_delay: float = 10.0
    settle_timeout: float = 1200.0
    # Delivery that has not moved for this long is not late but lost.
    stall_seconds: float = 120.0

    @classmethod
    def spread(
        cls,
        *,
        kills: int,
        synapse_restarts: int,
        postgres_restarts: int,
        webhook_outage: float,
        translation_hang: float,
        **sizes: Any,
    ) -> Scenario:
        """The faults spaced evenly over the traffic, one kind after the other."""
        scenario = cls(**sizes)
        duration = scenario.traffic_seconds
        kinds = _interleave(
            [("bridge", kills), ("synapse", synapse_restarts), ("postgres", postgres_restarts)]
        )
        times: dict[str, list[float]] = defaultdict(list)
        for index, kind in enumerate(kinds):
            times[kind].append(round(duration * (index + 1) / (len(kinds) + 1), 1))
        return cls(
            **sizes,
            bridge_kills=tuple(times["bridge"]),
            synapse_restarts=tuple(times["synapse"]),
            postgres_restarts=tuple(times["postgres"]),
            webhook_outage=Window(round(duration * 0.15, 1), webhook_outage)
            if webhook_outage
            else None,
            translation_hang=Window(round(duration * 0.45, 1), translation_hang)
            if translation_hang
            else None,
        )


def _interleave(counts: Sequence[tuple[str, int]]) -> list[str]:
    order: list[str] = []
    left = dict(counts)
    while any(left.values()):
        for kind, _ in counts:
            if left[kind]:
                order.append(kind)
                left[kind] -= 1
    return order


def shares(total: int, parts: int) -> list[int]:
    """`total` split over `parts` as evenly as whole numbers allow."""
    return [total // parts + (1 if index < total % parts else 0) for index in range(parts)]


# --- what is counted ---------------------------------------------------------------------


@dataclass
class Row:
    sent: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    out_of_order: int = 0
    missing_webhooks: int = 0


@dataclass
class Outcome:
    rows: dict[str, Row]
    timeline: list[tuple[float, str]]
    settled: bool
    settle_error: str | None
    # Further counts that must be zero (the bridge's own exits, bad signatures, …).
    anomalies: dict[str, int]
    # Figures that say the faults bit, and how hard.
    figures: dict[str, Any]
    # Which message went wrong, and how.
    details: list[str]
    wall_seconds: float

    def problems(self) -> dict[str, int]:
        """Every count that should be zero and is not."""
        found = {
            f"{name}: {column.replace('_', ' ')}": value
            for name, row in self.rows.items()
            for column, value in vars(row).items()
            if column not in ("sent", "delivered") and value
        }
        found.update({name: value for name, value in self.anomalies.items() if value})
        if not self.settled:
            found["did not settle"] = 1
        return found

    def table(self) -> str:
        columns = ("sent", "delivered", "lost", "duplicated", "out of order", "missing webhooks")
        width = max(len(name) for name in self.rows)
        widths = [max(len(column), 7) + 2 for column in columns]
        lines = [" " * width + "".join(f"{c:>{w}}" for c, w in zip(columns, widths, strict=True))]
        for name, row in self.rows.items():
            values = vars(row).values()
            cells = "".join(f"{v:>{w},}" for v, w in zip(values, widths, strict=True))
            lines.append(f"{name:<{width}}{cells}")
        return "\n".join(lines)

    def report(self) -> str:
        lines = ["fault timeline (seconds after the first message):"]
        lines += [f"  {at:8.1f}  {what}" for at, what in self.timeline]
        lines += ["", self.table(), ""]
        if self.details:
            lines.append("what went wrong:")
            lines += [f"  {line}" for line in self.details[:DETAIL_LINES]]
            if len(self.details) > DETAIL_LINES:
                lines.append(f"  … and {len(self.details) - DETAIL_LINES} more")
            lines.append("")
        lines += [f"{name}: {value}" for name, value in self.anomalies.items()]
        lines += [f"{name}: {value}" for name, value in self.figures.items()]
        lines.append(f"wall time: {self.wall_seconds:.0f} s")
        if self.settle_error:
            lines.append(f"NOT SETTLED: {self.settle_error}")
        problems = self.problems()
        lines.append(
            "all zero"
            if not problems
            else f"PROBLEMS: {', '.join(f'{k} {v}' for k, v in problems.items())}"
        )
        return "\n".join(lines)


# --- the parts ---------------------------------------------------------------------------


class Clock:
    """Seconds since the traffic began, for the schedule and the timeline."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.timeline: list[tuple[float, str]] = []

    def now(self) -> float:
        return time.monotonic() - self.started

    async def until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))

    def note(self, what: str) -> None:
        self.timeline.append((round(self.now(), 1), what))
        progress(f"{self.now():6.1f} s  {what}")


class Receiver(LoopbackServer):
    """The marketplace's webhook endpoint: checks signatures, keeps every event it accepts,
    and answers 500 while `failing`."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret
        self.url = f"{self.base}/hooks"
        self.failing = False
        self.refused = 0
        self.bad_signatures = 0
        self.events: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/hooks", self._hook)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Bazaar-Signature", ""), expected):
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.failing:
            self.refused += 1
            return web.Response(status=500)
        self.events.append(json.loads(body))
        return web.Response(status=204)


@dataclass
class Conversation:
    index: int
    conversation_id: str
    room_id: str
    seller: int
    # Acknowledged buyer messages: number → message id.
    acknowledged: dict[int, str] = field(default_factory=dict)
    # Seller replies Synapse acknowledged: number → event id.
    replies_sent: dict[int, str] = field(default_factory=dict)


@dataclass
class Seller:
    seller_id: str
    user_id: str
    token: str


@dataclass
class Traffic:
    buyer_retries: int = 0
    reply_retries: int = 0


class Buyers:
    """The marketplace relaying buyer messages: idempotent by `client_id`, so a send without
    an answer is simply sent again."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str) -> None:
        self._session = session
        self._base = f"{base}/api/v1/sites/{SITE}"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        async with self._session.request(
            method,
            self._base + path,
            json=body,
            params=params or None,
            headers=self._headers,
            timeout=REQUEST_TIMEOUT,
        ) as response:
            return await json_body(response, f"{method} {path}")

    async def send(self, conversation: Conversation, n: int, traffic: Traffic) -> None:
        body = {
            "text": buyer_text(conversation.index, n),
            "client_id": f"c{conversation.index}-m{n}",
        }
        path = f"/conversations/{conversation.conversation_id}/messages"
        deadline = time.monotonic() + SEND_DEADLINE
        while True:
            try:
                async with self._session.post(
                    self._base + path, json=body, headers=self._headers, timeout=REQUEST_TIMEOUT
                ) as response:
                    if response.status in (200, 201):
                        answer = await response.json()
                        conversation.acknowledged[n] = str(answer["message_id"])
                        return
                    if response.status < 500:
                        raise BenchError(
                            f"the bridge refused {body}: {response.status} {await response.text()}"
                        )
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"{body} was not acknowledged within {SEND_DEADLINE:g} s")
            traffic.buyer_retries += 1
            await asyncio.sleep(RETRY_PAUSE)

    async def messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        path = f"/conversations/{conversation.conversation_id}/messages"
        listed: list[dict[str, Any]] = []
        while True:
            params = {"limit": str(PAGE)}
            if listed:
                params["after"] = listed[-1]["message_id"]
            page = (await self.call("GET", path, **params))["messages"]
            listed += page
            if len(page) < PAGE:
                return listed


async def send_reply(
    session: aiohttp.ClientSession,
    address: str,
    seller: Seller,
    conversation: Conversation,
    n: int,
    traffic: Traffic,
) -> None:
    """A seller's reply in the room; its own transaction id makes a repeat harmless."""
    txn = f"reply-{conversation.index}-{n}"
    url = (
        f"{address}/_matrix/client/v3/rooms/{quote(conversation.room_id, safe='')}"
        f"/send/m.room.message/{txn}"
    )
    body = {"msgtype": "m.text", "body": reply_text(conversation.index, n)}
    deadline = time.monotonic() + SEND_DEADLINE
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with session.put(
                url,
                json=body,
                headers={"Authorization": f"Bearer {seller.token}"},
                timeout=REQUEST_TIMEOUT,
            ) as response:
                if response.status == 200:
                    answer = await response.json()
                    conversation.replies_sent[n] = str(answer["event_id"])
                    return
                if response.status < 500 and response.status != 429:
                    raise BenchError(f"Synapse refused {txn}: {await response.text()}")
        if time.monotonic() > deadline:
            raise BenchError(f"{txn} was not acknowledged within {SEND_DEADLINE:g} s")
        traffic.reply_retries += 1
        await asyncio.sleep(RETRY_PAUSE)


async def paced(
    count: int, duration: float, offset: float, clock: Clock, send: Callable[[int], Awaitable[None]]
) -> None:
    """Messages 1…count, evenly over `duration`, each after the one before was acknowledged."""
    step = duration / max(count, 1)
    for n in range(1, count + 1):
        await clock.until(offset * step + (n - 1) * step)
        await send(n)


async def room_timeline(homeserver: Homeserver, token: str, room_id: str) -> list[dict[str, Any]]:
    """The room's messages oldest first, as a seller's client pages through them."""
    path = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/messages"
    events: list[dict[str, Any]] = []
    params = {"dir": "f", "limit": "1000", "filter": json.dumps({"types": ["m.room.message"]})}
    while True:
        page = await homeserver.call("GET", path, token, params=params)
        events += page.get("chunk", [])
        if not page.get("chunk") or "end" not in page:
            return events
        params["from"] = page["end"]


# --- counting ----------------------------------------------------------------------------


@dataclass
class Readings:
    timelines: dict[int, list[dict[str, Any]]]
    listings: dict[int, list[dict[str, Any]]]
    webhooks: list[dict[str, Any]]


def late(numbers: Iterable[int]) -> list[tuple[int, int]]:
    """Each number that came after a higher one of the same sequence, with that one."""
    found, highest = [], 0
    for n in numbers:
        if n < highest:
            found.append((n, highest))
        highest = max(highest, n)
    return found


def first_occurrences(numbers: Iterable[int]) -> list[int]:
    seen: set[int] = set()
    ordered = []
    for n in numbers:
        if n not in seen:
            seen.add(n)
            ordered.append(n)
    return ordered


class Webhooks:
    """What the receiver got, by the message each event is about."""

    def __init__(self, events: Sequence[dict[str, Any]]) -> None:
        self.created: dict[str, set[str]] = defaultdict(set)  # message id → webhook ids
        self.sent: dict[str, set[str]] = defaultdict(set)  # message.status "sent"
        # Per conversation and side, message ids in the order their message.created came.
        self.created_order: dict[tuple[str, str], list[str]] = defaultdict(list)
        repeats: Counter[str] = Counter(event["id"] for event in events)
        self.repeats = sum(n - 1 for n in repeats.values())
        for event in events:
            message = event.get("message") or {}
            if event["type"] == "message.created":
                self.created[message["message_id"]].add(event["id"])
                key = (event["conversation_id"], message["sender"])
                self.created_order[key].append(message["message_id"])
            elif event["type"] == "message.status" and message.get("status") == "sent":
                self.sent[message["message_id"]].add(event["id"])


class Tally:
    """The table's counts, one conversation at a time; the rooms and the receiver decide."""

    def __init__(self, sellers: Sequence[Seller], webhooks: Webhooks) -> None:
        self.buyer, self.reply, self.hooks = Row(), Row(), Row()
        self.anomalies: Counter[str] = Counter()
        self.figures: Counter[str] = Counter()
        # One line per message that was lost, duplicated or out of order, for the evidence.
        self.details: list[str] = []
        self._sellers = {seller.user_id for seller in sellers}
        self._webhooks = webhooks

    def rows(self) -> dict[str, Row]:
        self.hooks.sent = 2 * self.buyer.sent + self.reply.sent
        self.hooks.lost = self.hooks.missing_webhooks
        self.hooks.delivered = self.hooks.sent - self.hooks.missing_webhooks
        return {"buyer → seller": self.buyer, "seller → buyer": self.reply, "webhooks": self.hooks}

    def add(
        self,
        conversation: Conversation,
        timeline: Sequence[dict[str, Any]],
        listing: Sequence[dict[str, Any]],
    ) -> None:
        in_room, replies_in_room = self._room(conversation, timeline)
        self._buyer_messages(conversation, in_room)
        replies = self._replies(conversation, listing, replies_in_room)
        numbers = {m: n for n, m in conversation.acknowledged.items()}
        for side, number_of in (("buyer", numbers), ("seller", replies)):
            arrived = self._webhooks.created_order.get((conversation.conversation_id, side), [])
            behind = late(first_occurrences(number_of[m] for m in arrived if m in number_of))
            self.hooks.out_of_order += len(behind)
            self._tell(conversation, f"message.created of {side} message", behind)

    def _room(
        self, conversation: Conversation, timeline: Sequence[dict[str, Any]]
    ) -> tuple[list[int], Counter[int]]:
        """The buyer messages' numbers in the room's order, and the seller's own copies of
        each reply there."""
        number_of = {m: n for n, m in conversation.acknowledged.items()}
        in_room: list[int] = []
        replies: Counter[int] = Counter()
        for event in timeline:
            content = event.get("content", {})
            if event.get("sender") in self._sellers:
                if match := REPLY_TEXT.match(content.get("body", "")):
                    replies[int(match.group(1))] += 1
                continue
            message_id = content.get(MESSAGE_ID_KEY)
            if not isinstance(message_id, str):
                continue  # the bot's card and notices
            n = number_of.get(message_id)
            written = content.get(ORIGINAL_KEY, {}).get("body", content.get("body"))
            if n is None or written != buyer_text(conversation.index, n):
                self.anomalies["buyer messages in a room that no buyer sent"] += 1
                continue
            self._note_translation("buyer messages", content.get(TRANSLATION_KEY))
            in_room.append(n)
        return in_room, replies

    def _buyer_messages(self, conversation: Conversation, in_room: Sequence[int]) -> None:
        ids = conversation.acknowledged
        distinct = set(in_room)
        row, created, sent = self.buyer, self._webhooks.created, self._webhooks.sent
        row.sent += len(ids)
        row.delivered += len(distinct & set(ids))
        row.lost += len(set(ids) - distinct)
        row.duplicated += len(in_room) - len(distinct)
        behind = late(first_occurrences(in_room))
        row.out_of_order += len(behind)
        row.missing_webhooks += sum(not created[m] or not sent[m] for m in ids.values())
        where = f"conversation {conversation.index} ({conversation.room_id})"
        for n in sorted(set(ids) - distinct):
            self.details.append(f"{where}: buyer message {n} ({ids[n]}) is not in the room")
        for n, copies in sorted(Counter(in_room).items()):
            if copies > 1:
                self.details.append(f"{where}: buyer message {n} ({ids[n]}) is there {copies}×")
        self._tell(conversation, "buyer message", behind)
        for n, m in sorted(ids.items()):
            if not created[m] or not sent[m]:
                what = "message.created" if not created[m] else "message.status sent"
                self.details.append(f"{where}: no {what} for buyer message {n} ({m})")
        self.hooks.missing_webhooks += sum((not created[m]) + (not sent[m]) for m in ids.values())
        self.hooks.duplicated += sum(
            (len(created[m]) > 1) + (len(sent[m]) > 1) for m in ids.values()
        )

    def _replies(
        self,
        conversation: Conversation,
        listing: Sequence[dict[str, Any]],
        in_room: Counter[int],
    ) -> dict[str, int]:
        """Count the replies as the buyer's side lists them; returns their message ids."""
        listed: list[int] = []
        numbers: dict[str, int] = {}
        for message in listing:
            if message["sender"] == "buyer":
                self.anomalies["buyer messages not 'sent' in the API"] += (
                    message["status"] != "sent"
                )
                continue
            if message["sender"] != "seller":
                continue
            written = (message.get("original") or {}).get("text", message["text"])
            match = REPLY_TEXT.match(written)
            if not match or int(match.group(2)) != conversation.index:
                self.anomalies["seller replies the sellers did not send"] += 1
                continue
            listed.append(int(match.group(1)))
            numbers[message["message_id"]] = int(match.group(1))
            self._note_translation("seller replies", message.get("translation"))
        sent = set(conversation.replies_sent)
        events = conversation.replies_sent
        row, created = self.reply, self._webhooks.created
        row.sent += len(sent)
        row.delivered += len(set(listed) & sent)
        row.lost += len(sent - set(listed))
        # Two copies in the room (the seller's client sent twice) are two replies to relay.
        row.duplicated += sum(max(0, c - max(in_room[n], 1)) for n, c in Counter(listed).items())
        behind = late(first_occurrences(listed))
        row.out_of_order += len(behind)
        where = f"conversation {conversation.index} ({conversation.conversation_id})"
        for n in sorted(sent - set(listed)):
            self.details.append(
                f"{where}: seller reply {n} ({events[n]}) is not on the buyer's side"
            )
        for n, copies in sorted(Counter(listed).items()):
            if copies > max(in_room[n], 1):
                self.details.append(f"{where}: seller reply {n} ({events[n]}) is there {copies}×")
        self._tell(conversation, "seller reply", behind)
        self.anomalies["seller replies twice in the room (the seller's client)"] += sum(
            copies > 1 for copies in in_room.values()
        )
        for n in sent:
            ids = [m for m, number in numbers.items() if number == n]
            missing = not any(created[m] for m in ids)
            if missing:
                self.details.append(f"{where}: no message.created for seller reply {n}")
            row.missing_webhooks += missing
            self.hooks.missing_webhooks += missing
            self.hooks.duplicated += sum(len(created[m]) > 1 for m in ids)
        return numbers

    def _tell(
        self, conversation: Conversation, what: str, behind: Sequence[tuple[int, int]]
    ) -> None:
        self.details += [
            f"conversation {conversation.index}: {what} {n} came after {what} {later}"
            for n, later in behind
        ]

    def _note_translation(self, what: str, note: dict[str, Any] | None) -> None:
        if note and note.get("failed"):
            self.figures[f"{what} untranslated (the translator did not answer)"] += 1
        elif note:
            self.figures[f"{what} translated"] += 1


@dataclass
class Counts:
    rows: dict[str, Row]
    anomalies: dict[str, int]
    figures: dict[str, Any]
    details: list[str]


def count(
    conversations: Sequence[Conversation], sellers: Sequence[Seller], readings: Readings
) -> Counts:
    webhooks = Webhooks(readings.webhooks)
    tally = Tally(sellers, webhooks)
    tally.anomalies.update(
        {
            "buyer messages in a room that no buyer sent": 0,
            "seller replies the sellers did not send": 0,
            "buyer messages not 'sent' in the API": 0,
            "seller replies twice in the room (the seller's client)": 0,
        }
    )
    for conversation in conversations:
        tally.add(
            conversation,
            readings.timelines[conversation.index],
            readings.listings[conversation.index],
        )
    tally.figures["webhook repeats by id (allowed: at least once)"] = webhooks.repeats
    return Counts(tally.rows(), dict(tally.anomalies), dict(tally.figures), tally.details)


# --- the run -----------------------------------------------------------------------------


async def run_scenario(scenario: Scenario, workdir: Path | None = None) -> Outcome:
    """Set up, send while the faults run, wait for delivery to settle, count."""
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="bazaar-faults-"))
            )
        cluster = PgCluster()
        try:
            await cluster.start()
            stage = _stage(scenario, workdir, cluster)
            return await _run(stage, began)
        finally:
            await cluster.cleanup()


@dataclass
class Stage:
    """Every server of one run; the faults are done to them."""

    scenario: Scenario
    cluster: PgCluster
    synapse: EmbeddedSynapse
    bridge: BridgeProcess
    receiver: Receiver
    translator: FakeLibreTranslate
    public_url: str
    api_token: str
    clock: Clock = field(default_factory=Clock)


def _stage(scenario: Scenario, workdir: Path, cluster: PgCluster) -> Stage:
    """The bridge's config file, pointed at the cluster, the receiver and the translator."""
    receiver = Receiver(secrets.token_urlsafe(24))
    translator = FakeLibreTranslate()
    synapse_port = free_port()
    settings = bridge_settings(synapse_port, cluster.url, workdir)
    site = settings["sites"][0]
    site["webhook_url"] = receiver.url
    site["webhook_secret"] = receiver.secret
    settings["translation"] = {
        "provider": "libre",
        "url": translator.url,
        "timeout_seconds": TRANSLATION_TIMEOUT,
    }
    config = parse_config(settings, environ={})
    config_path = workdir / "bridge.yaml"
    config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return Stage(
        scenario=scenario,
        cluster=cluster,
        synapse=embedded_synapse(workdir, synapse_port, config),
        bridge=BridgeProcess(
            config_path, workdir / "bridge.log", f"{config.web.public_url}/health/live"
        ),
        receiver=receiver,
        translator=translator,
        public_url=config.web.public_url,
        api_token=site["api_token"],
    )


async def _run(stage: Stage, began: float) -> Outcome:
    scenario, clock, bridge = stage.scenario, stage.clock, stage.bridge
    await stage.receiver.start()
    await stage.translator.start()
    traffic = Traffic()
    try:
        progress("Starting Synapse, PostgreSQL and the bridge (its own process)")
        await stage.synapse.start()
        await bridge.start()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=200)) as session:
            homeserver = Homeserver(session, stage.synapse.address)
            buyers = Buyers(session, stage.public_url, stage.api_token)
            sellers, conversations = await _set_up(scenario, stage.synapse, homeserver, buyers)
            progress(
                f"Sending {scenario.buyer_messages} buyer messages and {scenario.seller_replies}"
                f" replies over {scenario.traffic_seconds:g} s, with faults"
            )
            clock.started = time.monotonic()
            await _together(
                bridge.watch(clock.note),
                _traffic(stage, session, buyers, sellers, conversations, traffic),
                _point_faults(stage),
                _webhook_outage(stage),
                _translation_hang(stage),
            )
            traffic_done = clock.now()
            readings, settle_error = await _settle(
                scenario, homeserver, buyers, stage.receiver, sellers, conversations
            )
            clock.note("delivery settled" if settle_error is None else "gave up waiting")
            settled_after = clock.now() - traffic_done
    except (BenchError, BridgeProcessError) as error:
        raise BenchError(f"{error}\nlast lines of the bridge's log:\n{bridge.log_tail()}") from None
    finally:
        await bridge.stop()
        await stage.synapse.stop()
        await stage.translator.close()
        await stage.receiver.stop()
    counts = count(conversations, sellers, readings)
    anomalies, figures = counts.anomalies, counts.figures
    anomalies["the bridge's own exits"] = len(bridge.own_exits)
    anomalies["webhooks with a bad signature"] = stage.receiver.bad_signatures
    figures.update(
        {
            "buyer sends repeated (no answer, refused, 5xx)": traffic.buyer_retries,
            "seller sends repeated": traffic.reply_retries,
            "webhooks answered 500": stage.receiver.refused,
            "translation requests": len(stage.translator.calls),
            "catch-up sweeps, and events they found": bridge.catch_ups(),
            "traffic seconds": round(traffic_done, 1),
            "settle seconds": round(settled_after, 1),
        }
    )
    return Outcome(
        rows=counts.rows,
        timeline=clock.timeline,
        settled=settle_error is None,
        settle_error=settle_error,
        anomalies=anomalies,
        figures=figures,
        details=counts.details,
        wall_seconds=time.monotonic() - began,
    )


async def _together(watch: Awaitable[None], *work: Awaitable[None]) -> None:
    """Run the traffic and the faults to their end with `watch` beside them; the first
    failure stops the rest."""
    try:
        async with asyncio.TaskGroup() as group:
            watching = group.create_task(watch)
            tasks = [group.create_task(part) for part in work]
            await asyncio.wait(tasks)
            watching.cancel()
    except BaseExceptionGroup as failure:
        raise failure.exceptions[0] from None


async def _set_up(
    scenario: Scenario, synapse: EmbeddedSynapse, homeserver: Homeserver, buyers: Buyers
) -> tuple[list[Seller], list[Conversation]]:
    progress(f"Setting up {scenario.sellers} sellers and {scenario.conversations} conversations")
    sellers = []
    for k in range(scenario.sellers):
        password = secrets.token_urlsafe(12)
        user_id = await synapse.register_user(f"seller{k}", password, displayname=f"Seller {k}")
        seller = Seller(f"seller-{k}", user_id, await homeserver.login(user_id, password))
        await buyers.call(
            "PUT",
            f"/sellers/{seller.seller_id}",
            {
                "name": f"Лавка {k}",
                "language": SELLER_LANGUAGE,
                "members": [{"user_id": user_id, "role": "owner"}],
            },
        )
        sellers.append(seller)
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def open_conversation(index: int) -> Conversation:
        async with gate:
            buyer_id = f"buyer-{index}"
            await buyers.call(
                "PUT", f"/buyers/{buyer_id}", {"name": f"Buyer {index}", "language": BUYER_LANGUAGE}
            )
            seller = sellers[index % len(sellers)]
            opened = await buyers.call(
                "POST",
                "/conversations",
                {
                    "seller_id": seller.seller_id,
                    "buyer_id": buyer_id,
                    "context": {"type": "product", "id": f"item-{index}", "title": f"Item {index}"},
                },
            )
            conversation = Conversation(
                index, opened["conversation_id"], opened["room_id"], index % len(sellers)
            )
            await _join(homeserver, seller.token, conversation.room_id)
            return conversation

    conversations = await asyncio.gather(
        *(open_conversation(index) for index in range(scenario.conversations))
    )
    return sellers, list(conversations)


async def _join(homeserver: Homeserver, token: str, room_id: str) -> None:
    path = f"/_matrix/client/v3/join/{quote(room_id, safe='')}"
    for _ in range(100):
        with contextlib.suppress(BenchError):
            await homeserver.call("POST", path, token, body={})
            return
        await asyncio.sleep(0.1)  # the invite may not be through yet
    raise BenchError(f"could not join {room_id}")


async def _traffic(
    stage: Stage,
    session: aiohttp.ClientSession,
    buyers: Buyers,
    sellers: Sequence[Seller],
    conversations: Sequence[Conversation],
    traffic: Traffic,
) -> None:
    scenario, clock = stage.scenario, stage.clock
    messages = shares(scenario.buyer_messages, len(conversations))
    replies = shares(scenario.seller_replies, len(conversations))
    duration = scenario.traffic_seconds
    address = stage.synapse.address
    work = []
    for conversation, own_messages, own_replies in zip(
        conversations, messages, replies, strict=True
    ):
        offset = conversation.index / len(conversations)
        seller = sellers[conversation.seller]
        work.append(
            paced(
                own_messages,
                duration,
                offset,
                clock,
                lambda n, c=conversation: buyers.send(c, n, traffic),
            )
        )
        work.append(
            paced(
                own_replies,
                duration,
                (offset + 0.5) % 1,
                clock,
                lambda n, c=conversation, s=seller: send_reply(session, address, s, c, n, traffic),
            )
        )
    await asyncio.gather(*work)
    clock.note("the last message was acknowledged")


async def _point_faults(stage: Stage) -> None:
    scenario, clock = stage.scenario, stage.clock
    plan = sorted(
        [(at, "bridge") for at in scenario.bridge_kills]
        + [(at, "synapse") for at in scenario.synapse_restarts]
        + [(at, "postgres") for at in scenario.postgres_restarts]
    )
    for at, kind in plan:
        await clock.until(at)
        began = clock.now()
        if kind == "bridge":
            pid = await stage.bridge.kill()
            clock.note(f"bridge SIGKILLed (pid {pid})")
            await stage.bridge.restart_after_kill()
            clock.note(f"bridge started again, {clock.now() - began:.1f} s after the kill")
        elif kind == "synapse":
            await stage.synapse.stop()
            clock.note("Synapse stopped")
            await stage.synapse.start()
            clock.note(f"Synapse up again, {clock.now() - began:.1f} s after the stop")
        else:
            await stage.cluster.stop(scenario.postgres_stop_mode)
            clock.note(f"PostgreSQL stopped ({scenario.postgres_stop_mode})")
            await asyncio.sleep(scenario.postgres_down_seconds)
            await stage.cluster.start()
            clock.note(f"PostgreSQL up again, {clock.now() - began:.1f} s after the stop")


async def _webhook_outage(stage: Stage) -> None:
    window, clock, receiver = stage.scenario.webhook_outage, stage.clock, stage.receiver
    if window is None:
        return
    await clock.until(window.start)
    receiver.failing = True
    clock.note("webhook receiver answers 500")
    await clock.until(window.start + window.seconds)
    receiver.failing = False
    clock.note(f"webhook receiver answers 204 again ({receiver.refused} refused)")


async def _translation_hang(stage: Stage) -> None:
    scenario, clock, translator = stage.scenario, stage.clock, stage.translator
    window = scenario.translation_hang
    if window is None:
        return
    await clock.until(window.start)
    before = len(translator.calls)
    translator.delay = scenario.translation_delay
    clock.note(f"translation provider hangs (answers after {scenario.translation_delay:g} s)")
    await clock.until(window.start + window.seconds)
    translator.delay = 0.0
    clock.note(
        f"translation provider answers at once again ({len(translator.calls) - before} calls hung)"
    )


async def _settle(
    scenario: Scenario,
    homeserver: Homeserver,
    buyers: Buyers,
    receiver: Receiver,
    sellers: Sequence[Seller],
    conversations: Sequence[Conversation],
) -> tuple[Readings, str | None]:
    """Wait until the rooms, the buyers' side and the webhooks hold everything sent, then
    read them once more a little later. Gives up at the timeout, or sooner once nothing more
    has arrived for `stall_seconds` (something is lost, not late)."""
    progress("Waiting for delivery to settle")
    began = time.monotonic()
    readings = await _read(homeserver, buyers, receiver, sellers, conversations)
    missing, moved_at = _missing(conversations, sellers, readings), began
    while missing:
        if time.monotonic() - began > scenario.settle_timeout:
            return readings, (
                f"{missing} messages or webhooks still missing {scenario.settle_timeout:g} s"
                " after the last send"
            )
        if time.monotonic() - moved_at > scenario.stall_seconds:
            return readings, (
                f"{missing} messages or webhooks still missing, and nothing more arrived"
                f" for {scenario.stall_seconds:g} s"
            )
        await asyncio.sleep(5)
        readings = await _read(homeserver, buyers, receiver, sellers, conversations)
        still = _missing(conversations, sellers, readings)
        if still < missing:
            moved_at = time.monotonic()
        missing = still
    await asyncio.sleep(GRACE)
    return await _read(homeserver, buyers, receiver, sellers, conversations), None


def _missing(
    conversations: Sequence[Conversation], sellers: Sequence[Seller], readings: Readings
) -> int:
    rows = count(conversations, sellers, readings).rows
    return sum(rows[path].lost for path in ("buyer → seller", "seller → buyer")) + sum(
        row.missing_webhooks for row in rows.values()
    )


async def _read(
    homeserver: Homeserver,
    buyers: Buyers,
    receiver: Receiver,
    sellers: Sequence[Seller],
    conversations: Sequence[Conversation],
) -> Readings:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def read(conversation: Conversation) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with gate:
            token = sellers[conversation.seller].token
            return (
                await room_timeline(homeserver, token, conversation.room_id),
                await buyers.messages(conversation),
            )

    read_all = await asyncio.gather(*(read(c) for c in conversations))
    return Readings(
        timelines={
            c.index: timeline for c, (timeline, _) in zip(conversations, read_all, strict=True)
        },
        listings={
            c.index: listing for c, (_, listing) in zip(conversations, read_all, strict=True)
        },
        webhooks=list(receiver.events),
    )


# --- the command -------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000, help="buyer messages")
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--replies", type=int, default=1_000, help="seller replies")
    parser.add_argument("--sellers", type=int, default=4)
    parser.add_argument(
        "--traffic-seconds", type=float, default=600, help="the messages are spread over this"
    )
    parser.add_argument("--bridge-kills", type=int, default=2)
    parser.add_argument("--synapse-restarts", type=int, default=2)
    parser.add_argument("--postgres-restarts", type=int, default=1)
    parser.add_argument("--postgres-down", type=float, default=5, help="seconds")
    parser.add_argument("--postgres-stop", choices=["fast", "immediate"], default="immediate")
    parser.add_argument("--webhook-outage", type=float, default=60, help="seconds of 500s")
    parser.add_argument(
        "--translation-hang", type=float, default=30, help="seconds the translator hangs"
    )
    parser.add_argument(
        "--translation-delay", type=float, default=10, help="a hung translator answers after this"
    )
    parser.add_argument("--settle-timeout", type=float, default=1200)
    parser.add_argument(
        "--stall-seconds", type=float, default=120, help="give up once nothing arrives this long"
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep Synapse's and the bridge's files and logs here"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    scenario = Scenario.spread(
        kills=args.bridge_kills,
        synapse_restarts=args.synapse_restarts,
        postgres_restarts=args.postgres_restarts,
        webhook_outage=args.webhook_outage,
        translation_hang=args.translation_hang,
        buyer_messages=args.messages,
        conversations=args.conversations,
        seller_replies=args.replies,
        sellers=args.sellers,
        traffic_seconds=args.traffic_seconds,
        postgres_stop_mode=args.postgres_stop,
        postgres_down_seconds=args.postgres_down,
        translation_delay=args.translation_delay,
        settle_timeout=args.settle_timeout,
        stall_seconds=args.stall_seconds,
    )
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        outcome = asyncio.run(run_scenario(scenario, args.workdir))
    except BenchError as error:
        print(f"fault suite failed: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print(outcome.report())
    return 1 if outcome.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
