"""Engine set-up for both databases and the migrations applied at start-up."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bridge.store.sqlite_hops import one_hop

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


class DatabaseInUse(RuntimeError):
    """Another bridge process holds this SQLite database."""


class SqliteClaim:
    """One bridge process per SQLite file: a second one would deliver every message again
    and race the first for SQLite's one writer. The claim is an exclusive lock on a file
    beside the database, which the kernel lets go when the process ends however it ends."""

    def __init__(self, url: str) -> None:
        database = make_url(url).database
        self._path = (
            Path(f"{database}.bridge-lock") if database and database != ":memory:" else None
        )
        self._descriptor: int | None = None

    def take(self) -> None:
        if self._path is None:
            return
        descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise DatabaseInUse(
                f"Another bridge process is running on {self._path.with_suffix('')}: on SQLite "
                "only one may. Stop it first, or run several replicas on PostgreSQL."
            ) from None
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None


def is_outage(error: BaseException) -> bool:
    """Whether the database failed for a while rather than for this statement: the server
    gone or restarting, a connection dropped, no connection free in time. Trying the same
    work again later may succeed."""
    if isinstance(error, PoolTimeout | ConnectionError):
        return True
    return isinstance(error, DBAPIError) and (
        error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    )


def create_engine(url: str) -> AsyncEngine:
    """The engine that writes (and, on PostgreSQL, also reads)."""
    if is_sqlite(url):
        # One connection: writers queue here instead of sleeping in SQLite's busy handler,
        # and BEGIN IMMEDIATE takes the write lock up front so two transactions never
        # deadlock upgrading a read lock (SQLite would fail at once).
        engine = create_async_engine(
            url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0, pool_timeout=60
        )
        _tune_sqlite(engine, begin="BEGIN IMMEDIATE")
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def create_read_engine(url: str, writer: AsyncEngine) -> AsyncEngine:
    """On SQLite, a separate pool of readers; WAL serves them beside the one writer."""
    if not is_sqlite(url):
        return writer
    engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=5)
    _tune_sqlite(engine, begin="BEGIN")
    return engine


def _tune_sqlite(engine: AsyncEngine, *, begin: str) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        one_hop(dbapi_connection)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(connection: Connection) -> None:
        # Straight on the driver's cursor, as every transaction begins: through SQLAlchemy
        # it would cost a whole statement more. A failure is raised as SQLAlchemy raises a
        # statement's (`is_outage` reads those).
        driver_error = connection.dialect.loaded_dbapi.Error
        cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(begin)
        except driver_error as error:
            raise DBAPIError.instance(begin, None, error, driver_error) from error
        finally:
            cursor.close()


def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(connection: Connection | None = None) -> AlembicConfig:
    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest version; safe to run on every start."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(_alembic_config(connection), "head")

    async with engine.begin() as connection:
        await connection.run_sync(upgrade)
    logger.info("Database schema is up to date")
