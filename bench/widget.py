"""Widget benchmark: the buyer widget's size, idle streams per 100 MB, seller → buyer latency.

Three figures, each next to a baseline measured in the same run and printed as a ratio:

1. **Size**: raw and `gzip -9` bytes of `bridge/widget/static/widget.js` on disk, of the
   lightly minified copy the bridge serves (`bridge/widget/minify.py`), and the bytes the
   bridge actually puts on the wire when a browser asks with `Accept-Encoding: gzip`; the
   goal (≤ 25,000 bytes gzipped, issue 11) is for those served bytes.
2. **Idle connections**: the bridge runs as its own process (`python -m bridge run -c …`,
   SQLite in the temp dir unless `--database`). N idle `GET /widget/v1/stream` WebSockets,
   N/4 buyers × 4 tabs, are opened and held; its VmRSS (from /proc) before, with them open,
   after holding them, and after closing them gives MB per 1,000 connections and connections
   per 100 MB. Baseline: the same N connections to a bare aiohttp WebSocket echo server
   (same heartbeat and frame limit) in its own process, the floor aiohttp itself costs.
3. **Latency**: an embedded Synapse with the bridge's registration; a seller member logged
   in with matrix-nio sends M messages one at a time; for each, milliseconds from just before
   `room_send` to the matching `message.created` frame on the buyer's open stream
   (Synapse → appservice transaction → bridge → store → stream). Baseline: a second seller
   member syncing the same room, milliseconds from the same send to the event in its /sync
   (Synapse → /sync). Same send, same clock (this process's `perf_counter`).

It prints figures and judges nothing. MB are 2^20 bytes (/proc's kB are KiB).

    python bench/widget.py [--connections N] [--messages M] [--database sqlite|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import logging
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import nio
import yaml
from stage import (
    HTTP_TIMEOUT,
    SELLER_ID,
    SITE,
    BenchError,
    Homeserver,
    Marketplace,
    StreamWatcher,
    SyncDetector,
    bridge_settings,
    cpu_seconds,
    database_error,
    describe_database,
    embedded_synapse,
    join_all,
    percentile,
    progress,
    quiet_logging,
    resolve_database,
    run_bench,
    synapse_pid,
)

from bridge.config import Config, parse_config
from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer
from bridge.demo.synapse import EmbeddedSynapse, free_port
from bridge.widget.minify import minify_script
from bridge.widget.tokens import issue_buyer_token

logger = logging.getLogger("bench.widget")

REPO = Path(__file__).resolve().parent.parent
WIDGET_JS = REPO / "bridge" / "widget" / "static" / "widget.js"
GOAL_GZIP_BYTES = 25_000
TABS_PER_BUYER = 4
TOKEN_TTL = 3600
OPEN_PARALLEL = 64
WARMUP_CONNECTIONS = 16
SETTLE_SECONDS = 1.0
START_TIMEOUT = 60.0
STOP_GRACE = 15.0
POLL = 0.1
# The bridge's stream: `web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)`.
HEARTBEAT_SECONDS = 30.0
MAX_MSG_SIZE = 4096
WS_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=30, sock_connect=30)
PING = '{"type":"ping"}'
REPLY = "Yes, it is in stock and ships to Lisbon by Friday."
TAG = re.compile(r"\[(wb-[0-9a-f]+-\d+)\]")
LOG_TAIL_LINES = 30

# The baseline for idle connections: nothing but aiohttp's own WebSocket handling, set up
# like the bridge's stream (AppRunner without access log, same heartbeat and frame limit).
ECHO_SERVER = f"""
import asyncio
import sys

from aiohttp import WSMsgType, web


async def echo(request):
    socket = web.WebSocketResponse(heartbeat={HEARTBEAT_SECONDS}, max_msg_size={MAX_MSG_SIZE})
    await socket.prepare(request)
    async for message in socket:
        if message.type == WSMsgType.TEXT:
            await socket.send_str(message.data)
    return socket


async def main(port):
    app = web.Application()
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


asyncio.run(main(int(sys.argv[1])))
"""


@dataclass(frozen=True)
class Options:
    connections: int
    messages: int
    database: str
    hold: float
    warmup: int
    gap: float
    timeout: float
    py_spy: Path | None


# --- child processes -------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    """VmRSS of a process, in KiB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS in /proc/{pid}/status")


class Child:
    """A process this benchmark started, with its output in a log file; stopped on exit."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self._argv = list(argv)
        self.log_path = log_path
        self._process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise BenchError(f"{self.name} is not running")
        return self._process.pid

    async def spawn(self) -> asyncio.subprocess.Process:
        """Start the process; `start` also waits until it serves."""
        # Keep BAZAAR_* overrides from the caller's shell out of the bridge's config.
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv,
                cwd=REPO,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        logger.info("Started %s (pid %d)", self.name, self._process.pid)
        return self._process

    async def start(self, ready_url: str) -> None:
        """Start the process and wait until `ready_url` answers over HTTP (any status)."""
        process = await self.spawn()
        try:
            async with (
                asyncio.timeout(START_TIMEOUT),
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            ):
                while process.returncode is None:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.get(ready_url):
                            return
                    await asyncio.sleep(POLL)
            raise BenchError(
                f"{self.name} exited with code {process.returncode} at start-up; "
                f"last lines of its log:\n{self.log_tail()}"
            )
        except TimeoutError:
            raise BenchError(
                f"{self.name} did not answer within {START_TIMEOUT:g} s; "
                f"last lines of its log:\n{self.log_tail()}"
            ) from None

    def check_running(self) -> None:
        if self._process is None or self._process.returncode is not None:
            code = None if self._process is None else self._process.returncode
            raise BenchError(
                f"{self.name} is gone (exit code {code}); last lines of its log:\n{self.log_tail()}"
            )

    def log_tail(self) -> str:
        if not self.log_path.exists():
            return "(no output)"
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-LOG_TAIL_LINES:])

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            await asyncio.wait_for(process.wait(), STOP_GRACE)
        except TimeoutError:
            logger.warning("%s (pid %d) ignored %s; killing it", self.name, process.pid, sig.name)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        logger.info("Stopped %s (pid %d, exit code %s)", self.name, process.pid, process.returncode)


@contextlib.asynccontextmanager
async def running(child: Child, ready_url: str) -> AsyncIterator[Child]:
    try:
        await child.start(ready_url)
        yield child
    finally:
        await child.stop()


def raise_fd_limit(connections: int) -> None:
    """Room for N client sockets here and N server sockets in the child (which inherits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            raise BenchError(
                f"{connections} connections need about {wanted} file descriptors; "
                f"the hard limit is {hard}"
            )
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# --- 1. size ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SizeResult:
    raw: int
    gzipped: int
    minified: int
    minified_gzipped: int
    served: int
    served_encoding: str


async def measure_size(session: aiohttp.ClientSession, public_url: str) -> SizeResult:
    raw = WIDGET_JS.read_bytes()
    gzipped = gzip.compress(raw, compresslevel=9, mtime=0)
    minified = minify_script(raw.decode()).encode()
    async with session.get(
        f"{public_url}/widget/widget.js",
        headers={"Accept-Encoding": "gzip, deflate, br"},
        auto_decompress=False,
    ) as response:
        if response.status != 200:
            raise BenchError(f"GET /widget/widget.js: HTTP {response.status}")
        wire = await response.read()
        encoding = response.headers.get("Content-Encoding", "none")
    return SizeResult(
        len(raw),
        len(gzipped),
        len(minified),
        len(gzip.compress(minified, compresslevel=9, mtime=0)),
        len(wire),
        encoding,
    )


# --- 2. idle connections ---------------------------------------------------------------


@dataclass(frozen=True)
class IdleResult:
    name: str
    connections: int
    before_kib: int
    open_kib: int
    held_kib: int
    closed_kib: int
    answered: int

    @property
    def mib_per_thousand(self) -> float:
        return (self.held_kib - self.before_kib) / 1024 / self.connections * 1000

    @property
    def per_100_mib(self) -> float:
        grown = self.held_kib - self.before_kib
        return self.connections * 100 * 1024 / grown if grown > 0 else float("inf")


async def open_sockets(
    session: aiohttp.ClientSession, urls: Sequence[str]
) -> list[aiohttp.ClientWebSocketResponse]:
    gate = asyncio.Semaphore(OPEN_PARALLEL)

    async def one(url: str) -> aiohttp.ClientWebSocketResponse:
        async with gate:
            try:
                return await session.ws_connect(url, autoping=True, heartbeat=None)
            except aiohttp.WSServerHandshakeError as error:
                raise BenchError(f"WebSocket upgrade refused: HTTP {error.status}") from None

    return list(await asyncio.gather(*(one(url) for url in urls)))


async def ping_all(sockets: Sequence[aiohttp.ClientWebSocketResponse], timeout: float) -> int:  # noqa: ASYNC109
    """How many sockets answer a ping frame (the bridge's pong, or the echo) in time."""
    gate = asyncio.Semaphore(OPEN_PARALLEL)

    async def one(socket: aiohttp.ClientWebSocketResponse) -> bool:
        async with gate:
            try:
                await socket.send_str(PING)
                async with asyncio.timeout(timeout):
                    while True:
                        message = await socket.receive()
                        if message.type == aiohttp.WSMsgType.TEXT:
                            return True
                        if message.type in (
                            aiohttp.WSMsgType.CLOSE,
                            aiohttp.WSMsgType.CLOSED,
                            aiohttp.WSMsgType.ERROR,
                        ):
                            return False
            except (TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
                return False

    return sum(await asyncio.gather(*(one(socket) for socket in sockets)))


async def close_all(sockets: Sequence[aiohttp.ClientWebSocketResponse]) -> None:
    gate = asyncio.Semaphore(OPEN_PARALLEL * 4)

    async def one(socket: aiohttp.ClientWebSocketResponse) -> None:
        async with gate:
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, TimeoutError):
                await socket.close()

    await asyncio.gather(*(one(socket) for socket in sockets))


async def hold_idle(
    name: str, child: Child, urls: Sequence[str], warmup_urls: Sequence[str], options: Options
) -> IdleResult:
    """Open every URL as an idle WebSocket, hold them, and read the server's RSS around it."""
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=WS_TIMEOUT) as session:
        # Code paths, caches and pools warm before the first reading.
        warm = await open_sockets(session, warmup_urls)
        await ping_all(warm, options.timeout)
        await close_all(warm)
        await asyncio.sleep(SETTLE_SECONDS)
        child.check_running()
        before = rss_kib(child.pid)
        sockets = await open_sockets(session, urls)
        try:
            await asyncio.sleep(SETTLE_SECONDS)
            opened = rss_kib(child.pid)
            await asyncio.sleep(options.hold)
            child.check_running()
            held = rss_kib(child.pid)
            answered = await ping_all(sockets, options.timeout)
        finally:
            await close_all(sockets)
        await asyncio.sleep(SETTLE_SECONDS)
        closed = rss_kib(child.pid)
    return IdleResult(name, len(urls), before, opened, held, closed, answered)


async def idle_connections(
    options: Options, bridge: Child, config: Config, workdir: Path
) -> tuple[IdleResult, IdleResult, int]:
    n = options.connections
    buyers = max(1, n // TABS_PER_BUYER)
    secret = config.sites[0].widget_secret
    tokens = [
        issue_buyer_token(
            secret, Buyer(SiteID(SITE), BuyerID(f"idle-{k}"), f"Idle Buyer {k}", "en"), TOKEN_TTL
        )[0]
        for k in range(buyers)
    ]
    base = config.web.public_url
    stream_urls = [f"{base}/widget/v1/stream?access_token={tokens[i % buyers]}" for i in range(n)]

    # Every buyer signs in once first (the widget loads its conversations before it opens
    # the stream), so the readings count connections, not buyer records.
    gate = asyncio.Semaphore(16)

    async def sign_in(session: aiohttp.ClientSession, token: str) -> None:
        async with (
            gate,
            session.get(
                f"{base}/widget/v1/conversations", headers={"Authorization": f"Bearer {token}"}
            ) as response,
        ):
            if response.status != 200:
                raise BenchError(f"GET /widget/v1/conversations: HTTP {response.status}")

    async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
        await asyncio.gather(*(sign_in(session, token) for token in tokens))

    port = free_port()
    echo_url = f"http://127.0.0.1:{port}/echo"
    echo_child = Child(
        "aiohttp echo server",
        [sys.executable, "-c", ECHO_SERVER, str(port)],
        workdir / "echo.log",
    )
    progress(f"Idle connections: {n} to a bare aiohttp echo server (baseline)")
    async with running(echo_child, echo_url):
        floor = await hold_idle(
            "aiohttp echo (floor)",
            echo_child,
            [echo_url] * n,
            [echo_url] * WARMUP_CONNECTIONS,
            options,
        )
    progress(f"Idle connections: {n} buyer streams to the bridge ({buyers} buyers)")
    streams = await hold_idle(
        "bridge /widget/v1/stream",
        bridge,
        stream_urls,
        stream_urls[-WARMUP_CONNECTIONS:],
        options,
    )
    return floor, streams, buyers


# --- 3. latency ------------------------------------------------------------------------


def _tag(text: object) -> str | None:
    found = TAG.search(text) if isinstance(text, str) else None
    return found.group(1) if found else None


class SellerReplies(StreamWatcher):
    """The buyer's stream: notes when each tagged seller message arrives as a frame."""

    def on_frame(self, frame: dict[str, Any], arrived: float) -> bool:
        body = frame.get("message")
        if frame.get("type") != "message.created" or not isinstance(body, dict):
            return False
        tag = _tag(body.get("text")) if body.get("sender") == "seller" else None
        if tag is None:
            return False
        self.arrivals.setdefault(tag, arrived)
        return True


@dataclass(frozen=True)
class LatencyResult:
    accepted_ms: tuple[float, ...]
    """Until Synapse answered `room_send`."""
    sync_ms: tuple[float, ...]
    stream_ms: tuple[float, ...]
    cpu_bridge_ms: float | None
    cpu_synapse_ms: float | None
    profile: Path | None


class Profiler:
    """py-spy attached to the bridge while the latency is measured (`--py-spy FILE`)."""

    def __init__(self, pid: int, output: Path | None, workdir: Path) -> None:
        self._pid = pid
        self._output = output
        self._child: Child | None = None
        self._log = workdir / "py-spy.log"

    async def __aenter__(self) -> Profiler:
        if self._output is None:
            return self
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        # The file's suffix picks the format: .svg a flame graph, .json speedscope, else
        # collapsed stacks (one line per stack, for grep and sort).
        formats = {".svg": "flamegraph", ".json": "speedscope"}
        kind = formats.get(self._output.suffix, "raw")
        command = [py_spy, "record", "--pid", str(self._pid), "-o", str(self._output)]
        self._child = Child("py-spy", [*command, "--format", kind], self._log)
        await self._child.spawn()
        await asyncio.sleep(1)  # py-spy attaches
        self._child.check_running()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._child is not None:
            # py-spy writes its flame graph when interrupted.
            await self._child.stop(signal.SIGINT)


async def latency(
    options: Options,
    bridge: Child,
    config: Config,
    synapse: EmbeddedSynapse,
    workdir: Path,
) -> LatencyResult:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as sync_session,
        aiohttp.ClientSession(timeout=WS_TIMEOUT) as ws_session,
    ):
        site = config.sites[0]
        marketplace = Marketplace(session, config.web.public_url, site.api_token)
        homeserver = Homeserver(session, synapse.address)

        progress("Latency: setting up two seller members, a buyer and a conversation")
        passwords = {role: secrets.token_urlsafe(16) for role in ("owner", "manager")}
        nonce = uuid.uuid4().hex[:8]
        owner = await synapse.register_user(
            f"owner-{nonce}", passwords["owner"], displayname="Owner"
        )
        manager = await synapse.register_user(
            f"manager-{nonce}", passwords["manager"], displayname="Manager"
        )
        await marketplace.call(
            "PUT",
            f"/sellers/{SELLER_ID}",
            {
                "name": "Bench Seller",
                "members": [
                    {"user_id": owner, "role": "owner"},
                    {"user_id": manager, "role": "manager"},
                ],
            },
        )
        token, _ = issue_buyer_token(
            site.widget_secret,
            Buyer(SiteID(SITE), BuyerID(f"buyer-{nonce}"), "Anna", "en"),
            TOKEN_TTL,
        )
        widget_headers = {"Authorization": f"Bearer {token}"}
        async with session.post(
            f"{config.web.public_url}/widget/v1/conversations",
            json={
                "seller_id": SELLER_ID,
                "context": {"type": "product", "id": "kettle-1", "title": "Electric kettle"},
            },
            headers=widget_headers,
        ) as response:
            if response.status not in (200, 201):
                raise BenchError(f"POST /widget/v1/conversations: HTTP {response.status}")
            conversation_id = str((await response.json())["conversation_id"])
        room_id = (await marketplace.call("GET", f"/conversations/{conversation_id}", {})).get(
            "room_id"
        )
        if not isinstance(room_id, str):
            raise BenchError(f"conversation {conversation_id} came without a room")

        seller = nio.AsyncClient(synapse.address, owner)
        try:
            login = await seller.login(passwords["owner"])
            if not isinstance(login, nio.LoginResponse):
                raise BenchError(f"the seller's login failed: {login}")
            manager_token = await homeserver.login(manager, passwords["manager"])
            await join_all(homeserver, str(seller.access_token), [room_id])
            await join_all(homeserver, manager_token, [room_id])

            def seller_message(event: dict[str, Any]) -> str | None:
                content = event.get("content")
                if event.get("type") != "m.room.message" or event.get("sender") != owner:
                    return None
                return _tag(content.get("body")) if isinstance(content, dict) else None

            detector = SyncDetector(
                Homeserver(sync_session, synapse.address),
                manager_token,
                tag=seller_message,
                whose="the second member's",
            )
            socket = await ws_session.ws_connect(
                f"{config.web.public_url}/widget/v1/stream?access_token={token}",
                autoping=True,
                heartbeat=None,
            )
            stream = SellerReplies(socket)
            detector.start()
            stream.start()
            try:
                return await _send_and_time(
                    options, bridge, seller, room_id, nonce, detector, stream, workdir
                )
            finally:
                await stream.stop()
                await detector.stop()
        finally:
            await seller.close()


async def _send_and_time(
    options: Options,
    bridge: Child,
    seller: nio.AsyncClient,
    room_id: str,
    nonce: str,
    detector: SyncDetector,
    stream: StreamWatcher,
    workdir: Path,
) -> LatencyResult:
    accepted: list[float] = []

    async def send(i: int) -> tuple[str, float]:
        tag = f"wb-{nonce}-{i}"
        started = time.perf_counter()
        response = await seller.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": f"{REPLY} [{tag}]"}
        )
        accepted.append((time.perf_counter() - started) * 1000)
        if not isinstance(response, nio.RoomSendResponse):
            raise BenchError(f"the seller's room_send failed: {response}")
        await stream.wait_for([tag], options.timeout)
        await detector.wait_for([tag], options.timeout)
        return tag, started

    progress(f"Latency: {options.warmup} warm-up messages, then {options.messages} one at a time")
    for i in range(options.warmup):
        await send(options.messages + i)  # tags apart from the timed ones
        await asyncio.sleep(options.gap)
    accepted.clear()
    pids = (bridge.pid, synapse_pid())
    sent: list[tuple[str, float]] = []
    async with Profiler(bridge.pid, options.py_spy, workdir):
        cpu_before = [cpu_seconds(pid) if pid else None for pid in pids]
        for i in range(options.messages):
            sent.append(await send(i))
            await asyncio.sleep(options.gap)
        cpu_after = [cpu_seconds(pid) if pid else None for pid in pids]
    bridge.check_running()

    def per_message(which: int) -> float | None:
        before, after = cpu_before[which], cpu_after[which]
        if before is None or after is None:
            return None
        return (after - before) * 1000 / options.messages

    return LatencyResult(
        accepted_ms=tuple(accepted),
        sync_ms=tuple((detector.arrivals[tag] - started) * 1000 for tag, started in sent),
        stream_ms=tuple((stream.arrivals[tag] - started) * 1000 for tag, started in sent),
        cpu_bridge_ms=per_message(0),
        cpu_synapse_ms=per_message(1),
        profile=options.py_spy,
    )


# --- the run ---------------------------------------------------------------------------


async def run(options: Options) -> None:
    raise_fd_limit(options.connections)
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-widget-") as temp:
        workdir = Path(temp)
        database = resolve_database(options.database, workdir)
        synapse_port = free_port()
        settings = bridge_settings(synapse_port, database, workdir)
        config = parse_config(settings, environ={})
        config_path = workdir / "bridge.yaml"
        config_path.write_text(yaml.safe_dump(settings), encoding="utf-8")
        synapse = embedded_synapse(workdir, synapse_port, config)
        bridge = Child(
            "the bridge",
            [sys.executable, "-m", "bridge", "run", "-c", str(config_path)],
            workdir / "bridge.log",
        )
        progress("Starting Synapse and the bridge (its own process)")
        async with synapse, running(bridge, f"{config.web.public_url}/widget/widget.js"):
            async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
                version = await Homeserver(session, synapse.address).version()
                size = await measure_size(session, config.web.public_url)
            idle = None
            if options.connections:
                idle = await idle_connections(options, bridge, config, workdir)
            timing = None
            if options.messages:
                try:
                    timing = await latency(options, bridge, config, synapse, workdir)
                except BenchError as error:
                    raise BenchError(
                        f"{error}\nlast lines of the bridge's log:\n{bridge.log_tail()}"
                    ) from None
            bridge.check_running()
    report(options, version, describe_database(database), size, idle, timing)


# --- the report ------------------------------------------------------------------------


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


def report(
    options: Options,
    version: str,
    database: str,
    size: SizeResult,
    idle: tuple[IdleResult, IdleResult, int] | None,
    timing: LatencyResult | None,
) -> None:
    print()
    print("Bazaar Bridge widget benchmark")
    print(f"  homeserver    {version} (embedded, loopback)")
    print(f"  database      {database}")
    print("  bridge        `python -m bridge run`, a process of its own")
    print()
    print(f"1. Widget size: {WIDGET_JS.relative_to(REPO)}")
    print(f"  on disk, raw              {size.raw:>8,} bytes")
    share = size.gzipped / size.raw
    print(f"  on disk, gzip -9          {size.gzipped:>8,} bytes   {share:.0%} of raw")
    print(f"  minified, raw             {size.minified:>8,} bytes   (as the bridge serves it)")
    print(f"  minified, gzip -9         {size.minified_gzipped:>8,} bytes")
    print(
        f"  served by the bridge      {size.served:>8,} bytes   to a client accepting gzip"
        f" (Content-Encoding: {size.served_encoding})"
    )
    print(
        f"  ratio served / goal       {size.served / GOAL_GZIP_BYTES:>8.2f}"
        f"         (goal ≤ 1.00; the goal is {GOAL_GZIP_BYTES:,} bytes)"
    )
    if idle is not None:
        floor, streams, buyers = idle
        print()
        print(
            f"2. Idle WebSocket connections: N = {streams.connections:,}, held {options.hold:g} s"
            f" (the bridge's: {buyers:,} buyers × {TABS_PER_BUYER} tabs)"
        )
        row = "  {:<24} {:>7} {:>6} {:>6} {:>6} {:>12} {:>12} {:>10}"
        print(f"  {'':<24} {'server VmRSS, MB':^28} {'MB per':>12} {'connections':>12}")
        print(
            row.format(
                "server",
                "before",
                "open",
                "held",
                "closed",
                "1,000 conns",
                "per 100 MB",
                "answered",
            )
        )
        for r in (floor, streams):
            print(
                row.format(
                    r.name,
                    _mib(r.before_kib),
                    _mib(r.open_kib),
                    _mib(r.held_kib),
                    _mib(r.closed_kib),
                    f"{r.mib_per_thousand:.1f}",
                    f"{r.per_100_mib:,.0f}",
                    f"{r.answered}/{r.connections}",
                )
            )
        print(
            row.format(
                "ratio bridge / floor",
                "",
                "",
                "",
                "",
                f"{streams.mib_per_thousand / floor.mib_per_thousand:.2f}",
                f"{streams.per_100_mib / floor.per_100_mib:.2f}",
                "",
            ).rstrip()
        )
    if timing is not None:
        print()
        print(
            f"3. Latency seller → buyer: M = {len(timing.stream_ms)} messages one at a time,"
            f" {options.gap * 1000:g} ms apart, after {options.warmup} warm-up"
        )
        print("  ms from just before the seller's room_send     median      p99      max")
        rows = (
            ("Synapse answers room_send", timing.accepted_ms),
            ("baseline: the 2nd member's /sync", timing.sync_ms),
            ("bridge: the buyer's stream frame", timing.stream_ms),
        )
        for label, values in rows:
            print(f"  {label:<44} {_spread(values)}")
        median_ratio = statistics.median(timing.stream_ms) / statistics.median(timing.sync_ms)
        p99_ratio = percentile(timing.stream_ms, 99) / percentile(timing.sync_ms, 99)
        print(f"  {'ratio stream / sync':<44} {median_ratio:>8.2f} {p99_ratio:>8.2f}")
        extra = [s - b for s, b in zip(timing.stream_ms, timing.sync_ms, strict=True)]
        print(f"  {'stream − sync, the same message':<44} {_spread(extra)}")
        print(
            f"  {'CPU ms per message':<44} bridge {_cpu(timing.cpu_bridge_ms)},"
            f" Synapse {_cpu(timing.cpu_synapse_ms)}"
        )
        if timing.profile is not None:
            print(f"  {'py-spy profile of the bridge':<44} {timing.profile}")


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):>8.1f} {percentile(values, 99):>8.1f} {max(values):>8.1f}"


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="The buyer widget: its size, idle streams per 100 MB, seller → buyer latency."
    )
    parser.add_argument(
        "--connections",
        "-n",
        type=int,
        default=2000,
        help="idle stream connections to hold (default 2000; 0 skips the part)",
    )
    parser.add_argument(
        "--messages",
        "-m",
        type=int,
        default=100,
        help="seller messages timed one at a time (default 100; 0 skips the part)",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="'sqlite' (a file in the temp dir, the default) or a postgresql+asyncpg:// URL",
    )
    parser.add_argument(
        "--hold", type=float, default=5.0, help="seconds to hold the idle connections (default 5)"
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed seller messages first (default 5)"
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.05,
        help="seconds between one message's arrival and the next send (default 0.05)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=30,
        help="seconds a message (or a ping) may take to arrive (default 30)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="FILE",
        help="record the bridge with py-spy while the latency is measured"
        " (FILE.svg: flame graph, FILE.json: speedscope, else collapsed stacks)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    if min(args.connections, args.messages, args.warmup) < 0 or min(args.hold, args.gap) < 0:
        parser.error("counts and durations must not be negative")
    problem = database_error(args.database)
    if problem is not None:
        parser.error(problem)
    options = Options(
        connections=args.connections,
        messages=args.messages,
        database=args.database,
        hold=args.hold,
        warmup=args.warmup,
        gap=args.gap,
        timeout=args.timeout,
        py_spy=args.py_spy.resolve() if args.py_spy else None,
    )
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    return run_bench("widget", run(options))


if __name__ == "__main__":
    sys.exit(main())
