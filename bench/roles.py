"""Role-change benchmark: a seller's new manager reaching every room, and leaving them again.

One embedded Synapse (temp dir, free loopback port, the bridge's appservice registration)
and one in-process `Bridge` serve the whole run. Through the marketplace HTTP API it makes
seller A with N conversations (a pool of buyers, one product per conversation) and, as the
control, K other sellers with M conversations each; every room is made by the bridge.

Then two role changes, each one `PUT /sellers/A` over HTTP:

* add: the members become the owner plus a new manager (a registered local user);
* remove: the members are the owner alone again.

A change counts as arrived when the manager's own /sync loop has seen every one of A's N
rooms in `rooms.invite` (add) or `rooms.leave` (remove): the homeserver decides, not the
bridge's database. The members hold a room's default power level (`users_default`), so
the invite also puts the level in place; the script then reads every room's
`m.room.power_levels` and the manager's membership to confirm both (not timed). The
homeserver requests the bridge made for a change are the difference of
`bridge.gateway.requests` once the courier is idle again; a wrapper around the gateway's
`request_json` (in this process only) also sorts them by room:
A's conversation rooms, A's Space rooms, other sellers' rooms (should be none) and others.

Baseline, in the same run: the same N rooms, another registered user invited straight
through Synapse with the appservice token (one `POST /invite` per room), then kicked
(`POST /kick`), with as many requests in flight as the bridge had connections to Synapse at
its peak during the add. With `--rounds R` all four run R times, the baseline first in
even rounds. Beside every run a probe sends buyer messages to an unrelated seller, one at a
time, and times them to that seller's /sync. It prints figures, judges nothing.

    python bench/roles.py [--conversations N] [--other-sellers K] [--other-conversations M]
                          [--rounds R] [--restart] [--py-spy FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit

import aiohttp
from stage import (
    HTTP_TIMEOUT,
    SITE,
    BenchError,
    Homeserver,
    Marketplace,
    SyncDetector,
    bridge_config,
    cpu_seconds,
    database_error,
    describe_database,
    embedded_synapse,
    join_all,
    progress,
    quiet_logging,
    resolve_database,
    run_bench,
    synapse_pid,
    sync_filter,
)

from bridge.app import Bridge
from bridge.config import Config
from bridge.core.ids import SellerID, SiteID
from bridge.core.ports import HomeserverUnavailable, MatrixRejected
from bridge.demo.synapse import EmbeddedSynapse, free_port
from bridge.matrix.gateway import MatrixGateway
from bridge.matrix.power_levels import MEMBER_LEVEL

logger = logging.getLogger("bench.roles")

SELLER_A = "seller-a"
PROBE_SELLER = "seller-probe"
# The probe's p99 while bulk work runs, at most this many times its unloaded p99.
PROBE_GOAL = 2.0
BUYERS = 10
PROBE_IDLE = 5
PROBE_GAP = 0.5
SETTLE_POLL = 0.05
SETTLE_QUIET_POLLS = 10
SETTLE_TIMEOUT = 120.0
VERIFY_CONCURRENCY = 16
SYNC_TIMEOUT_MS = 30_000
ANSWERED = "answered"
A_ROOMS = "A's conversation rooms"
A_SPACE = "A's Space rooms"
OTHER_SELLERS = "other sellers' rooms"
PROBE_ROOMS = "the probe's rooms"
PLACES = (A_ROOMS, A_SPACE, OTHER_SELLERS, "other rooms")

T = TypeVar("T")
ROOM_IN_PATH = re.compile(r"/(?:rooms|join)/([^/]+)")


@dataclass(frozen=True)
class Options:
    conversations: int
    other_sellers: int
    other_conversations: int
    setup_concurrency: int
    baseline_concurrency: int | None
    database: str
    timeout: float
    restart: bool
    py_spy: Path | None
    rounds: int = 1


# --- the homeserver requests the bridge makes ------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    endpoint: str
    """What the request does, e.g. `PUT state/m.room.power_levels`, `POST invite`."""
    room_id: str | None
    outcome: str = ANSWERED
    """`answered`, `refused` (4xx), `HTTP 5xx/429`, or `no answer (<error>)` when it never
    got one: e.g. `ConnectionTimeoutError`, a wait for a pooled connection over the
    gateway's connect timeout, so the request never reached Synapse."""
    finished: float = 0.0
    """perf_counter when the answer (or the error) came."""

    @property
    def reached(self) -> bool:
        return not self.outcome.startswith("no answer")


def describe(method: str, path: str, outcome: str = ANSWERED, finished: float = 0.0) -> Request:
    """The room a client-server API path is about, and what the request does there."""
    path = urlsplit(path).path
    match = ROOM_IN_PATH.search(path)
    if match is None:
        endpoint = f"{method} {path.removeprefix('/_matrix/client/')}"
        return Request(method, endpoint, None, outcome, finished)
    room_id = unquote(match.group(1))
    rest = [unquote(part) for part in path[match.end() :].strip("/").split("/") if part]
    if path[match.start() :].startswith("/join/"):
        action = "join"
    elif not rest:
        action = "?"
    elif rest[0] == "state" and len(rest) >= 2:
        action = f"state/{rest[1]}"
    elif rest[0] == "send" and len(rest) >= 2:
        action = f"send/{rest[1]}"
    else:
        action = rest[0]  # invite, kick, state (all of it), receipt, typing, …
    return Request(method, f"{method} {action}", room_id, outcome, finished)


def outcome_of(error: Exception) -> str:
    if isinstance(error, MatrixRejected):
        return "refused"
    if error.__cause__ is None:
        return "HTTP 5xx/429"
    return f"no answer ({type(error.__cause__).__name__})"


class RequestLog:
    """Wraps a gateway's `request_json` (this instance only) to note every request's room,
    kind and outcome, and how many had started without an answer yet (those waiting for a
    pooled connection included)."""

    def __init__(self, gateway: MatrixGateway) -> None:
        self.requests: list[Request] = []
        self.started = 0
        self.peak_started = 0
        original = gateway.request_json

        async def counted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
            self.started += 1
            self.peak_started = max(self.peak_started, self.started)
            outcome = ANSWERED
            try:
                return await original(method, path, *args, **kwargs)
            except (HomeserverUnavailable, MatrixRejected) as error:
                outcome = outcome_of(error)
                raise
            finally:
                self.started -= 1
                self.requests.append(describe(method, path, outcome, time.perf_counter()))

        gateway.request_json = counted  # type: ignore[method-assign]

    def reset(self) -> None:
        self.requests = []
        self.peak_started = self.started


def pool_limit(gateway: MatrixGateway) -> int | None:
    """How many connections the gateway's HTTP session may hold open (aiohttp's connector
    limit; 0 means none). Read from a private attribute, for the report only."""
    connector = gateway._session.connector
    return None if connector is None else connector.limit


# --- watching one user's invites and leaves through /sync ------------------------------------


class MembershipWatcher:
    """A user's /sync loop; notes when each room first shows up as an invite or a leave."""

    def __init__(self, homeserver: Homeserver, token: str, who: str) -> None:
        self._homeserver = homeserver
        self._token = token
        self.who = who
        self.invited: dict[str, float] = {}
        self.left: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self._synced = asyncio.Event()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop; returns once its first /sync has answered."""
        self._task = asyncio.create_task(self._run(), name=f"sync-{self.who}")
        await self._synced.wait()
        if self._error is not None:
            raise BenchError(f"{self.who}'s /sync failed: {self._error!r}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _run(self) -> None:
        quiet = sync_filter({"limit": 1})
        since: str | None = None
        try:
            while True:
                params = {"filter": quiet, "timeout": str(SYNC_TIMEOUT_MS)}
                if since is not None:
                    params["since"] = since
                answer = await self._homeserver.call(
                    "GET", "/_matrix/client/v3/sync", self._token, params=params
                )
                now = time.perf_counter()
                rooms = answer.get("rooms", {})
                for room_id in rooms.get("invite", {}):
                    self.invited.setdefault(room_id, now)
                for room_id in rooms.get("leave", {}):
                    self.left.setdefault(room_id, now)
                since = str(answer["next_batch"])
                self._synced.set()
                await self._notify()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._error = error
            self._synced.set()
            await self._notify()

    def forget(self) -> None:
        """Drop what was seen, for the next round's changes to be seen afresh."""
        self.invited.clear()
        self.left.clear()

    async def wait_for(
        self,
        seen: dict[str, float],
        room_ids: Sequence[str],
        what: str,
        timeout: float,  # noqa: ASYNC109
    ) -> tuple[float, float]:
        """Wait until every room is in `seen`; the times the first and the last one were."""

        def done() -> bool:
            return self._error is not None or all(r in seen for r in room_ids)

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            count = sum(r in seen for r in room_ids)
            raise BenchError(
                f"{self.who}'s /sync saw {what} in only {count} of {len(room_ids)} rooms "
                f"within {timeout:g} s"
            ) from None
        if self._error is not None:
            raise BenchError(f"{self.who}'s /sync failed: {self._error!r}") from self._error
        times = [seen[r] for r in room_ids]
        return min(times), max(times)


# --- CPU of this process and of Synapse ------------------------------------------------------


class CpuMeter:
    """CPU seconds used by this process (the bridge and the script's clients) and Synapse."""

    def __init__(self) -> None:
        self._pid = synapse_pid()
        self._here = time.process_time()
        self._synapse = cpu_seconds(self._pid)

    def used(self) -> tuple[float, float | None]:
        here = time.process_time() - self._here
        synapse = cpu_seconds(self._pid)
        if synapse is None or self._synapse is None:
            return here, None
        return here, synapse - self._synapse


# --- the bridge's warnings, and py-spy --------------------------------------------------------


class WarningTally(logging.Filter):
    """Counts the bridge's warnings and lets only the first few of each logger through
    (all of them with `shown=None`), so a storm of retries is a figure, not a screenful."""

    def __init__(self, shown: int | None) -> None:
        super().__init__()
        self.count = 0
        self.by_logger: Counter[str] = Counter()
        self._shown = shown

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not record.name.startswith("bridge"):
            return True
        self.count += 1
        self.by_logger[record.name] += 1
        return self._shown is None or self.by_logger[record.name] <= self._shown


class Profiler:
    """py-spy attached to this process (the bridge runs in it) while the first change runs;
    `--gil` samples only the thread holding the GIL: where this process's Python CPU goes."""

    def __init__(self, output: Path | None, workdir: Path) -> None:
        self._output = output
        self._log = workdir / "py-spy.log"
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Profiler:
        if self._output is None:
            return self
        py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        # The suffix picks the format: .svg a flame graph, .json speedscope, else collapsed
        # stacks (one line per stack, for grep and sort).
        kind = {".svg": "flamegraph", ".json": "speedscope"}.get(self._output.suffix, "raw")
        with self._log.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                py_spy,
                *("record", "--pid", str(os.getpid()), "-o", str(self._output)),
                *("--format", kind, "--gil"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        await asyncio.sleep(1)  # py-spy attaches
        if self._process.returncode is not None:
            raise BenchError(f"py-spy exited: {self._log.read_text(errors='replace')[-500:]}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGINT)  # py-spy writes its output when interrupted
            await process.wait()


# --- the stage -------------------------------------------------------------------------------


@dataclass
class SellerRooms:
    seller_id: str
    owner: str
    rooms: list[str] = field(default_factory=list)
    space_rooms: tuple[str, ...] = ()

    def holds(self, room_id: str) -> bool:
        return room_id in self.rooms or room_id in self.space_rooms


@dataclass(frozen=True)
class SetupResult:
    seconds_a: float
    seconds_others: float
    rooms_a: int
    rooms_others: int
    requests_a: int
    cpu_synapse_a: float | None


@dataclass(frozen=True)
class Cast:
    """Who is who, and their rooms."""

    seller: SellerRooms
    others: Sequence[SellerRooms]
    probe: SellerRooms
    probe_conversation: str
    manager: str
    baseline_user: str
    password: str
    setup: SetupResult


@dataclass(frozen=True)
class Stage:
    options: Options
    bridge: Bridge
    marketplace: Marketplace
    homeserver: Homeserver
    as_token: str
    log: RequestLog
    warnings: WarningTally
    workdir: Path
    cast: Cast
    manager_watch: MembershipWatcher
    baseline_watch: MembershipWatcher
    probe: Probe


async def limited(
    items: Iterable[Any], concurrency: int, work: Callable[[Any], Awaitable[Any]]
) -> list[Any]:
    """`work` on every item with at most `concurrency` running; results in item order."""
    pending = list(enumerate(items))
    results: list[Any] = [None] * len(pending)
    pending.reverse()

    async def worker() -> None:
        while pending:
            index, item = pending.pop()
            results[index] = await work(item)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(pending))))))
    return results


async def settle(bridge: Bridge) -> None:
    """Wait until the bridge has had nothing to deliver or digest for a little while."""
    quiet = 0
    for _ in range(round(SETTLE_TIMEOUT / SETTLE_POLL)):
        idle = not bridge.courier.busy
        if idle:
            try:
                async with asyncio.timeout(0):
                    await bridge.transactions.wait_idle()
            except TimeoutError:
                idle = False
        quiet = quiet + 1 if idle else 0
        if quiet >= SETTLE_QUIET_POLLS:
            return
        await asyncio.sleep(SETTLE_POLL)
    raise BenchError(f"the bridge was still busy {SETTLE_TIMEOUT:g} s later")


async def open_conversations(
    marketplace: Marketplace, seller_id: str, count: int, concurrency: int
) -> list[tuple[str, str]]:
    """`count` conversations with the seller, one product each, spread over the buyers;
    their (conversation id, room id)."""

    async def open_one(index: int) -> tuple[str, str]:
        answer = await marketplace.call(
            "POST",
            "/conversations",
            {
                "seller_id": seller_id,
                "buyer_id": f"buyer-{index % BUYERS}",
                "context": {
                    "type": "product",
                    "id": f"{seller_id}-p{index}",
                    "title": f"Electric kettle #{index}",
                    "url": f"https://shop.example/p/{seller_id}-{index}",
                    "price": "24.90",
                    "currency": "EUR",
                },
            },
        )
        room_id = answer.get("room_id")
        if not isinstance(room_id, str):
            raise BenchError(f"conversation {answer.get('conversation_id')} came without a room")
        return str(answer["conversation_id"]), room_id

    return await limited(range(count), concurrency, open_one)


async def put_seller(
    marketplace: Marketplace, seller_id: str, members: Sequence[dict[str, str]]
) -> dict[str, Any]:
    return await marketplace.call(
        "PUT", f"/sellers/{seller_id}", {"name": f"Shop {seller_id}", "members": list(members)}
    )


async def set_up(
    options: Options, synapse: EmbeddedSynapse, bridge: Bridge, marketplace: Marketplace
) -> Cast:
    """Users, sellers, buyers and every room, made through the marketplace API."""
    password = secrets.token_urlsafe(16)
    run = uuid.uuid4().hex[:6]

    async def user(name: str) -> str:
        return await synapse.register_user(f"{name}-{run}", password, displayname=name)

    seller = SellerRooms(SELLER_A, await user("owner-a"))
    others = [
        SellerRooms(f"seller-{k}", await user(f"owner-{k}"))
        for k in range(1, options.other_sellers + 1)
    ]
    probe = SellerRooms(PROBE_SELLER, await user("owner-probe"))
    manager = await user("manager-a")
    baseline_user = await user("baseline-a")
    for shop in (seller, *others, probe):
        await put_seller(marketplace, shop.seller_id, [{"user_id": shop.owner, "role": "owner"}])
    for k in range(BUYERS):
        await marketplace.call("PUT", f"/buyers/buyer-{k}", {"name": f"Buyer {k}"})

    progress(
        f"Opening {options.conversations} conversations of seller A "
        f"({options.setup_concurrency} at a time)"
    )
    made = sum(bridge.gateway.requests.values())
    cpu = CpuMeter()
    started = time.perf_counter()
    opened = await open_conversations(
        marketplace, seller.seller_id, options.conversations, options.setup_concurrency
    )
    seller.rooms = [room_id for _, room_id in opened]
    await settle(bridge)
    seconds_a = time.perf_counter() - started
    _, cpu_synapse_a = cpu.used()
    requests_a = sum(bridge.gateway.requests.values()) - made

    started = time.perf_counter()
    if others and options.other_conversations:
        progress(
            f"Opening {options.other_conversations} conversations for each of "
            f"{len(others)} other sellers"
        )
        for shop in others:
            opened = await open_conversations(
                marketplace, shop.seller_id, options.other_conversations, options.setup_concurrency
            )
            shop.rooms = [room_id for _, room_id in opened]
    await settle(bridge)
    seconds_others = time.perf_counter() - started

    ((probe_conversation, probe_room),) = await open_conversations(
        marketplace, probe.seller_id, 1, 1
    )
    probe.rooms = [probe_room]
    for shop in (seller, *others, probe):
        space = await bridge.repository.seller_space(SiteID(SITE), SellerID(shop.seller_id))
        shop.space_rooms = space.rooms if space is not None else ()
    setup = SetupResult(
        seconds_a,
        seconds_others,
        len(seller.rooms),
        sum(len(shop.rooms) for shop in others),
        requests_a,
        cpu_synapse_a,
    )
    return Cast(seller, others, probe, probe_conversation, manager, baseline_user, password, setup)


# --- unrelated traffic: a buyer message to another seller ------------------------------------


class Probe:
    """Buyer messages to the probe seller, one at a time, each timed from the POST until the
    seller's owner's /sync has it: how long unrelated traffic waits while a change runs."""

    def __init__(
        self, marketplace: Marketplace, conversation_id: str, detector: SyncDetector, timeout: float
    ) -> None:
        self._marketplace = marketplace
        self._conversation_id = conversation_id
        self._detector = detector
        self._timeout = timeout

    async def once(self) -> float:
        sent = time.perf_counter()
        answer = await self._marketplace.call(
            "POST",
            f"/conversations/{self._conversation_id}/messages",
            {"text": "Is it still available?", "client_id": f"probe-{uuid.uuid4().hex}"},
        )
        arrived = await self._detector.wait_for([str(answer["message_id"])], self._timeout)
        return arrived - sent

    async def until(self, done: asyncio.Event) -> list[float]:
        """One message after another (PROBE_GAP apart) until `done` is set; the last one
        sent is waited for."""
        latencies: list[float] = []
        while not done.is_set():
            latencies.append(await self.once())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PROBE_GAP):
                    await done.wait()
        return latencies


async def probing(probe: Probe, run: Awaitable[T]) -> tuple[T, list[float]]:
    """Run `run` with the probe sending beside it; the result and the probe's latencies."""
    done = asyncio.Event()
    task = asyncio.create_task(probe.until(done))
    try:
        result = await run
    except BaseException:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, BenchError):
            await task
        raise
    done.set()
    return result, await task


# --- the measurements ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeResult:
    name: str
    rooms: int
    put_answered: float
    first_seen: float
    all_seen: float
    bridge_done: float
    """When the last request for A's rooms (conversation rooms and Space) got its answer."""
    space_done: float
    """When the last request for A's Space rooms got its answer."""
    by_method: Counter[str]
    """`bridge.gateway.requests` after minus before, less the probe's own requests."""
    by_endpoint: Counter[str]
    reached_by_endpoint: Counter[str]
    outcomes: Counter[str]
    by_place: Counter[str]
    reached_by_place: Counter[str]
    per_room: Counter[int]
    """How many of A's rooms got 0, 1, 2, … requests that reached Synapse."""
    per_room_made: Counter[int]
    """The same for every request made, those without an answer included."""
    peak_started: int
    pool: int | None
    counted_alike: bool
    """Whether the wrapper saw as many requests as `bridge.gateway.requests` counted."""
    warnings: int
    verified: int
    cpu_here: float
    cpu_synapse: float | None
    probe: list[float]
    # Requests in A's rooms (conversations and the Space's), and how many rooms they touched.
    in_rooms: int = 0
    rooms_touched: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_method.values())

    @property
    def reached(self) -> int:
        return sum(self.reached_by_endpoint.values())


@dataclass(frozen=True)
class BaselineResult:
    name: str
    rooms: int
    concurrency: int
    first_seen: float
    all_seen: float
    cpu_here: float
    cpu_synapse: float | None
    probe: list[float]


async def manager_ok(stage: Stage, want: Callable[[int, str | None], bool]) -> int:
    """How many of A's rooms `want` accepts, given the manager's power level there (as the
    spec reads `m.room.power_levels`: listed, else `users_default`) and membership (read
    with the as_token)."""
    manager = quote(stage.cast.manager, safe="")

    async def check(room_id: str) -> bool:
        room = f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state"
        levels = await stage.homeserver.call("GET", f"{room}/m.room.power_levels/", stage.as_token)
        member = await stage.homeserver.call(
            "GET", f"{room}/m.room.member/{manager}", stage.as_token
        )
        users = levels.get("users")
        listed = users.get(stage.cast.manager) if isinstance(users, dict) else None
        level = listed if listed is not None else levels.get("users_default", 0)
        membership = member.get("membership")
        return want(
            level if isinstance(level, int) else 0,
            membership if isinstance(membership, str) else None,
        )

    return sum(await limited(stage.cast.seller.rooms, VERIFY_CONCURRENCY, check))


def place_of(cast: Cast, request: Request) -> str:
    room_id = request.room_id
    if room_id is None:
        return "no room"
    if room_id in cast.seller.rooms:
        return A_ROOMS
    if room_id in cast.seller.space_rooms:
        return A_SPACE
    if any(shop.holds(room_id) for shop in cast.others):
        return OTHER_SELLERS
    if cast.probe.holds(room_id):
        return PROBE_ROOMS
    return "other rooms"


async def role_change(
    stage: Stage, name: str, adding: bool, *, profile: bool = False
) -> ChangeResult:
    """One `PUT /sellers/A`; timed until the manager's /sync shows all of A's rooms changed."""
    cast = stage.cast
    members = [{"user_id": cast.seller.owner, "role": "owner"}]
    if adding:
        members.append({"user_id": cast.manager, "role": "manager"})
    rooms = cast.seller.rooms
    watch = stage.manager_watch

    async def change() -> tuple[float, float, float, float]:
        started = time.perf_counter()
        await put_seller(stage.marketplace, cast.seller.seller_id, members)
        answered = time.perf_counter()
        first, last = await watch.wait_for(
            watch.invited if adding else watch.left,
            rooms,
            "the invite" if adding else "the kick",
            stage.options.timeout,
        )
        return started, answered, first, last

    before = Counter(stage.bridge.gateway.requests)
    stage.log.reset()
    warnings_before = stage.warnings.count
    async with Profiler(stage.options.py_spy if profile else None, stage.workdir):
        cpu = CpuMeter()
        (started, answered, first, last), probe = await probing(stage.probe, change())
        await settle(stage.bridge)
        cpu_here, cpu_synapse = cpu.used()
    made = stage.bridge.gateway.requests - before
    requests = list(stage.log.requests)
    reached = [r for r in requests if r.reached]
    places = {id(r): place_of(cast, r) for r in requests}
    probes = Counter(r.method for r in requests if places[id(r)] == PROBE_ROOMS)
    ours = [r.finished for r in requests if places[id(r)] in (A_ROOMS, A_SPACE)]
    space = [r.finished for r in requests if places[id(r)] == A_SPACE]
    affected = set(rooms)
    in_rooms = [r for r in requests if places[id(r)] in (A_ROOMS, A_SPACE)]

    def per_room(counted: Sequence[Request]) -> Counter[int]:
        counts = Counter(r.room_id for r in counted if r.room_id in affected)
        return Counter(counts[room_id] for room_id in rooms)

    progress(f"{name}: checking the manager's level and membership in {len(rooms)} rooms")
    if adding:
        verified = await manager_ok(stage, lambda lv, m: lv == MEMBER_LEVEL and m == "invite")
    else:
        verified = await manager_ok(stage, lambda lv, m: m == "leave")
    return ChangeResult(
        name=name,
        rooms=len(rooms),
        put_answered=answered - started,
        first_seen=first - started,
        all_seen=last - started,
        bridge_done=(max(ours) if ours else answered) - started,
        space_done=(max(space) if space else answered) - started,
        by_method=made - probes,
        by_endpoint=Counter(r.endpoint for r in requests if places[id(r)] != PROBE_ROOMS),
        reached_by_endpoint=Counter(r.endpoint for r in reached if places[id(r)] != PROBE_ROOMS),
        outcomes=Counter(r.outcome for r in requests if places[id(r)] != PROBE_ROOMS),
        by_place=Counter(places[id(r)] for r in requests),
        reached_by_place=Counter(places[id(r)] for r in reached),
        per_room=per_room(reached),
        per_room_made=per_room(requests),
        peak_started=stage.log.peak_started,
        pool=pool_limit(stage.bridge.gateway),
        counted_alike=sum(made.values()) == len(requests),
        warnings=stage.warnings.count - warnings_before,
        verified=verified,
        cpu_here=cpu_here,
        cpu_synapse=cpu_synapse,
        probe=probe,
        in_rooms=len(in_rooms),
        rooms_touched=len({r.room_id for r in in_rooms}),
    )


async def baseline(stage: Stage, name: str, inviting: bool, concurrency: int) -> BaselineResult:
    """The same rooms, another user, straight to Synapse: one invite (or kick) per room."""
    rooms = stage.cast.seller.rooms
    action = "invite" if inviting else "kick"
    watch = stage.baseline_watch

    async def one(room_id: str) -> None:
        await stage.homeserver.call(
            "POST",
            f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/{action}",
            stage.as_token,
            body={"user_id": stage.cast.baseline_user},
        )

    async def send_all() -> tuple[float, float, float]:
        started = time.perf_counter()
        await limited(rooms, concurrency, one)
        first, last = await watch.wait_for(
            watch.invited if inviting else watch.left, rooms, f"the {action}", stage.options.timeout
        )
        return started, first, last

    stage.log.reset()
    cpu = CpuMeter()
    (started, first, last), probe = await probing(stage.probe, send_all())
    await settle(stage.bridge)
    cpu_here, cpu_synapse = cpu.used()
    stray = [r for r in stage.log.requests if place_of(stage.cast, r) != PROBE_ROOMS]
    if stray:
        logger.warning("The bridge made %d requests during %s", len(stray), name)
    return BaselineResult(
        name,
        len(rooms),
        concurrency,
        first - started,
        last - started,
        cpu_here,
        cpu_synapse,
        probe,
    )


# --- running it ------------------------------------------------------------------------------


async def run(options: Options, warnings: WarningTally) -> None:
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-") as temp:
        workdir = Path(temp)
        database = resolve_database(options.database, workdir)
        synapse_port = free_port()
        config = bridge_config(synapse_port, database, workdir)
        synapse = embedded_synapse(workdir, synapse_port, config)
        progress("Starting Synapse and the bridge")
        async with synapse:
            bridges: list[Bridge] = []

            async def start_bridge() -> Bridge:
                bridge = Bridge(config)
                bridges.append(bridge)
                await bridge.start()
                return bridge

            try:
                await bench(options, warnings, workdir, config, synapse, start_bridge)
            finally:
                for bridge in bridges:
                    await bridge.stop()  # a second stop of a stopped bridge does nothing


async def bench(
    options: Options,
    warnings: WarningTally,
    workdir: Path,
    config: Config,
    synapse: EmbeddedSynapse,
    start_bridge: Callable[[], Awaitable[Bridge]],
) -> None:
    bridge = await start_bridge()
    # No pool limit of its own: the baseline's concurrency is what `limited` allows.
    unpooled = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as shop_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT, connector=unpooled) as matrix_session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as sync_session,
    ):
        marketplace = Marketplace(shop_session, config.web.public_url, config.sites[0].api_token)
        homeserver = Homeserver(matrix_session, synapse.address)
        version = await homeserver.version()
        cast = await set_up(options, synapse, bridge, marketplace)
        if options.restart:
            progress("Restarting the bridge (same database, cold in-memory caches)")
            await bridge.stop()
            bridge = await start_bridge()
        log = RequestLog(bridge.gateway)

        syncing = Homeserver(sync_session, synapse.address)
        probe_token = await homeserver.login(cast.probe.owner, password=cast.password)
        await join_all(homeserver, probe_token, cast.probe.rooms)
        detector = SyncDetector(syncing, probe_token, whose="the probe seller's")
        manager_watch = MembershipWatcher(
            syncing, await homeserver.login(cast.manager, cast.password), "the manager"
        )
        baseline_watch = MembershipWatcher(
            syncing, await homeserver.login(cast.baseline_user, cast.password), "the baseline user"
        )
        watches = (manager_watch, baseline_watch)
        detector.start()
        try:
            for watch in watches:
                await watch.start()
            await settle(bridge)
            stage = Stage(
                options,
                bridge,
                marketplace,
                homeserver,
                config.appservice.as_token,
                log,
                warnings,
                workdir,
                cast,
                manager_watch,
                baseline_watch,
                Probe(marketplace, cast.probe_conversation, detector, options.timeout),
            )
            progress(f"Unloaded: {PROBE_IDLE} messages to the probe seller, one at a time")
            idle = [await stage.probe.once() for _ in range(PROBE_IDLE)]
            rounds = await run_rounds(stage)
        finally:
            for watch in watches:
                await watch.stop()
            await detector.stop()
    add, remove, invite, kick = rounds[0]
    report(
        options,
        version,
        describe_database(config.database),
        stage,
        idle,
        (add, remove),
        (invite, kick),
    )
    if len(rounds) > 1:
        report_rounds(rounds)


Round = tuple[ChangeResult, ChangeResult, BaselineResult, BaselineResult]


async def run_rounds(stage: Stage) -> list[Round]:
    """The four changes, `--rounds` times. Odd rounds the bridge goes first, even ones the
    baseline: whichever runs second meets Synapse's caches warmed by the other."""
    options = stage.options
    concurrency = options.baseline_concurrency
    rounds: list[Round] = []
    for number in range(1, options.rounds + 1):
        for watch in (stage.manager_watch, stage.baseline_watch):
            watch.forget()
        tag = f"Round {number}/{options.rounds}: " if options.rounds > 1 else ""
        early = None
        if number % 2 == 0 and concurrency is not None:
            early = await baselines(stage, tag, concurrency)
        progress(f"{tag}Change 1: PUT /sellers/A adds a manager")
        add = await role_change(stage, "add manager", adding=True, profile=number == 1)
        progress(f"{tag}Change 2: PUT /sellers/A removes the manager")
        remove = await role_change(stage, "remove manager", adding=False)
        if concurrency is None:
            # The bridge's connections to Synapse at its peak in its first change.
            concurrency = max(1, min(add.peak_started, add.pool or add.peak_started))
        invite, kick = early or await baselines(stage, tag, concurrency)
        rounds.append((add, remove, invite, kick))
    return rounds


async def baselines(
    stage: Stage, tag: str, concurrency: int
) -> tuple[BaselineResult, BaselineResult]:
    rooms = len(stage.cast.seller.rooms)
    progress(f"{tag}Baseline: {rooms} invites, {concurrency} at a time")
    invite = await baseline(stage, "baseline invite", True, concurrency)
    progress(f"{tag}Baseline: {rooms} kicks, {concurrency} at a time")
    kick = await baseline(stage, "baseline kick", False, concurrency)
    return invite, kick


def report_rounds(rounds: Sequence[Round]) -> None:
    """The time ratios of every round (the report above is round 1's), and their medians."""
    print()
    print("  by round (odd: the bridge first; even: the baseline first)")
    print("  round  add / invite  remove / kick   Synapse CPU s: bridge add+remove, baseline")
    adds, removes = [], []
    for number, (add, remove, invite, kick) in enumerate(rounds, start=1):
        adds.append(add.all_seen / invite.all_seen)
        removes.append(remove.all_seen / kick.all_seen)
        cpu = "n/a"
        if None not in (add.cpu_synapse, remove.cpu_synapse, invite.cpu_synapse, kick.cpu_synapse):
            bridge_cpu = (add.cpu_synapse or 0) + (remove.cpu_synapse or 0)
            baseline_cpu = (invite.cpu_synapse or 0) + (kick.cpu_synapse or 0)
            cpu = f"{bridge_cpu:.1f}, {baseline_cpu:.1f}"
        print(f"  {number:>5}  {adds[-1]:>12.2f}  {removes[-1]:>13.2f}   {cpu}")
    print(
        f"  median {statistics.median(adds):>12.2f}  {statistics.median(removes):>13.2f}"
        "   (goal ≤ 1.5 × the time)"
    )


# --- the report ------------------------------------------------------------------------------


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {count}" for key, count in sorted(counter.items())) or "none"


def _cpu(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _reached(total: Counter[str], reached: Counter[str], key: str) -> str:
    made = total.get(key, 0)
    got = reached.get(key, 0)
    return f"{key} {made}" if made == got else f"{key} {made} ({got} reached Synapse)"


def _per_room(rooms: Counter[int]) -> str:
    return ", ".join(f"{count} rooms × {n}" for n, count in sorted(rooms.items()))


def _p99(latencies: Sequence[float]) -> float:
    """The 99th percentile (nearest rank): with fewer than 100 messages, the slowest."""
    ordered = sorted(latencies)
    return ordered[max(0, -(-99 * len(ordered) // 100) - 1)]


def _latencies(latencies: Sequence[float]) -> str:
    if not latencies:
        return "none sent"
    return (
        f"median {statistics.median(latencies):6.2f} s, p99 {_p99(latencies):6.2f} s,"
        f" max {max(latencies):6.2f} s"
        f"  ({len(latencies)} message{'' if len(latencies) == 1 else 's'})"
    )


def _report_change(c: ChangeResult) -> None:
    print()
    print(
        f"  {c.name}: {c.total} homeserver requests made, {c.total / c.rooms:.2f} per"
        f" affected room; {c.reached} reached Synapse, {c.reached / c.rooms:.2f} per room"
    )
    if c.rooms_touched:
        print(
            f"    per room touched {c.in_rooms / c.rooms_touched:.2f}  (goal ≤ 2): {c.in_rooms}"
            f" requests in {c.rooms_touched} rooms, A's conversation rooms and its Space's"
        )
    print(f"    by method       {_counts(c.by_method)}")
    print(
        "    by endpoint     "
        + ", ".join(
            _reached(c.by_endpoint, c.reached_by_endpoint, key) for key in sorted(c.by_endpoint)
        )
    )
    print(f"    outcome         {_counts(c.outcomes)}")
    extra = [key for key in c.by_place if key not in (*PLACES, PROBE_ROOMS)]
    print(
        "    by room         "
        + ", ".join(_reached(c.by_place, c.reached_by_place, place) for place in (*PLACES, *extra))
    )
    print(
        f"    A's Space       {c.by_place.get(A_SPACE, 0)} requests, the last answered"
        f" {c.space_done:.2f} s after the PUT"
    )
    print(f"    per A room      {_per_room(c.per_room)} reaching Synapse")
    if c.per_room_made != c.per_room:
        print(f"                    {_per_room(c.per_room_made)} made")
    pool = "no limit" if not c.pool else f"a pool of {c.pool} connections"
    print(
        f"    at once         up to {c.peak_started} requests started and unanswered"
        f" (waiting for a connection included); the bridge's HTTP session has {pool}"
    )
    touched = c.by_place.get(OTHER_SELLERS, 0)
    print(f"    other sellers   {touched} requests touched their rooms")
    if c.warnings:
        print(f"    bridge warnings {c.warnings} logged")
    if not c.counted_alike:
        print("    note            the wrapper and bridge.gateway.requests disagree")
    state = "invited at power level 50" if c.name.startswith("add") else "gone (left)"
    print(f"    verified        {c.verified}/{c.rooms} rooms have the manager {state}")


def report(
    options: Options,
    version: str,
    database: str,
    stage: Stage,
    idle: Sequence[float],
    changes: Sequence[ChangeResult],
    baselines: Sequence[BaselineResult],
) -> None:
    cast = stage.cast
    setup = cast.setup
    others = len(cast.others)
    print()
    print("Bazaar Bridge role-change benchmark")
    print(f"  homeserver    {version} (embedded, loopback)")
    print(f"  database      {database}")
    if options.restart:
        print("  bridge        restarted after set-up (--restart): in-memory caches cold")
    print(
        f"  seller A      N = {len(cast.seller.rooms)} conversation rooms"
        f" (+ {len(cast.seller.space_rooms)} Space rooms), {BUYERS} buyers,"
        " one product per conversation"
    )
    print(
        f"  control       K = {others} other seller{'' if others == 1 else 's'}"
        f" × {options.other_conversations} conversation rooms (+ their Space rooms);"
        " a probe seller with 1"
    )
    print(
        f"  set-up        A: {setup.rooms_a} rooms in {setup.seconds_a:.1f} s"
        f" ({setup.rooms_a / setup.seconds_a:.1f} rooms/s, {options.setup_concurrency}"
        f" POST /conversations in flight, {setup.requests_a / max(1, setup.rooms_a):.2f}"
        f" homeserver requests per room, Synapse CPU {_cpu(setup.cpu_synapse_a)} s)"
    )
    if setup.rooms_others:
        print(
            f"                others: {setup.rooms_others} rooms in {setup.seconds_others:.1f} s"
            f" ({setup.rooms_others / setup.seconds_others:.1f} rooms/s)"
        )
    print()
    print("  seconds from the PUT (baseline: its first request) until …")
    print(
        "                                 PUT       first      last       bridge"
        "   requests        CPU s"
    )
    print(
        "  run                 rooms/s  answered  room seen  room seen  done  "
        "     made  reached   here  Synapse"
    )
    for c in changes:
        print(
            f"  {c.name:<18} {c.rooms / c.all_seen:>8.1f} {c.put_answered:>9.2f}"
            f" {c.first_seen:>10.2f} {c.all_seen:>10.2f} {c.bridge_done:>6.2f}"
            f" {c.total:>9} {c.reached:>8} {c.cpu_here:>6.1f} {_cpu(c.cpu_synapse):>8}"
        )
    for b in baselines:
        print(
            f"  {b.name:<18} {b.rooms / b.all_seen:>8.1f} {'':>9}"
            f" {b.first_seen:>10.2f} {b.all_seen:>10.2f} {'':>6}"
            f" {b.rooms:>9} {b.rooms:>8} {b.cpu_here:>6.1f} {_cpu(b.cpu_synapse):>8}"
        )
    print(
        "  (a run's time is 'last room seen': the user's /sync has all N rooms."
        " 'CPU s here' is this\n   process: the bridge, and the script's clients and /sync loops)"
    )
    print()
    for c, b in zip(changes, baselines, strict=True):
        print(
            f"  bridge/baseline   {c.name} / {b.name}: {c.all_seen / b.all_seen:.2f} × the time,"
            f" {c.total / b.rooms:.2f} × the requests ({c.reached / b.rooms:.2f} × those"
            " reaching Synapse)"
        )
    source = (
        "the bridge's connections at its peak in the first change"
        if options.baseline_concurrency is None
        else "--baseline-concurrency"
    )
    print(
        f"  baseline          one POST per room with the as_token,"
        f" {baselines[0].concurrency} in flight ({source})"
    )
    for c in changes:
        _report_change(c)
    print()
    print("  a buyer message to the probe seller, POST → the owner's /sync, one at a time:")
    print(f"    {'unloaded':<26} {_latencies(idle)}")
    during: list[tuple[str, list[float]]] = [(c.name, c.probe) for c in changes]
    during += [(b.name, b.probe) for b in baselines]
    for name, latencies in during:
        print(f"    {'during ' + name:<26} {_latencies(latencies)}")
    if idle:
        print(f"  probe p99 during / unloaded (goal ≤ {PROBE_GOAL:.1f}, issue 14's fair queues):")
        for name, latencies in during:
            if latencies:
                print(f"    {name:<29} {_p99(latencies) / _p99(idle):6.2f}")


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="How long a seller's role change takes to reach every room, and how many "
        "homeserver requests it costs, against invites straight to Synapse."
    )
    parser.add_argument(
        "--conversations", "-n", type=int, default=1000, help="seller A's conversations (1000)"
    )
    parser.add_argument(
        "--other-sellers", "-k", type=int, default=2, help="sellers that must not be touched (2)"
    )
    parser.add_argument(
        "--other-conversations", type=int, default=100, help="conversations per other seller (100)"
    )
    parser.add_argument(
        "--setup-concurrency",
        type=int,
        default=8,
        help="POST /conversations in flight during set-up (8)",
    )
    parser.add_argument(
        "--baseline-concurrency",
        type=int,
        default=None,
        help="requests in flight in the baseline (default: the bridge's peak in the first change)",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="'sqlite' (a file in the temp dir, the default) or a postgresql+asyncpg:// URL",
    )
    parser.add_argument(
        "--timeout", type=float, default=600, help="seconds one change may take (600)"
    )
    parser.add_argument(
        "--restart",
        action="store_true",
        help="restart the bridge after set-up (same database), so the changes meet cold"
        " in-memory caches, as after a deploy",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="FILE",
        help="profile this process (the bridge) during the first change with py-spy: "
        ".svg a flame graph, .json speedscope, else collapsed stacks",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="times to run the four changes, the bridge first in odd rounds and the baseline"
        " first in even ones; the detailed report is round 1's (1)",
    )
    parser.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="log at INFO level and show every warning of the bridge (else the first 3 of each"
        " logger, and their count in the report)",
    )
    args = parser.parse_args(argv)
    if min(args.conversations, args.setup_concurrency) < 1:
        parser.error("--conversations and --setup-concurrency must be at least 1")
    if min(args.other_sellers, args.other_conversations) < 0:
        parser.error("--other-sellers and --other-conversations must not be negative")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.baseline_concurrency is not None and args.baseline_concurrency < 1:
        parser.error("--baseline-concurrency must be at least 1")
    problem = database_error(args.database)
    if problem is not None:
        parser.error(problem)
    options = Options(
        conversations=args.conversations,
        other_sellers=args.other_sellers,
        other_conversations=args.other_conversations,
        setup_concurrency=args.setup_concurrency,
        baseline_concurrency=args.baseline_concurrency,
        database=args.database,
        timeout=args.timeout,
        restart=args.restart,
        py_spy=args.py_spy,
        rounds=args.rounds,
    )
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    warnings = WarningTally(None if verbose else 3)
    for handler in logging.getLogger().handlers:
        handler.addFilter(warnings)
    return run_bench("roles", run(options, warnings))


if __name__ == "__main__":
    sys.exit(main())
