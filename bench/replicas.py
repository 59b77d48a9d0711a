"""Replicas benchmark: the bridge as 1, 2 and 3 processes on one PostgreSQL database, against
an appservice sending straight into Synapse; then how long a SIGKILLed replica's duties stay
unheld.

One embedded Synapse serves the whole run. For each replica count R in 1, 2, 3 a deployment
of its own, so every measurement starts from an empty store: a fresh throwaway PostgreSQL
cluster (`tests/support/pgcluster.py`), R bridge processes (`python -m bridge -c … run`,
`tests/support/replicas.py`), and in this process two round-robin proxies on the config's web
and appservice ports: the marketplace reaches the replicas through one, Synapse pushes its
transactions through the other. Once the deliveries' shards are shared out among the
replicas, a seller (a new local Matrix user) and C new buyers get 2 × C conversations, C for
each path; the seller joins them all and runs a /sync loop that counts a message as relayed
when it sees the `m.room.message` carrying its `io.bazaar.message_id` (as in `relay.py`).
After an unmeasured warm-up of one message per conversation on each path:

* baseline: N messages `PUT` straight into Synapse as the buyers' ghosts with the
  `as_token`, into the baseline rooms (`relay.py`'s baseline; the replicas get the echoes);
* bridge: N messages `POST`ed to `/api/v1/sites/bench/conversations/{id}/messages` through
  the web proxy.

C workers each, worker k writing only to conversation k. A run is timed from its first
request until the seller's /sync has seen all N, then waited on until the replicas' CPU is
quiet, so the echoes are digested. CPU per message from /proc: the replicas (utime + stime of
each), Synapse, the PostgreSQL cluster (the postmaster with its backends, live and exited)
and this script (clients, proxies).

Then, on the 3-replica deployment, K times: SIGKILL the replica holding "appservice" and time,
from the kill, until pg_locks shows as many duties held by live replicas as before the kill,
and until a buyer message sent right after it (into a conversation whose delivery shard the
killed replica held) is in the seller's /sync; then start that replica again and wait until
the shards are shared out among the three again. It prints figures, judges nothing.

    python bench/replicas.py [--messages N] [--concurrency C] [--kills K] [--workdir DIR] [-v]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
# Run as a script, only bench/ is on the path; the replica harness lives with the tests.
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))

import relay  # noqa: E402
from relay import TEXT, Lane, Sent, _in_lanes  # noqa: E402
from stage import (  # noqa: E402
    HTTP_TIMEOUT,
    SELLER_ID,
    BenchError,
    Homeserver,
    Marketplace,
    SyncDetector,
    bridge_settings,
    cpu_seconds,
    embedded_synapse,
    join_all,
    progress,
    quiet_logging,
    run_bench,
    synapse_pid,
)

from bridge.app import ADMIN_ROOMS_DUTY, ARCHIVE_DUTY, MAIL_DUTY, REMINDERS_DUTY  # noqa: E402
from bridge.config import parse_config  # noqa: E402
from bridge.core.duties import DELIVERY_DUTIES, delivery_duty  # noqa: E402
from bridge.core.erasure import ERASURE_DUTY  # noqa: E402
from bridge.core.ids import SiteID  # noqa: E402
from bridge.demo.synapse import EmbeddedSynapse, SynapseError, free_port  # noqa: E402
from bridge.marketplace.webhooks import webhook_duty  # noqa: E402
from bridge.matrix.content import MESSAGE_ID_KEY  # noqa: E402
from bridge.matrix.identifiers import MatrixNames  # noqa: E402
from bridge.matrix.transactions import APPSERVICE_DUTY  # noqa: E402
from bridge.store.replicas import (  # noqa: E402
    LOCK_SPACE,
    asyncpg_dsn,
    duties_application_name,
    lock_key,
)
from tests.support.pgcluster import PgCluster, PgClusterError  # noqa: E402
from tests.support.processes import BridgeProcessError  # noqa: E402
from tests.support.replicas import ReplicaSet, RoundRobinProxy  # noqa: E402

logger = logging.getLogger("bench.replicas")

REPLICA_COUNTS = (1, 2, 3)
# Each ReplicaSet puts its own cluster's URL in; the base config only needs a valid one.
PLACEHOLDER_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:5432/unused"
# Quiet: the replicas' CPU rose by at most this much per replica in one poll.
SETTLE_POLL = 0.25
SETTLE_QUIET_POLLS = 4
SETTLE_CPU_PER_REPLICA = 0.02
SETTLE_TIMEOUT = 60.0
SHARED_OUT_TIMEOUT = 90.0
HOLDERS_POLL = 0.05
TAKEOVER_TIMEOUT = 60.0
RETRY_PAUSE = 0.1
CPU_PARTS = ("replicas", "Synapse", "PostgreSQL", "script")


@dataclass(frozen=True)
class Options:
    messages: int
    concurrency: int
    kills: int
    run_timeout: float
    workdir: Path | None


# --- CPU from /proc ----------------------------------------------------------------------


def _stat_ticks(pid: int, *, reaped_children: bool = False) -> int:
    """utime + stime of a process (and cutime + cstime: its children it waited for)."""
    # Fields after the ")" that closes the command name: utime is the 12th, cstime the 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def cluster_cpu_seconds(postmaster: int) -> float:
    """The cluster's CPU so far: the postmaster, its backends that ended (it waited for
    them), and the live ones."""
    ticks = _stat_ticks(postmaster, reaped_children=True)
    for children in Path(f"/proc/{postmaster}/task").glob("*/children"):
        for pid in children.read_text().split():
            with contextlib.suppress(OSError):  # a backend that ended just now
                ticks += _stat_ticks(int(pid))
    return ticks / os.sysconf("SC_CLK_TCK")


def _known(seconds: float | None, what: str) -> float:
    if seconds is None:
        raise BenchError(f"cannot read the CPU of {what} from /proc (Linux only)")
    return seconds


# --- one deployment ----------------------------------------------------------------------


@dataclass
class Deployment:
    """R replicas on a cluster of their own, behind the two proxies."""

    count: int
    cluster: PgCluster
    replicas: ReplicaSet
    web: RoundRobinProxy
    appservice: RoundRobinProxy
    watcher: asyncpg.Connection
    duty_names: dict[int, str]
    postmaster: int

    def live_pids(self) -> list[int]:
        return [p.pid for p in self.replicas.processes if p.pid is not None and p.running]

    def index_of(self, pid: int) -> int:
        return next(i for i, p in enumerate(self.replicas.processes) if p.pid == pid)

    async def holders(self) -> dict[str, int]:
        """Each duty held by a live replica, and that replica's pid, as pg_locks shows."""
        rows = await self.watcher.fetch(
            "SELECT l.objid::bigint AS key, a.application_name AS holder"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.granted",
            LOCK_SPACE,
        )
        pids = {duties_application_name(pid): pid for pid in self.live_pids()}
        return {
            self.duty_names.get(row["key"], f"lock {row['key']}"): pids[row["holder"]]
            for row in rows
            if row["holder"] in pids
        }

    async def shared_out(self) -> bool:
        """Whether "appservice" and every delivery shard is held, each live replica
        holding its share of the shards, give or take one."""
        holders = await self.holders()
        live = self.live_pids()
        shards = Counter(pid for duty, pid in holders.items() if duty in DELIVERY_DUTIES)
        share = -(-len(DELIVERY_DUTIES) // len(live))
        return (
            APPSERVICE_DUTY in holders
            and sum(shards.values()) == len(DELIVERY_DUTIES)
            and all(share - 1 <= shards[pid] <= share for pid in live)
        )

    async def wait_shared_out(self) -> None:
        deadline = time.monotonic() + SHARED_OUT_TIMEOUT
        while not await self.shared_out():
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the duties were not shared out among {self.count} replicas within"
                    f" {SHARED_OUT_TIMEOUT:g} s: {await self.holders()}\n{self.log_tails()}"
                )
            await asyncio.sleep(0.2)

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of each part."""
        replicas = [cpu_seconds(pid) for pid in self.live_pids()]
        return {
            "replicas": sum(_known(seconds, "a replica") for seconds in replicas),
            "Synapse": _known(cpu_seconds(synapse_pid()), "Synapse"),
            "PostgreSQL": cluster_cpu_seconds(self.postmaster),
            "script": time.process_time(),
        }

    async def settle(self) -> None:
        """Wait until the replicas have had nothing to do for a little while, so a run's
        echoes and deliveries do not land in the next one's clock."""
        quiet = 0
        last = self.cpu()["replicas"]
        deadline = time.monotonic() + SETTLE_TIMEOUT
        while quiet < SETTLE_QUIET_POLLS:
            if time.monotonic() > deadline:
                logger.warning("The replicas were still busy %g s after a run", SETTLE_TIMEOUT)
                return
            await asyncio.sleep(SETTLE_POLL)
            now = self.cpu()["replicas"]
            busy = now - last > SETTLE_CPU_PER_REPLICA * len(self.live_pids())
            quiet = 0 if busy else quiet + 1
            last = now

    def log_tails(self, lines: int = 15) -> str:
        return "\n".join(
            f"--- replica {index} ({process.log_path}):\n{process.log_tail(lines)}"
            for index, process in enumerate(self.replicas.processes)
        )


def duty_names(settings: dict[str, Any]) -> dict[int, str]:
    """Lock keys (as pg_locks shows them) to the names of the duties there can be."""
    names = [
        APPSERVICE_DUTY,
        *DELIVERY_DUTIES,
        *(webhook_duty(SiteID(site["id"])) for site in settings["sites"]),
        ARCHIVE_DUTY,
        REMINDERS_DUTY,
        ERASURE_DUTY,
        ADMIN_ROOMS_DUTY,
        MAIL_DUTY,
    ]
    return {lock_key(name) & 0xFFFFFFFF: name for name in names}


def postmaster_pid(cluster: PgCluster) -> int:
    """The cluster's server process, as its data directory names it."""
    return int((cluster.data_dir / "postmaster.pid").read_text().split()[0])


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


@contextlib.asynccontextmanager
async def deployed(
    settings: dict[str, Any], count: int, workdir: Path
) -> AsyncIterator[Deployment]:
    """`count` replicas on a fresh cluster, behind the proxies, the shards shared out."""
    _make_dir(workdir)
    try:
        async with contextlib.AsyncExitStack() as stack:
            cluster = PgCluster()
            stack.push_async_callback(cluster.cleanup)
            await cluster.start()
            replicas = ReplicaSet(settings, cluster.url, count, workdir)
            # The proxies first: a replica's start pings Synapse, which calls the appservice.
            web, appservice = replicas.web_proxy(), replicas.appservice_proxy()
            for proxy in (web, appservice):
                await proxy.start()
                stack.push_async_callback(proxy.stop)
            watcher = await asyncpg.connect(asyncpg_dsn(cluster.url))
            stack.push_async_callback(watcher.close)
            deployment = Deployment(
                count,
                cluster,
                replicas,
                web,
                appservice,
                watcher,
                duty_names(settings),
                postmaster_pid(cluster),
            )
            stack.push_async_callback(replicas.stop_all)
            try:
                await replicas.start_all(count)
                await deployment.wait_shared_out()
                yield deployment
            except (BenchError, BridgeProcessError, aiohttp.ClientError, TimeoutError) as error:
                raise BenchError(f"{error}\n{deployment.log_tails()}") from None
    except PgClusterError as error:
        raise BenchError(f"PostgreSQL: {error}") from None


# --- the runs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """What every deployment shares: Synapse and the clients of its and the marketplace's APIs."""

    options: Options
    synapse: EmbeddedSynapse
    names: MatrixNames
    homeserver: Homeserver
    marketplace: Marketplace
    sync_homeserver: Homeserver
    """The seller's /sync loops' own connections."""
    as_token: str


@dataclass(frozen=True)
class Lanes:
    """A deployment's conversations, and its seller's /sync loop that watches them."""

    bridge: Sequence[Lane]
    baseline: Sequence[Lane]
    detector: SyncDetector


@dataclass(frozen=True)
class RunResult:
    replicas: int
    path: str
    messages: int
    seconds: float
    median_latency_ms: float
    cpu_ms: dict[str, float]
    """CPU ms per message of each part (CPU_PARTS)."""

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


@dataclass(frozen=True)
class DeploymentResult:
    replicas: int
    baseline: RunResult
    bridge: RunResult


async def open_lanes(stage: Stage, buyers: Sequence[str], kind: str) -> list[Lane]:
    return await relay.open_lanes(stage.marketplace, stage.names, buyers, kind)


async def set_up(stage: Stage, count: int) -> Lanes:
    """The seller, C buyers and 2 × C conversations, all joined by the seller; then its
    /sync loop. The seller's Matrix user and the buyers' ghosts are new for each deployment,
    so the loop sees only this deployment's rooms (an earlier deployment's come back as
    limited timelines in a new loop's first incremental /sync)."""
    password = secrets.token_urlsafe(16)
    seller = await stage.synapse.register_user(
        f"seller-r{count}-{uuid.uuid4().hex[:8]}", password, displayname="Bench Seller"
    )
    seller_token = await stage.homeserver.login(seller, password)
    await stage.marketplace.call(
        "PUT",
        f"/sellers/{SELLER_ID}",
        {"name": "Bench Seller", "members": [{"user_id": seller, "role": "owner"}]},
    )
    buyers = [f"r{count}-buyer-{k}" for k in range(stage.options.concurrency)]
    for k, buyer in enumerate(buyers):
        await stage.marketplace.call("PUT", f"/buyers/{buyer}", {"name": f"Buyer {k}"})
    bridge = await open_lanes(stage, buyers, "bridge")
    baseline = await open_lanes(stage, buyers, "baseline")
    await join_all(stage.homeserver, seller_token, [lane.room_id for lane in (*bridge, *baseline)])
    detector = SyncDetector(stage.sync_homeserver, seller_token)
    detector.start()
    return Lanes(bridge, baseline, detector)


async def post_message(stage: Stage, lane: Lane, text: str, client_id: str) -> str:
    answer = await stage.marketplace.call(
        "POST",
        f"/conversations/{lane.conversation_id}/messages",
        {"text": text, "client_id": client_id},
    )
    return str(answer["message_id"])


async def bridge_path(stage: Stage, lanes: Lanes, count: int, tag: str) -> list[Sent]:
    async def send(lane: Lane, i: int) -> Sent:
        sent_at = time.perf_counter()
        message_id = await post_message(stage, lane, f"{TEXT} ({tag} #{i})", f"{tag}-{i}")
        return Sent(message_id, sent_at)

    return await _in_lanes(lanes.bridge, count, send)


async def baseline_path(stage: Stage, lanes: Lanes, count: int, tag: str) -> list[Sent]:
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

    return await _in_lanes(lanes.baseline, count, send)


PATHS: dict[str, Callable[[Stage, Lanes, int, str], Awaitable[list[Sent]]]] = {
    "baseline": baseline_path,
    "bridge": bridge_path,
}


async def measure(
    stage: Stage, deployment: Deployment, lanes: Lanes, path: str, count: int
) -> RunResult:
    """One timed run; CPU is counted until the replicas are quiet again."""
    tag = f"r{deployment.count}-{path}-{uuid.uuid4().hex[:8]}"
    before = deployment.cpu()
    started = time.perf_counter()
    sent = await PATHS[path](stage, lanes, count, tag)
    finished = await lanes.detector.wait_for(
        [s.message_id for s in sent], stage.options.run_timeout
    )
    await deployment.settle()
    after = deployment.cpu()
    arrivals = lanes.detector.arrivals
    latencies = [(arrivals[s.message_id] - s.sent_at) * 1000 for s in sent]
    return RunResult(
        replicas=deployment.count,
        path=path,
        messages=count,
        seconds=finished - started,
        median_latency_ms=statistics.median(latencies),
        cpu_ms={part: (after[part] - before[part]) * 1000 / count for part in CPU_PARTS},
    )


async def relay_runs(stage: Stage, deployment: Deployment, lanes: Lanes) -> DeploymentResult:
    progress(f"{deployment.count} replica(s): warming up")
    for path in PATHS:
        await measure(stage, deployment, lanes, path, stage.options.concurrency)
    runs = {}
    for path in PATHS:
        progress(f"{deployment.count} replica(s): {path}, {stage.options.messages} messages")
        runs[path] = await measure(stage, deployment, lanes, path, stage.options.messages)
    return DeploymentResult(deployment.count, runs["baseline"], runs["bridge"])


# --- the takeover ------------------------------------------------------------------------


@dataclass(frozen=True)
class Takeover:
    number: int
    victim_pid: int
    victim_duties: tuple[str, ...]
    duties_before: int
    duties_held_s: float
    """From the kill until as many duties as before are held by live replicas."""
    message_s: float
    """From the kill until the message sent after it is in the seller's /sync."""
    posted_s: float
    """From the kill until the marketplace API acknowledged that message."""
    on_victims_shard: bool


async def post_until_taken(stage: Stage, lane: Lane, text: str, client_id: str) -> str:
    """POST as a marketplace does: again, with the same client_id, until it is taken."""
    deadline = time.monotonic() + TAKEOVER_TIMEOUT
    while True:
        try:
            return await post_message(stage, lane, text, client_id)
        except (BenchError, aiohttp.ClientError, TimeoutError) as error:
            if time.monotonic() > deadline:
                raise BenchError(f"the message after the kill was not taken: {error}") from None
        await asyncio.sleep(RETRY_PAUSE)


async def all_held_again(deployment: Deployment, count: int, killed_at: float) -> float:
    """Seconds from `killed_at` until `count` duties are held by live replicas."""
    deadline = time.monotonic() + TAKEOVER_TIMEOUT
    while len(await deployment.holders()) < count:
        if time.monotonic() > deadline:
            raise BenchError(
                f"only {len(await deployment.holders())} of {count} duties held again"
                f" {TAKEOVER_TIMEOUT:g} s after the kill"
            )
        await asyncio.sleep(HOLDERS_POLL)
    return time.perf_counter() - killed_at


async def take_over(
    stage: Stage, deployment: Deployment, lanes: Lanes, number: int, *, restart: bool
) -> Takeover:
    """SIGKILL the holder of "appservice"; time the takeover; start it again (`restart`)."""
    await deployment.wait_shared_out()
    await deployment.settle()
    before = await deployment.holders()
    victim_pid = before[APPSERVICE_DUTY]
    victim = deployment.index_of(victim_pid)
    everyone = [*lanes.bridge, *lanes.baseline]
    # A conversation the killed replica delivered: its message waits for the takeover.
    on_victims = [
        lane for lane in everyone if before.get(delivery_duty(lane.conversation_id)) == victim_pid
    ]
    lane = (on_victims or everyone)[0]
    progress(f"Kill {number}/{stage.options.kills}: SIGKILL replica {victim} (pid {victim_pid})")
    killed_at = time.perf_counter()
    await deployment.replicas.kill(victim)
    held = asyncio.create_task(all_held_again(deployment, len(before), killed_at))
    try:
        tag = f"after-kill-{number}-{uuid.uuid4().hex[:8]}"
        message_id = await post_until_taken(stage, lane, f"{TEXT} ({tag})", tag)
        posted = time.perf_counter() - killed_at
        arrived = await lanes.detector.wait_for([message_id], TAKEOVER_TIMEOUT)
        duties_held = await held
    finally:
        held.cancel()
    if restart:
        progress(f"Kill {number}/{stage.options.kills}: starting replica {victim} again")
        try:
            await deployment.replicas.start(victim)
        except BridgeProcessError as error:
            raise BenchError(f"replica {victim} did not start again: {error}") from None
    return Takeover(
        number=number,
        victim_pid=victim_pid,
        victim_duties=tuple(sorted(d for d, pid in before.items() if pid == victim_pid)),
        duties_before=len(before),
        duties_held_s=duties_held,
        message_s=arrived - killed_at,
        posted_s=posted,
        on_victims_shard=bool(on_victims),
    )


# --- the whole run -----------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    synapse: str
    postgres: str
    deployments: Sequence[DeploymentResult]
    takeovers: Sequence[Takeover]
    limited_timelines: int


async def run(options: Options) -> None:
    with contextlib.ExitStack() as stack:
        if options.workdir is None:
            temp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bazaar-replicas-"))
            workdir = Path(temp)
        else:
            workdir = options.workdir
            _make_dir(workdir)
        synapse_port = free_port()
        settings = bridge_settings(synapse_port, PLACEHOLDER_DATABASE, workdir)
        config = parse_config(settings, environ={})
        synapse = embedded_synapse(workdir, synapse_port, config)
        progress("Starting Synapse")
        try:
            async with synapse:
                results = await bench(options, settings, synapse, workdir)
        except SynapseError as error:
            raise BenchError(f"Synapse: {error}") from None
    report(options, results)


async def bench(
    options: Options, settings: dict[str, Any], synapse: EmbeddedSynapse, workdir: Path
) -> Results:
    config = parse_config(settings, environ={})
    address = synapse.address
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as shop_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as matrix_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as sync_session,
    ):
        homeserver = Homeserver(matrix_session, address)
        version = await homeserver.version()
        stage = Stage(
            options=options,
            synapse=synapse,
            names=MatrixNames(
                config.homeserver.domain,
                config.appservice.ghost_prefix,
                config.appservice.bot_username,
            ),
            homeserver=homeserver,
            marketplace=Marketplace(shop_session, config.web.public_url, config.sites[0].api_token),
            sync_homeserver=Homeserver(sync_session, address),
            as_token=config.appservice.as_token,
        )
        deployments: list[DeploymentResult] = []
        takeovers: list[Takeover] = []
        postgres = "PostgreSQL"
        limited_timelines = 0
        for count in REPLICA_COUNTS:
            progress(f"{count} replica(s): a fresh PostgreSQL cluster, starting the bridge")
            async with deployed(settings, count, workdir / f"replicas-{count}") as deployment:
                server_version = await deployment.watcher.fetchval("SHOW server_version")
                postgres = f"PostgreSQL {str(server_version).split(' ')[0]}"
                progress(f"{count} replica(s): setting up the seller, buyers and rooms")
                lanes = await set_up(stage, count)
                try:
                    deployments.append(await relay_runs(stage, deployment, lanes))
                    if count == REPLICA_COUNTS[-1]:
                        for number in range(1, options.kills + 1):
                            restart = number < options.kills
                            takeovers.append(
                                await take_over(stage, deployment, lanes, number, restart=restart)
                            )
                finally:
                    await lanes.detector.stop()
                limited_timelines += lanes.detector.limited_timelines
    return Results(version, postgres, deployments, takeovers, limited_timelines)


# --- the report --------------------------------------------------------------------------


def _replicas(count: int) -> str:
    return f"{count} replica" + ("" if count == 1 else "s")


def report(options: Options, results: Results) -> None:
    cores = os.cpu_count() or 1
    print()
    print("Bazaar Bridge replicas benchmark")
    print(f"  homeserver    {results.synapse} (embedded, loopback)")
    print(f"  database      {results.postgres}, a fresh throwaway cluster per deployment")
    print(
        f"  deployments   {', '.join(str(n) for n in REPLICA_COUNTS)} replicas, each"
        " `python -m bridge run`, behind round-robin proxies"
    )
    print(f"  messages      N = {options.messages} per run, after a warm-up")
    print(
        f"  concurrency   C = {options.concurrency} conversations per path,"
        f" {options.concurrency} requests in flight"
    )
    print(f"  machine       {cores} cores, shared by everything")
    print()
    print("relay: buyer messages until the seller's /sync has them")
    print(f"{'median':>48}  {'CPU ms per message':^45}".rstrip())
    print(
        f"  {'deployment':<10}  {'path':<9}{'msg/s':>7} {'secs':>5} {'latency ms':>11}  "
        + _cpu_columns([*CPU_PARTS, "total"])
    )
    for result in results.deployments:
        for label, run_result in (("baseline", result.baseline), ("bridge", result.bridge)):
            name = _replicas(result.replicas) if label == "baseline" else ""
            cpu = [f"{run_result.cpu_ms[part]:.2f}" for part in CPU_PARTS]
            cpu.append(f"{sum(run_result.cpu_ms.values()):.2f}")
            print(
                f"  {name:<10}  {label:<9}{run_result.rate:>7.1f} {run_result.seconds:>5.1f}"
                f" {run_result.median_latency_ms:>11.0f}  {_cpu_columns(cpu)}"
            )
        ratios = [
            _ratio(result.bridge.cpu_ms[part], result.baseline.cpu_ms[part]) for part in CPU_PARTS
        ]
        ratios.append(
            _ratio(sum(result.bridge.cpu_ms.values()), sum(result.baseline.cpu_ms.values()))
        )
        print(
            f"  {'ratio bridge/baseline':<21}{_throughput_ratio(result):>7}"
            f" {'':>5} {'':>11}  {_cpu_columns(ratios)}"
        )
    first = results.deployments[0]
    print()
    print("  bridge msg/s, ratio to its baseline    " + _by_deployment(results, _throughput_ratio))
    print(
        "  bridge msg/s, ratio to 1 replica's     "
        + _by_deployment(results, lambda r: _ratio(r.bridge.rate, first.bridge.rate))
    )
    print(
        "  replicas' CPU ms per bridged message   "
        + _by_deployment(results, lambda r: f"{r.bridge.cpu_ms['replicas']:.2f}")
    )
    print(
        "    ratio to 1 replica's                 "
        + _by_deployment(
            results,
            lambda r: _ratio(r.bridge.cpu_ms["replicas"], first.bridge.cpu_ms["replicas"]),
        )
    )
    if results.takeovers:
        report_takeovers(results.takeovers)
    if results.limited_timelines:
        print(f"  warning: {results.limited_timelines} limited /sync timelines (gaps possible)")
    print()
    print(note(cores))


def _cpu_columns(cells: Sequence[str]) -> str:
    widths = (8, 8, 11, 7, 7)
    return " ".join(f"{cell:>{width}}" for cell, width in zip(cells, widths, strict=True))


def _ratio(value: float, baseline: float) -> str:
    return "n/a" if baseline <= 0 else f"{value / baseline:.2f}"


def _throughput_ratio(result: DeploymentResult) -> str:
    return _ratio(result.bridge.rate, result.baseline.rate)


def _by_deployment(results: Results, figure: Callable[[DeploymentResult], str]) -> str:
    return "   ".join(f"{_replicas(r.replicas)} {figure(r):>5}" for r in results.deployments)


def _duties(names: Sequence[str]) -> str:
    shards = sum(name in DELIVERY_DUTIES for name in names)
    others = [name for name in names if name not in DELIVERY_DUTIES]
    return ", ".join([*others, f"{shards} delivery shards"])


def report_takeovers(takeovers: Sequence[Takeover]) -> None:
    print()
    print(
        f'takeover: SIGKILL of the replica holding "{APPSERVICE_DUTY}"'
        f" ({_replicas(REPLICA_COUNTS[-1])}, idle), {len(takeovers)} time"
        + ("" if len(takeovers) == 1 else "s")
    )
    print(f"{'':36}seconds from the kill until")
    print(
        f"  {'kill':>4}  {'victim pid':>10}  {'duties it held':>14}  {'all held again':>14}"
        f"  {'message taken':>13}  {'message seen':>12}  what it held"
    )
    for t in takeovers:
        shard = "" if t.on_victims_shard else "; the message not on its shard"
        held_there = f"{len(t.victim_duties)} of {t.duties_before}"
        print(
            f"  {t.number:>4}  {t.victim_pid:>10}  {held_there:>14}  {t.duties_held_s:>14.2f}"
            f"  {t.posted_s:>13.2f}  {t.message_s:>12.2f}  {_duties(t.victim_duties)}{shard}"
        )
    held = [t.duties_held_s for t in takeovers]
    message = [t.message_s for t in takeovers]
    print(
        f"  every duty held again    median {statistics.median(held):.2f} s, max {max(held):.2f} s"
    )
    print(
        f"  next message in /sync    median {statistics.median(message):.2f} s,"
        f" max {max(message):.2f} s"
    )


def note(cores: int) -> str:
    return (
        f"Note: on {cores} cores, throughput cannot grow with replicas here: every replica,"
        " Synapse,\nPostgreSQL and this script's clients and proxies share the same cores,"
        " and the work per\nmessage does not shrink when it is spread over more processes."
        " What the figures do show is\nwhat the replica mechanics cost: msg/s and the"
        " replicas' CPU per message with 2 and 3\nreplicas against 1 (telling a shard's"
        " holder through NOTIFY, each replica's looks for\nfree duties, more processes"
        " competing for the cores), and how long a SIGKILLed holder's\nduties stay unheld"
        " before a survivor takes them over."
    )


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="Relay throughput and takeover time of the bridge as 1, 2 and 3 replicas."
    )
    parser.add_argument("--messages", "-n", type=int, default=300, help="messages per run")
    parser.add_argument(
        "--concurrency", "-c", type=int, default=8, help="conversations and requests in flight"
    )
    parser.add_argument(
        "--kills", type=int, default=3, help="SIGKILLs of the duties' holder (0: skip)"
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=120,
        help="seconds one run's messages may take to reach the seller's client",
    )
    parser.add_argument(
        "--workdir", type=Path, help="keep Synapse's files and the replicas' logs here"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    if min(args.messages, args.concurrency) < 1 or args.kills < 0:
        parser.error("--messages and --concurrency must be at least 1, --kills at least 0")
    options = Options(
        messages=args.messages,
        concurrency=args.concurrency,
        kills=args.kills,
        run_timeout=args.run_timeout,
        workdir=args.workdir,
    )
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    return run_bench("replicas", run(options))


if __name__ == "__main__":
    sys.exit(main())
