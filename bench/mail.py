"""Mail benchmark: the bridge's outbox into a local SMTP relay versus aiosmtplib sending the
same mails straight, and what a draining outbox does to a buyer message's way to the seller.

Two figures, each next to a baseline measured in the same run and printed as a ratio:

1. **Throughput**: a bare aiosmtpd sink in its own process (loopback, no TLS, no AUTH) is the
   bridge's relay (`email.smtp`, `security: none`). N mails are rendered by the bridge's own
   rules and composer (`Mailing.buyer_wrote`: a seller's copy of a buyer message, text and
   HTML), then
   - **outbox**: each stored in its own write transaction with `store_events`, as a buyer
     message's transaction stores its mail, and the bridge's sender woken after each commit
     (as the announcer wakes it); the bridge's `MailSender` drains them into the sink;
   - **straight**: aiosmtplib `send_message` of the same N messages, one after the other,
     over one connection to the same sink.

   The clock starts just before the first mail is queued (sent) and stops when the sink has
   received the last one: the sink counts, not the bridge's database. Rounds alternate,
   straight first, after an unmeasured warm-up of each.
2. **Latency under a drain**: an embedded Synapse with the bridge's registration, a seller
   (one local Matrix user) whose client runs a /sync loop, one buyer conversation made
   through the marketplace API. The buyer's messages are posted one at a time
   (`POST /conversations/{id}/messages`), each timed until the seller's /sync has it:
   unloaded, then while N mails are queued and drained (again as often as it takes to have
   `--probes` messages wholly inside a drain).

Every clock is `time.perf_counter` (CLOCK_MONOTONIC on Linux, so the sink's process shares
it). It prints figures and judges nothing.

    python bench/mail.py [--mails N] [--rounds R] [--probes P]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import logging
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import message_from_string
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
from sqlalchemy import event
from stage import (
    HTTP_TIMEOUT,
    SELLER_ID,
    SITE,
    BenchError,
    Homeserver,
    Marketplace,
    SyncDetector,
    bridge_settings,
    cpu_seconds,
    describe_database,
    embedded_synapse,
    join_all,
    percentile,
    progress,
    quiet_logging,
    resolve_database,
    run_bench,
)

from bridge.app import Bridge, sites_of
from bridge.config import Config, parse_config
from bridge.core.events import MailEvent
from bridge.core.ids import BuyerID, ConversationID, MessageID, RoomID, SellerID, SiteID
from bridge.core.mailing import Mailing
from bridge.core.models import (
    Buyer,
    Context,
    ContextType,
    Conversation,
    ConversationState,
    Message,
    MessageStatus,
    Seller,
    SenderKind,
)
from bridge.demo.synapse import free_port
from bridge.notify.compose import MailComposer
from bridge.notify.sender import BATCH
from bridge.store.records import store_events

logger = logging.getLogger("bench.mail")

TEXT = "Hello! Is the kettle still available, and could you ship it to Lisbon by Friday?"
FROM = "chat@shop.example"
SELLER_EMAIL = "owner@shop.example"
BUYER_ID = "buyer-0"
WARMUP_MAILS = 50
POLL = 0.02
START_TIMEOUT = 30.0

# The relay: aiosmtpd's SMTP protocol with a handler that keeps nothing, only tells the
# benchmark (a line on stdout) when and how big each mail arrived.
SINK_SERVER = """
import asyncio, sys, time
from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_DATA(self, server, session, envelope):
        size = len(envelope.original_content or b"")
        sys.stdout.write(f"m {time.perf_counter():.6f} {size}\\n")
        sys.stdout.flush()
        return "250 Message accepted"


class Counted(SMTP):
    def connection_made(self, transport):
        super().connection_made(transport)
        sys.stdout.write(f"c {time.perf_counter():.6f}\\n")
        sys.stdout.flush()


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Counted(Sink(), hostname="sink.localhost"), "127.0.0.1", port
    )
    print("ready", flush=True)
    await server.serve_forever()


asyncio.run(main(int(sys.argv[1])))
"""


@dataclass(frozen=True)
class Options:
    mails: int
    rounds: int
    probes: int
    timeout: float


class SmtpSink:
    """The aiosmtpd sink's process, and what it has received so far."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port = port
        self._log_path = log_path
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self.received = 0
        self.connections = 0
        self.bytes = 0
        self.last_at = 0.0
        self._changed = asyncio.Condition()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        with self._log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                SINK_SERVER,
                str(self.port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
            )
        assert self._process.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = await self._process.stdout.readline()
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            raise BenchError(f"the SMTP sink did not start: {self._log_tail()}")
        self._reader = asyncio.create_task(self._read(self._process.stdout), name="smtp-sink")

    async def stop(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self._log_path.read_text(errors="replace")[-2000:]
        return "(no log)"

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        while line := await stdout.readline():
            kind, at, *rest = line.split()
            if kind == b"c":
                self.connections += 1
                continue
            (size,) = rest
            self.received += 1
            self.bytes += int(size)
            self.last_at = float(at)
            async with self._changed:
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, total: int, timeout: float) -> float:  # noqa: ASYNC109
        """Wait until the sink has received `total` mails in all; when the last one came."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(
                    lambda: self.received >= total or self._reader is None or self._reader.done()
                )
        except TimeoutError:
            raise BenchError(
                f"the sink had {self.received} of {total} mails after {timeout:g} s"
            ) from None
        if self.received < total:
            raise BenchError(f"the SMTP sink stopped: {self._log_tail()}")
        return self.last_at


@dataclass(frozen=True)
class RunResult:
    path: str
    round: int
    mails: int
    seconds: float
    queued_seconds: float | None
    """outbox: from the first to the last mail committed to the outbox."""
    connections: int
    """SMTP connections the sink accepted during the run."""
    cpu_here_ms: float
    cpu_sink_ms: float | None

    @property
    def rate(self) -> float:
        return self.mails / self.seconds


class Cpu:
    """CPU per mail of this process (the bridge and the clients) and of the sink."""

    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink
        self._here = time.process_time()
        self._sink_at = cpu_seconds(sink.pid)

    def per_mail(self, count: int) -> tuple[float, float | None]:
        here = (time.process_time() - self._here) * 1000 / count
        sink = cpu_seconds(self._sink.pid)
        if sink is None or self._sink_at is None:
            return here, None
        return here, (sink - self._sink_at) * 1000 / count


@dataclass
class Stage:
    options: Options
    config: Config
    bridge: Bridge
    sink: SmtpSink
    mailing: Mailing
    seller: Seller
    buyer: Buyer
    conversation: Conversation
    marketplace: Marketplace | None = None
    detector: SyncDetector | None = None

    def render(self, tag: str, count: int) -> list[MailEvent]:
        """`count` mails as the bridge's rules make them: a copy of a buyer message each."""
        now = datetime.now(UTC)
        mails: list[MailEvent] = []
        for i in range(count):
            message = Message(
                MessageID(f"{tag}-{i}"),
                self.conversation.conversation_id,
                SenderKind.BUYER,
                self.buyer.name,
                f"{TEXT} ({tag} #{i})",
                "en",
                MessageStatus.PENDING,
                now,
            )
            found = self.mailing.buyer_wrote(self.seller, self.buyer, self.conversation, message)
            if len(found) != 1:
                raise BenchError(f"the bridge's rules made {len(found)} mails for a message")
            mails.append(found[0])
        return mails


async def queue(bridge: Bridge, mails: Sequence[MailEvent]) -> float:
    """Store each mail in its own transaction, as the change it rides with does, and wake
    the sender after each commit; returns when the last one was committed."""
    sender = bridge.mail_sender
    assert sender is not None
    writes = bridge.repository._writes
    for mail in mails:
        async with writes.begin() as session:
            await store_events(session, [mail])
        sender.wake()
    return time.perf_counter()


async def outbox_drained(bridge: Bridge, timeout: float) -> None:  # noqa: ASYNC109
    """Until the sender has marked every mail sent (untimed: after the clock stopped)."""
    for _ in range(max(1, round(timeout / POLL))):
        if await bridge.repository.next_mail_attempt() is None:
            return
        await asyncio.sleep(POLL)
    raise BenchError(f"the outbox still had unsent mail after {timeout:g} s")


async def outbox_run(stage: Stage, round_number: int, mails: Sequence[MailEvent]) -> RunResult:
    sink = stage.sink
    target = sink.received + len(mails)
    connections = sink.connections
    cpu = Cpu(sink)
    started = time.perf_counter()
    queued = await queue(stage.bridge, mails)
    last = await sink.wait_for(target, stage.options.timeout)
    here, sink_ms = cpu.per_mail(len(mails))
    await outbox_drained(stage.bridge, stage.options.timeout)
    return RunResult(
        "outbox",
        round_number,
        len(mails),
        last - started,
        queued - started,
        sink.connections - connections,
        here,
        sink_ms,
    )


def parsed(mails: Sequence[MailEvent]) -> list[EmailMessage]:
    messages = []
    for mail in mails:
        message = message_from_string(mail.message, policy=default_policy)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


async def straight_run(stage: Stage, round_number: int, mails: Sequence[MailEvent]) -> RunResult:
    messages = parsed(mails)  # before the clock: the outbox stores rendered text too
    sink = stage.sink
    target = sink.received + len(mails)
    connections = sink.connections
    cpu = Cpu(sink)
    started = time.perf_counter()
    client = aiosmtplib.SMTP(
        hostname="127.0.0.1", port=sink.port, start_tls=False, timeout=stage.options.timeout
    )
    await client.connect()
    try:
        for mail, message in zip(mails, messages, strict=True):
            await client.send_message(message, sender=mail.sender, recipients=[mail.recipient])
    finally:
        with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
            await client.quit()
    last = await sink.wait_for(target, stage.options.timeout)
    here, sink_ms = cpu.per_mail(len(mails))
    return RunResult(
        "straight",
        round_number,
        len(mails),
        last - started,
        None,
        sink.connections - connections,
        here,
        sink_ms,
    )


@dataclass(frozen=True)
class SqlCount:
    statements: dict[str, int]
    transactions: int


@contextlib.contextmanager
def counting_sql(bridge: Bridge) -> Any:
    """Count the statements the bridge's engines run (by first word) and write
    transactions begun, while the block runs (the warm-up only: it costs a little)."""
    counts: dict[str, int] = {}
    begins = [0]
    engines = {bridge._engine, bridge._read_engine} - {None}

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        counts[verb] = counts.get(verb, 0) + 1

    def on_begin(_conn: Any) -> None:
        begins[0] += 1

    for engine in engines:
        assert engine is not None
        event.listen(engine.sync_engine, "before_cursor_execute", on_execute)
    assert bridge._engine is not None
    event.listen(bridge._engine.sync_engine, "begin", on_begin)
    result: list[SqlCount] = []
    try:
        yield result
    finally:
        for engine in engines:
            assert engine is not None
            event.remove(engine.sync_engine, "before_cursor_execute", on_execute)
        event.remove(bridge._engine.sync_engine, "begin", on_begin)
        result.append(SqlCount(counts, begins[0]))


async def throughput(stage: Stage) -> tuple[list[RunResult], SqlCount]:
    options = stage.options
    progress("Warming up both paths")
    warmup = stage.render(f"warm-{uuid.uuid4().hex[:8]}", min(WARMUP_MAILS, options.mails))
    await straight_run(stage, 0, warmup)
    with counting_sql(stage.bridge) as counted:
        await outbox_run(stage, 0, warmup)
    results: list[RunResult] = []
    for round_number in range(1, options.rounds + 1):
        # The same mails both ways (new ones each round: the outbox queues a key once).
        mails = stage.render(f"r{round_number}-{uuid.uuid4().hex[:8]}", options.mails)
        progress(f"Round {round_number}/{options.rounds}: straight")
        results.append(await straight_run(stage, round_number, mails))
        progress(f"Round {round_number}/{options.rounds}: outbox")
        results.append(await outbox_run(stage, round_number, mails))
    return results, counted[0]


# The latency part


@dataclass(frozen=True)
class Probe:
    sent_at: float
    arrived_at: float

    @property
    def ms(self) -> float:
        return (self.arrived_at - self.sent_at) * 1000


async def one_message(stage: Stage, tag: str) -> Probe:
    assert stage.marketplace is not None and stage.detector is not None
    sent_at = time.perf_counter()
    answer = await stage.marketplace.call(
        "POST",
        f"/conversations/{stage.conversation.conversation_id}/messages",
        {"text": f"{TEXT} ({tag})", "client_id": tag},
    )
    arrived = await stage.detector.wait_for([str(answer["message_id"])], stage.options.timeout)
    return Probe(sent_at, arrived)


@dataclass(frozen=True)
class Drain:
    mails: int
    started: float
    queued: float
    ended: float
    connections: int

    @property
    def rate(self) -> float:
        return self.mails / (self.ended - self.started)


async def under_drain(stage: Stage) -> tuple[list[Probe], list[Drain], int]:
    """Probes one at a time while N mails are queued and drained, drain after drain, until
    `--probes` of them were sent after a drain began and arrived before its last mail did.
    Also returns how many probes fell outside (across a drain's end)."""
    options = stage.options
    inside: list[Probe] = []
    drains: list[Drain] = []
    outside = 0
    while len(inside) < options.probes:
        if len(drains) >= 10 * options.probes:
            raise BenchError("the drains end before a probe gets through")
        mails = stage.render(f"drain{len(drains)}-{uuid.uuid4().hex[:8]}", options.mails)
        target = stage.sink.received + len(mails)
        connections = stage.sink.connections
        started = time.perf_counter()
        queuing = asyncio.create_task(queue(stage.bridge, mails))
        arrived = asyncio.create_task(stage.sink.wait_for(target, options.timeout))
        probes: list[Probe] = []
        try:
            while not arrived.done() and len(inside) + len(probes) < options.probes:
                probes.append(await one_message(stage, f"drain-{uuid.uuid4().hex[:12]}"))
            queued = await queuing
            ended = await arrived
        finally:
            for task in (queuing, arrived):
                task.cancel()
        connected = stage.sink.connections - connections
        drains.append(Drain(len(mails), started, queued, ended, connected))
        for probe in probes:
            if probe.arrived_at <= ended:
                inside.append(probe)
            else:
                outside += 1
        await outbox_drained(stage.bridge, options.timeout)
    return inside, drains, outside


async def latency(stage: Stage) -> tuple[list[Probe], list[Probe], list[Drain], int]:
    options = stage.options
    progress(f"Unloaded: {options.probes} buyer messages one at a time")
    for i in range(3):
        await one_message(stage, f"warm-{i}-{uuid.uuid4().hex[:8]}")
    unloaded = [
        await one_message(stage, f"calm-{i}-{uuid.uuid4().hex[:8]}") for i in range(options.probes)
    ]
    progress(f"During drains of {options.mails} mails: {options.probes} buyer messages")
    loaded, drains, outside = await under_drain(stage)
    return unloaded, loaded, drains, outside


# Set-up


def mail_config(synapse_port: int, database: str, workdir: Path, sink_port: int) -> Config:
    settings = bridge_settings(synapse_port, database, workdir)
    settings["email"] = {
        "smtp": {"host": "127.0.0.1", "port": sink_port, "security": "none"},
        "from": FROM,
    }
    return parse_config(settings, environ={})


async def run(options: Options) -> None:
    clock = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC" not in clock:
        raise BenchError(f"the sink's clock can't be compared with this one ({clock}): Linux only")
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-") as temp:
        workdir = Path(temp)
        sink = SmtpSink(free_port(), workdir / "sink.log")
        synapse_port = free_port()
        config = mail_config(synapse_port, resolve_database("sqlite", workdir), workdir, sink.port)
        synapse = embedded_synapse(workdir, synapse_port, config)
        progress("Starting the SMTP sink, Synapse and the bridge")
        await sink.start()
        try:
            async with synapse:
                bridge = Bridge(config)
                await bridge.start()
                try:
                    await bench(options, config, synapse, bridge, sink)
                finally:
                    await bridge.stop()
        finally:
            await sink.stop()


async def bench(
    options: Options, config: Config, synapse: Any, bridge: Bridge, sink: SmtpSink
) -> None:
    if bridge.mail_sender is None:
        raise BenchError("the bridge started without its mail sender")
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as shop_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as matrix_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as sync_session,
    ):
        marketplace = Marketplace(shop_session, config.web.public_url, config.sites[0].api_token)
        homeserver = Homeserver(matrix_session, synapse.address)
        version = await homeserver.version()

        progress("Setting up the seller, the buyer and their room")
        password = secrets.token_urlsafe(16)
        member = await synapse.register_user(
            f"seller-{uuid.uuid4().hex[:8]}", password, displayname="Bench Seller"
        )
        member_token = await homeserver.login(member, password)
        # No e-mail address at the marketplace: the probes queue no mail of their own.
        await marketplace.call(
            "PUT",
            f"/sellers/{SELLER_ID}",
            {"name": "Bench Seller", "members": [{"user_id": member, "role": "owner"}]},
        )
        await marketplace.call("PUT", f"/buyers/{BUYER_ID}", {"name": "Buyer 0"})
        context = {
            "type": "product",
            "id": "kettle",
            "title": "Electric kettle 1.7 l",
            "url": "https://shop.example/p/kettle",
            "price": "24.90",
            "currency": "EUR",
        }
        answer = await marketplace.call(
            "POST",
            "/conversations",
            {"seller_id": SELLER_ID, "buyer_id": BUYER_ID, "context": context},
        )
        room_id = answer.get("room_id")
        if not isinstance(room_id, str):
            raise BenchError("the conversation came without a room")
        await join_all(homeserver, member_token, [room_id])

        site = SiteID(SITE)
        # The mails' seller: the same one with an address and copies on, as the rules need.
        seller = Seller(
            site, SellerID(SELLER_ID), "Bench Seller", "en", SELLER_EMAIL, email_copies=True
        )
        buyer = Buyer(site, BuyerID(BUYER_ID), "Buyer 0")
        conversation = Conversation(
            site,
            ConversationID(str(answer["conversation_id"])),
            SellerID(SELLER_ID),
            BuyerID(BUYER_ID),
            Context(
                ContextType.PRODUCT,
                "kettle",
                context["title"],
                url=context["url"],
                price=context["price"],
                currency=context["currency"],
            ),
            ConversationState.ACTIVE,
            RoomID(room_id),
            datetime.now(UTC),
        )
        email = config.email
        assert email is not None
        mailing = Mailing(MailComposer(email.from_address, config.web.public_url), sites_of(config))
        stage = Stage(options, config, bridge, sink, mailing, seller, buyer, conversation)

        results, sql = await throughput(stage)

        unloaded: list[Probe] = []
        loaded: list[Probe] = []
        drains: list[Drain] = []
        outside = 0
        if options.probes:
            detector = SyncDetector(Homeserver(sync_session, synapse.address), member_token)
            detector.start()
            stage.marketplace = marketplace
            stage.detector = detector
            try:
                unloaded, loaded, drains, outside = await latency(stage)
            finally:
                await detector.stop()
        mail_size = stage.render("size", 1)[0].message.encode()

    report(
        options,
        version,
        describe_database(config.database),
        len(mail_size),
        results,
        sql,
        unloaded,
        loaded,
        drains,
        outside,
    )


# Output


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _spread(probes: Sequence[Probe]) -> str:
    values = [p.ms for p in probes]
    return (
        f"median {statistics.median(values):>6.0f} ms, p95 {percentile(values, 95):>6.0f} ms"
        f"  ({len(values)} messages)"
    )


def report(
    options: Options,
    version: str,
    database: str,
    mail_bytes: int,
    results: Sequence[RunResult],
    sql: SqlCount,
    unloaded: Sequence[Probe],
    loaded: Sequence[Probe],
    drains: Sequence[Drain],
    outside: int,
) -> None:
    runs = {path: [r for r in results if r.path == path] for path in ("straight", "outbox")}
    ratios = [
        outbox.rate / straight.rate
        for straight, outbox in zip(runs["straight"], runs["outbox"], strict=True)
    ]
    warm = WARMUP_MAILS if options.mails >= WARMUP_MAILS else options.mails

    print()
    print("Bazaar Bridge mail benchmark")
    print(
        f"  relay         aiosmtpd {importlib.metadata.version('aiosmtpd')} sink, own process,"
        " loopback, no TLS or AUTH"
    )
    print(f"  homeserver    {version} (embedded, loopback)")
    print(f"  database      {database}")
    print(
        f"  mails         N = {options.mails} per run, {mail_bytes / 1024:.1f} KiB each"
        " (a seller's copy of a buyer message, text + HTML)"
    )
    print(f"  order         {options.rounds} × (straight, outbox), after a warm-up of {warm} each")
    print(
        f"  straight      aiosmtplib {importlib.metadata.version('aiosmtplib')} send_message,"
        " one connection for all N"
    )
    print(
        "  outbox        store_events, a transaction per mail; MailSender, a connection"
        f" per ≤ {BATCH} due"
    )
    print()
    print("                                          SMTP    CPU ms per mail")
    print("  round  path        mail/s    secs  queued  conns    here    sink")
    for r in results:
        queued = "" if r.queued_seconds is None else f"{r.queued_seconds:.2f}"
        print(
            f"  {r.round:>5}  {r.path:<8} {r.rate:>9.1f} {r.seconds:>7.2f} {queued:>7}"
            f" {r.connections:>6} {r.cpu_here_ms:>7.2f} {_cpu(r.cpu_sink_ms):>7}"
        )
    print()
    print("  ratio outbox/straight by round  " + "  ".join(f"{ratio:.2f}" for ratio in ratios))
    print(f"  median ratio outbox/straight    {statistics.median(ratios):.2f}")
    outbox_rate = statistics.median(r.rate for r in runs["outbox"])
    straight_rate = statistics.median(r.rate for r in runs["straight"])
    print(
        f"  median mail/s                   outbox {outbox_rate:.1f}, straight {straight_rate:.1f}"
    )
    per_mail = ", ".join(
        f"{verb} {count / warm:.2f}"
        for verb, count in sorted(sql.statements.items())
        if verb != "BEGIN"
    )
    reads = sql.statements.get("BEGIN", 0) - sql.transactions
    print(f"  SQL per outbox mail (warm-up)   {per_mail}")
    print(
        f"    transactions per mail         {sql.transactions / warm:.2f} writes,"
        f" {reads / warm:.2f} reads"
    )
    if not unloaded:
        return
    print()
    print("  buyer message → seller's /sync, one at a time (marketplace API, client clock):")
    print(f"    unloaded            {_spread(unloaded)}")
    print(f"    during the drain    {_spread(loaded)}")
    calm = [p.ms for p in unloaded]
    busy = [p.ms for p in loaded]
    print(
        f"  ratio drain/unloaded  median {statistics.median(busy) / statistics.median(calm):.2f},"
        f" p95 {percentile(busy, 95) / percentile(calm, 95):.2f}"
    )
    rates = ", ".join(f"{d.rate:.0f}" for d in drains)
    queued = ", ".join(f"{d.queued - d.started:.2f}" for d in drains)
    connected = ", ".join(str(d.connections) for d in drains)
    print(
        f"  drains                {len(drains)} × {options.mails} mails; mail/s {rates};"
        f" queued in {queued} s; SMTP connections {connected}"
    )
    if outside:
        print(f"  left out              {outside} probes that arrived after their drain ended")


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="Mail from the bridge's outbox against aiosmtplib straight into the same "
        "relay, and a buyer message's latency while the outbox drains."
    )
    parser.add_argument(
        "--mails", "-n", type=int, default=1000, help="mails per run and per drain (default 1000)"
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="(straight, outbox) pairs to run (default 3)"
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=20,
        help="buyer messages, one at a time, unloaded and during drains (default 20; 0: skip)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=120,
        help="seconds one run's mails (or one message) may take (default 120)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    if min(args.mails, args.rounds) < 1 or args.probes < 0:
        parser.error("--mails and --rounds must be at least 1, --probes at least 0")
    options = Options(
        mails=args.mails, rounds=args.rounds, probes=args.probes, timeout=args.timeout
    )
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    return run_bench("mail", run(options))


if __name__ == "__main__":
    sys.exit(main())
