"""Duties shared by the replicas on one PostgreSQL database (`core/duties.py`).

Each duty is a session advisory lock, taken on one connection of this replica's own and
held for as long as it lives: a replica that dies, however it dies, ends its session, and
PostgreSQL lets its locks go. Every replica looks each `look_every` seconds for duties it
wants that are free, so another takes over what a dead one held within about that time.

Telling goes through NOTIFY on one channel, heard by every replica through LISTEN on the
same connection. A replica whose connection drops lets go of everything it held at once
(another may already be taking it), and when it is back, it hears "" for every topic: it
may have missed something. Every `look_again` seconds the holder of each duty hears "" as
well, which finds work whose telling was lost in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from bridge.core.duties import Gained, Heard, Lost
from bridge.core.tasks import TaskKeeper

logger = logging.getLogger(__name__)

CHANNEL = "bazaar_replicas"
# The first key of every advisory lock the bridge takes; the second names the duty.
LOCK_SPACE = 0x0BA2AA
# NOTIFY refuses payloads from 8000 bytes; details are ids, far shorter.
LONGEST_PAYLOAD = 7900
STATEMENT_TIMEOUT = 5.0
_SEPARATOR = "\x1f"


def lock_key(duty: str) -> int:
    """The duty's advisory lock key, a signed 32-bit integer as PostgreSQL takes it."""
    key = zlib.crc32(duty.encode())
    return key - (1 << 32) if key >= 1 << 31 else key


def asyncpg_dsn(url: str) -> str:
    """The SQLAlchemy URL (postgresql+asyncpg://…) as asyncpg's own connect takes it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def duties_application_name(pid: int | None = None) -> str:
    """The duties connection's name in pg_stat_activity: this host and process."""
    return f"{_APPLICATION_PREFIX}{socket.gethostname()[:32]} {os.getpid() if pid is None else pid}"


_APPLICATION_PREFIX = "bazaar duties "
# Every replica's duties connection, as LIKE finds them; what shares are counted among.
_APPLICATION_PATTERN = _APPLICATION_PREFIX + "%"


@dataclass(frozen=True)
class _Want:
    names: frozenset[str]
    gained: Gained
    lost: Lost | None
    shared: bool


# Each look: how many replicas are connected to this database, and which of the bridge's
# locks are held by any of them.
_LOOK = (
    "SELECT (SELECT count(*) FROM pg_stat_activity"
    "        WHERE datname = current_database() AND application_name LIKE $2) AS replicas,"
    " ARRAY(SELECT l.objid::bigint FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
    "       WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.granted"
    "       AND d.datname = current_database()) AS held"
)
_TAKE = (
    "SELECT duty, pg_try_advisory_lock($3, key) AS taken"
    " FROM unnest($1::text[], $2::int[]) AS wanted(duty, key)"
)
_LET_GO = "SELECT pg_advisory_unlock($1, key) FROM unnest($2::int[]) AS key"


class ReplicaDuties:
    def __init__(
        self, url: str, tasks: TaskKeeper, look_every: float = 1.0, look_again: float = 15.0
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._tasks = tasks
        self._look_every = look_every
        self._look_again = look_again
        self._wants: list[_Want] = []
        self._duties: set[str] = set()
        self._held: set[str] = set()
        self._hearers: dict[str, Heard] = {}
        self._connection: asyncpg.Connection | None = None
        self._server_pid = 0
        # One statement at a time on the connection: the keeper's and the teller's.
        self._using = asyncio.Lock()
        self._outgoing: list[str] = []
        self._to_send = asyncio.Event()
        self._started = False

    @property
    def alone(self) -> bool:
        return False

    def want(
        self,
        names: Iterable[str],
        gained: Gained,
        lost: Lost | None = None,
        *,
        shared: bool = False,
    ) -> None:
        assert not self._started, "duties are wanted before the start"
        want = _Want(frozenset(names), gained, lost, shared)
        self._wants.append(want)
        self._duties |= want.names

    def holds(self, name: str) -> bool:
        return name in self._held

    def hear(self, topic: str, heard: Heard) -> None:
        self._hearers[topic] = heard

    def tell_holder(self, duty: str, detail: str = "") -> None:
        if duty in self._held:
            self._hear(duty, detail)
        else:
            self._send(duty, detail)

    def tell_others(self, topic: str, detail: str = "") -> None:
        self._send(topic, detail)

    @property
    def held(self) -> frozenset[str]:
        return frozenset(self._held)

    @property
    def server_pid(self) -> int:
        """The server process of the duties' connection (0 before the first): the session
        that holds the locks."""
        return self._server_pid

    async def start(self) -> None:
        """Connect, take what is free now (its `gained` run before this returns), then keep
        looking in the background."""
        self._started = True
        await self._connect()
        await self._take_free()
        self._tasks.spawn(self._keep(), name="duties-keeper")
        self._tasks.spawn(self._tell(), name="duties-teller")

    async def stop(self) -> None:
        """Let every duty go (closing the session does), for another replica to take."""
        if self._held:
            self._let_go(frozenset(self._held), "stopping", logging.INFO)
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close(timeout=STATEMENT_TIMEOUT)

    async def _connect(self) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=STATEMENT_TIMEOUT,
            server_settings={
                # Who holds what is in pg_locks joined with pg_stat_activity by this.
                "application_name": duties_application_name(),
                # A replica whose host vanishes (no FIN sent) is noticed in about 20 s.
                "tcp_keepalives_idle": "10",
                "tcp_keepalives_interval": "5",
                "tcp_keepalives_count": "2",
            },
        )
        await connection.add_listener(CHANNEL, self._on_notify)
        connection.add_termination_listener(self._on_terminated)
        self._server_pid = connection.get_server_pid()
        self._connection = connection

    async def _keep(self) -> None:
        looked_again = time.monotonic()
        while True:
            await asyncio.sleep(self._look_every)
            try:
                if self._connection is None or self._connection.is_closed():
                    self._lose_all()
                    await self._connect()
                    logger.info("Duties: connected to the store again")
                    self._hear_everything(self._hearers)
                await self._take_free()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                logger.warning("Duties: the store is away (%s); letting every duty go", error)
                await self.stop()
                continue
            if time.monotonic() - looked_again >= self._look_again:
                looked_again = time.monotonic()
                self._hear_everything(self._held)

    async def _take_free(self) -> None:
        """Let go of what is over this replica's share and take what is free within it."""
        async with self._using:
            connection = self._connection
            assert connection is not None
            look = await connection.fetchrow(
                _LOOK, LOCK_SPACE, _APPLICATION_PATTERN, timeout=STATEMENT_TIMEOUT
            )
            assert look is not None
            replicas = max(1, int(look["replicas"]))
            held_anywhere = {int(key) for key in look["held"]}
            over, wanted = self._shares(replicas, held_anywhere)
            if over:
                await connection.execute(
                    _LET_GO,
                    LOCK_SPACE,
                    [lock_key(duty) for duty in over],
                    timeout=STATEMENT_TIMEOUT,
                )
                self._let_go(over, f"shared out among {replicas} replicas", logging.INFO)
            if not wanted:
                return
            rows = await connection.fetch(
                _TAKE,
                wanted,
                [lock_key(duty) for duty in wanted],
                LOCK_SPACE,
                timeout=STATEMENT_TIMEOUT,
            )
        taken = frozenset(row["duty"] for row in rows if row["taken"])
        if not taken:
            return
        self._held |= taken
        logger.info("Duties taken here: %s", ", ".join(sorted(taken)))
        for want in self._wants:
            if names := want.names & taken:
                try:
                    await want.gained(names)
                except Exception:
                    logger.exception("Taking up %s failed", ", ".join(sorted(names)))

    def _shares(self, replicas: int, held_anywhere: set[int]) -> tuple[frozenset[str], list[str]]:
        """What to let go (held here beyond this replica's share of a shared want) and what
        to try to take (free, and within the share)."""
        over: set[str] = set()
        wanted: list[str] = []
        for want in self._wants:
            held = sorted(want.names & self._held)
            free = sorted(
                duty
                for duty in want.names - self._held
                if lock_key(duty) & 0xFFFFFFFF not in held_anywhere
            )
            if not want.shared:
                wanted += free
                continue
            share = -(-len(want.names) // replicas)
            over.update(held[share:])
            wanted += free[: max(0, share - len(held))]
        return frozenset(over), sorted(set(wanted))

    def _lose_all(self) -> None:
        if self._held:
            self._let_go(frozenset(self._held), "the store's connection is gone", logging.WARNING)

    def _let_go(self, duties: frozenset[str], why: str, level: int) -> None:
        self._held -= duties
        logger.log(level, "Duties let go (%s): %s", why, ", ".join(sorted(duties)))
        for want in self._wants:
            if want.lost is not None and (names := want.names & duties):
                want.lost(names)

    def _on_terminated(self, _connection: object) -> None:
        self._lose_all()

    def _send(self, topic: str, detail: str) -> None:
        payload = f"{topic}{_SEPARATOR}{detail}"
        if len(payload.encode()) > LONGEST_PAYLOAD:
            logger.warning("Not telling %s: %d bytes is too long to tell", topic, len(payload))
            return
        self._outgoing.append(payload)
        self._to_send.set()

    async def _tell(self) -> None:
        """Send what was told, as many payloads in one statement as have gathered."""
        while True:
            await self._to_send.wait()
            self._to_send.clear()
            batch, self._outgoing = self._outgoing, []
            try:
                async with self._using:
                    connection = self._connection
                    if connection is None:
                        raise ConnectionError("no connection")
                    await connection.execute(
                        "SELECT pg_notify($1, payload) FROM unnest($2::text[]) AS payload",
                        CHANNEL,
                        batch,
                        timeout=STATEMENT_TIMEOUT,
                    )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as error:
                # The holders' own look in the store, every `look_again`, finds the work.
                logger.warning("Duties: %d tellings lost (%s)", len(batch), error)

    def _on_notify(self, _connection: object, pid: int, _channel: str, payload: object) -> None:
        if pid == self._server_pid or not isinstance(payload, str):
            return  # our own telling: heard here when it was told
        topic, _, detail = payload.partition(_SEPARATOR)
        self._hear(topic, detail)

    def _hear_everything(self, topics: Iterable[str]) -> None:
        for topic in list(topics):
            self._hear(topic, "")

    def _hear(self, topic: str, detail: str) -> None:
        """Run the topic's hearer; a duty's only where it is held."""
        heard = self._hearers.get(topic)
        if heard is None or (topic in self._duties and topic not in self._held):
            return
        try:
            heard(detail)
        except Exception:
            logger.exception("Hearing %s failed", topic)
