"""Relay benchmark: buyer messages through the bridge versus straight into Synapse.

One embedded Synapse (temp dir, free loopback port, the bridge's appservice registration)
and one in-process `Bridge` serve the whole run. A seller (one local Matrix user) and C
buyers get C conversations for the bridge path and C more for the baseline, all made
through the marketplace HTTP API, so every room looks the same. The seller's client joins
them all and runs a /sync loop: a message counts as relayed when that loop sees an
`m.room.message` carrying its `io.bazaar.message_id`.

* bridge path: N messages `POST`ed to `/api/v1/sites/{site}/conversations/{id}/messages`;
* baseline: N messages `PUT` to `/_matrix/client/v3/rooms/{room}/send/…?user_id=<ghost>`
  with the appservice token, as the same ghosts, into the baseline rooms.

Both use C workers, worker k writing only to conversation/room k, so C requests are in
flight. A run's clock starts at its first request and stops when the sync loop has seen
all N messages. Runs alternate, baseline first (B, D, B, D, …), after an unmeasured
warm-up of one message per conversation on each path. It prints figures, judges nothing.

    python bench/relay.py [--messages N] [--concurrency C] [--database sqlite|URL]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import aiohttp
from stage import (
    HTTP_TIMEOUT,
    SELLER_ID,
    SITE,
    BenchError,
    Homeserver,
    Marketplace,
    SyncDetector,
    bridge_config,
    database_error,
    describe_database,
    embedded_synapse,
    join_all,
    percentile,
    progress,
    quiet_logging,
    resolve_database,
    run_bench,
)

from bridge.app import Bridge
from bridge.config import Config
from bridge.core.ids import BuyerID, SiteID
from bridge.demo.synapse import EmbeddedSynapse, free_port
from bridge.matrix.content import MESSAGE_ID_KEY
from bridge.matrix.identifiers import MatrixNames

logger = logging.getLogger("bench.relay")

TEXT = "Hello! Is the kettle still available, and could you ship it to Lisbon by Friday?"
SETTLE_POLL = 0.1
SETTLE_QUIET_POLLS = 5
SETTLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Options:
    messages: int
    concurrency: int
    database: str
    rounds: int
    probes: int
    run_timeout: float


@dataclass(frozen=True)
class Lane:
    """One conversation: its id, its room and the buyer's ghost that writes into it."""

    conversation_id: str
    room_id: str
    ghost: str


@dataclass(frozen=True)
class Sent:
    message_id: str
    sent_at: float


@dataclass(frozen=True)
class RunResult:
    path: str
    round: int
    messages: int
    seconds: float
    latencies_ms: tuple[float, ...]
    cpu_here_ms: float
    """CPU per message of this process (bridge, marketplace client, /sync loop)."""
    cpu_synapse_ms: float | None
    """CPU per message of the Synapse process, when /proc can tell."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def median_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95_ms(self) -> float:
        return percentile(self.latencies_ms, 95)


def _children_cpu_seconds() -> float | None:
    """User+system CPU of this process's live children (Synapse), from Linux /proc."""
    pids: list[int] = []
    try:
        for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
            pids.extend(int(pid) for pid in children.read_text().split())
        ticks = 0
        for pid in pids:
            # Fields after the ")" that closes the command name: utime and stime are 12th, 13th.
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    except (OSError, ValueError, IndexError):
        return None
    return ticks / os.sysconf("SC_CLK_TCK") if pids else None


class CpuMeter:
    """CPU used by this process and by Synapse from construction to `per_message`."""

    def __init__(self) -> None:
        self._here = time.process_time()
        self._children = _children_cpu_seconds()

    def per_message(self, count: int) -> tuple[float, float | None]:
        here = (time.process_time() - self._here) * 1000 / count
        children = _children_cpu_seconds()
        if children is None or self._children is None:
            return here, None
        return here, (children - self._children) * 1000 / count


@dataclass(frozen=True)
class Stage:
    """Everything the runs share, set up once."""

    options: Options
    bridge: Bridge
    marketplace: Marketplace
    homeserver: Homeserver
    detector: SyncDetector
    as_token: str
    bridge_lanes: Sequence[Lane]
    baseline_lanes: Sequence[Lane]


SendOne = Callable[[Lane, int], Awaitable[Sent]]


async def _in_lanes(lanes: Sequence[Lane], count: int, send: SendOne) -> list[Sent]:
    """Send `count` messages with one worker per lane; message i goes to lane i mod C."""

    async def worker(index: int) -> list[Sent]:
        return [await send(lanes[index], i) for i in range(index, count, len(lanes))]

    per_lane = await asyncio.gather(*(worker(k) for k in range(len(lanes))))
    return [sent for lane in per_lane for sent in lane]


async def bridge_path(stage: Stage, count: int, tag: str) -> list[Sent]:
    async def send(lane: Lane, i: int) -> Sent:
        sent_at = time.perf_counter()
        answer = await stage.marketplace.call(
            "POST",
            f"/conversations/{lane.conversation_id}/messages",
            {"text": f"{TEXT} ({tag} #{i})", "client_id": f"{tag}-{i}"},
        )
        return Sent(str(answer["message_id"]), sent_at)

    return await _in_lanes(stage.bridge_lanes, count, send)


async def baseline_path(stage: Stage, count: int, tag: str) -> list[Sent]:
    async def send(lane: Lane, i: int) -> Sent:
        message_id = f"{tag}-{i}"
        sent_at = time.perf_counter()
        await stage.homeserver.call(
            "PUT",
            f"/_matrix/client/v3/rooms/{quote(lane.room_id, safe='')}/send/m.room.message/"
            f"{message_id}",
            stage.as_token,
            body={"msgtype": "m.text", "body": f"{TEXT} ({tag} #{i})", MESSAGE_ID_KEY: message_id},
            params={"user_id": lane.ghost},
        )
        return Sent(message_id, sent_at)

    return await _in_lanes(stage.baseline_lanes, count, send)


PATHS: dict[str, Callable[[Stage, int, str], Awaitable[list[Sent]]]] = {
    "baseline": baseline_path,
    "bridge": bridge_path,
}


async def measure(stage: Stage, path: str, round_number: int, count: int) -> RunResult:
    """One timed run. CPU is counted until the bridge has also digested the run's echoes."""
    tag = f"{path}-{round_number}-{uuid.uuid4().hex[:8]}"
    cpu = CpuMeter()
    started = time.perf_counter()
    sent = await PATHS[path](stage, count, tag)
    finished = await stage.detector.wait_for(
        [s.message_id for s in sent], stage.options.run_timeout
    )
    await settle(stage.bridge)
    cpu_here, cpu_synapse = cpu.per_message(count)
    arrivals = stage.detector.arrivals
    latencies = tuple((arrivals[s.message_id] - s.sent_at) * 1000 for s in sent)
    return RunResult(
        path, round_number, count, finished - started, latencies, cpu_here, cpu_synapse
    )


async def probe(stage: Stage, path: str, count: int) -> list[float]:
    """Latency with no queue: one message at a time, each waited for before the next."""
    latencies = []
    for i in range(count):
        (sent,) = await PATHS[path](stage, 1, f"probe-{path}-{i}-{uuid.uuid4().hex[:8]}")
        arrived = await stage.detector.wait_for([sent.message_id], stage.options.run_timeout)
        latencies.append((arrived - sent.sent_at) * 1000)
    await settle(stage.bridge)
    return latencies


async def _bridge_idle(bridge: Bridge) -> bool:
    if bridge.courier.busy:
        return False
    try:
        async with asyncio.timeout(0):
            await bridge.transactions.wait_idle()
    except TimeoutError:
        return False
    return True


async def settle(bridge: Bridge) -> None:
    """Wait until the bridge has had nothing to deliver or digest for a little while, so
    one run's appservice echoes do not land in the next run's clock."""
    quiet = 0
    for _ in range(round(SETTLE_TIMEOUT / SETTLE_POLL)):
        quiet = quiet + 1 if await _bridge_idle(bridge) else 0
        if quiet >= SETTLE_QUIET_POLLS:
            return
        await asyncio.sleep(SETTLE_POLL)
    logger.warning("The bridge was still busy %g s after a run", SETTLE_TIMEOUT)


async def open_lanes(
    marketplace: Marketplace, names: MatrixNames, buyers: Sequence[str], kind: str
) -> list[Lane]:
    async def open_one(buyer_id: str) -> Lane:
        answer = await marketplace.call(
            "POST",
            "/conversations",
            {
                "seller_id": SELLER_ID,
                "buyer_id": buyer_id,
                "context": {
                    "type": "product",
                    "id": f"{kind}-{buyer_id}",
                    "title": "Electric kettle 1.7 l",
                    "url": f"https://shop.example/p/{kind}-{buyer_id}",
                    "price": "24.90",
                    "currency": "EUR",
                },
            },
        )
        room_id = answer.get("room_id")
        if not isinstance(room_id, str):
            raise BenchError(f"conversation {answer.get('conversation_id')} came without a room")
        ghost = names.ghost(SiteID(SITE), BuyerID(buyer_id))
        return Lane(str(answer["conversation_id"]), room_id, ghost)

    return list(await asyncio.gather(*(open_one(buyer) for buyer in buyers)))


async def run(options: Options) -> None:
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-") as temp:
        workdir = Path(temp)
        database = resolve_database(options.database, workdir)
        synapse_port = free_port()
        config = bridge_config(synapse_port, database, workdir)
        synapse = embedded_synapse(workdir, synapse_port, config)
        progress("Starting Synapse and the bridge")
        async with synapse:
            bridge = Bridge(config)
            await bridge.start()
            try:
                await bench(options, config, synapse, bridge)
            finally:
                await bridge.stop()


async def bench(options: Options, config: Config, synapse: EmbeddedSynapse, bridge: Bridge) -> None:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as shop_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as matrix_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as sync_session,
    ):
        marketplace = Marketplace(shop_session, config.web.public_url, config.sites[0].api_token)
        homeserver = Homeserver(matrix_session, synapse.address)
        version = await homeserver.version()

        progress("Setting up the seller, buyers and rooms")
        password = secrets.token_urlsafe(16)
        seller = await synapse.register_user(
            f"seller-{uuid.uuid4().hex[:8]}", password, displayname="Bench Seller"
        )
        seller_token = await homeserver.login(seller, password)
        await marketplace.call(
            "PUT",
            f"/sellers/{SELLER_ID}",
            {"name": "Bench Seller", "members": [{"user_id": seller, "role": "owner"}]},
        )
        buyers = [f"buyer-{k}" for k in range(options.concurrency)]
        for k, buyer in enumerate(buyers):
            await marketplace.call("PUT", f"/buyers/{buyer}", {"name": f"Buyer {k}"})
        bridge_lanes = await open_lanes(marketplace, bridge.names, buyers, "bridge")
        baseline_lanes = await open_lanes(marketplace, bridge.names, buyers, "baseline")
        await join_all(
            homeserver, seller_token, [lane.room_id for lane in (*bridge_lanes, *baseline_lanes)]
        )

        detector = SyncDetector(Homeserver(sync_session, synapse.address), seller_token)
        detector.start()
        stage = Stage(
            options,
            bridge,
            marketplace,
            homeserver,
            detector,
            config.appservice.as_token,
            bridge_lanes,
            baseline_lanes,
        )
        results: list[RunResult] = []
        probes: dict[str, list[float]] = {}
        try:
            progress("Warming up")
            for path in PATHS:
                await measure(stage, path, 0, options.concurrency)
            for round_number in range(1, options.rounds + 1):
                for path in PATHS:
                    progress(f"Round {round_number}/{options.rounds}: {path}")
                    results.append(await measure(stage, path, round_number, options.messages))
            if options.probes:
                progress(f"Unloaded latency: {options.probes} messages one at a time per path")
                probes = {path: await probe(stage, path, options.probes) for path in PATHS}
        finally:
            await detector.stop()

    report(options, version, describe_database(config.database), results, probes, detector)


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(
    options: Options,
    version: str,
    database: str,
    results: Sequence[RunResult],
    probes: dict[str, list[float]],
    detector: SyncDetector,
) -> None:
    runs = {path: [r for r in results if r.path == path] for path in PATHS}
    ratios = [
        bridge.rate / baseline.rate
        for baseline, bridge in zip(runs["baseline"], runs["bridge"], strict=True)
    ]
    plural = "" if options.concurrency == 1 else "s"

    print()
    print("Bazaar Bridge relay benchmark")
    print(f"  homeserver    {version} (embedded, loopback)")
    print(f"  database      {database}")
    print(f"  messages      N = {options.messages} per run")
    print(
        f"  concurrency   C = {options.concurrency} conversation{plural},"
        f" {options.concurrency} request{plural} in flight"
    )
    print(f"  order         {options.rounds} × (baseline, bridge), after a warm-up")
    print()
    print("                                 latency to /sync, ms  CPU ms per message")
    print("  round  path        msg/s  secs    median      p95    here    Synapse")
    for r in results:
        print(
            f"  {r.round:>5}  {r.path:<8} {r.rate:>8.1f} {r.seconds:>5.1f} {r.median_ms:>9.0f}"
            f" {r.p95_ms:>8.0f} {r.cpu_here_ms:>7.1f} {_cpu(r.cpu_synapse_ms):>10}"
        )
    print()
    print("  ratio bridge/baseline by round  " + "  ".join(f"{ratio:.2f}" for ratio in ratios))
    print(f"  median ratio bridge/baseline   {statistics.median(ratios):.2f}   (goal ≥ 0.90)")
    print(
        f"  median msg/s                   bridge {median_rate(runs['bridge']):.1f},"
        f" baseline {median_rate(runs['baseline']):.1f}"
    )
    print("  latency, request sent → seen by the seller's /sync (client clock):")
    for path in PATHS:
        loaded = [ms for r in runs[path] for ms in r.latencies_ms]
        print(f"    {path:<8} in the runs       {_spread(loaded)}")
    for path, latencies in probes.items():
        print(f"    {path:<8} one at a time     {_spread(latencies)}")
    extra = statistics.median(r.cpu_here_ms for r in runs["bridge"]) - statistics.median(
        r.cpu_here_ms for r in runs["baseline"]
    )
    print(f"  bridge's own CPU per message   ≈ {extra:.1f} ms ('here' in bridge − baseline runs)")
    if detector.limited_timelines:
        print(f"  warning: {detector.limited_timelines} limited /sync timelines (gaps possible)")


def _spread(latencies: Sequence[float]) -> str:
    return (
        f"median {statistics.median(latencies):>6.0f} ms, p95 {percentile(latencies, 95):>6.0f} ms"
        f"  ({len(latencies)} messages)"
    )


def median_rate(runs: Sequence[RunResult]) -> float:
    return statistics.median(r.rate for r in runs)


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="Relay throughput of the bridge against sending straight to Synapse."
    )
    parser.add_argument("--messages", "-n", type=int, default=400, help="messages per run")
    parser.add_argument(
        "--concurrency", "-c", type=int, default=8, help="conversations and requests in flight"
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="'sqlite' (a file in the temp dir, the default) or a postgresql+asyncpg:// URL",
    )
    parser.add_argument(
        "--rounds", type=int, default=3, help="(baseline, bridge) pairs to run (default 3)"
    )
    parser.add_argument(
        "--probes",
        type=int,
        default=20,
        help="messages per path sent one at a time for the unloaded latency (0: skip)",
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=120,
        help="seconds one run's messages may take to reach the seller's client",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    if min(args.messages, args.concurrency, args.rounds) < 1 or args.probes < 0:
        parser.error("--messages, --concurrency and --rounds must be at least 1")
    problem = database_error(args.database)
    if problem is not None:
        parser.error(problem)
    options = Options(
        messages=args.messages,
        concurrency=args.concurrency,
        database=args.database,
        rounds=args.rounds,
        probes=args.probes,
        run_timeout=args.run_timeout,
    )
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    return run_bench("relay", run(options))


if __name__ == "__main__":
    sys.exit(main())
