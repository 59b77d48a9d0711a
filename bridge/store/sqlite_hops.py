"""One trip to SQLite's thread per statement.

aiosqlite runs each sqlite3 call in the connection's own thread, and SQLAlchemy's adapter
makes four such calls per statement (open a cursor, execute, fetch, close), each one a
hand-off between threads and a wake-up of the event loop. Here a statement's four calls run
as one function in that thread, and the cursor SQLAlchemy sees holds what they returned.
The store's CPU per buyer message falls to 0.6–0.75 of what the shipped cursor costs
(`bench/store.py`; the less, the slower the event loop).

It leans on two of aiosqlite's internals, `Connection._execute` (run a function in the
connection's thread) and `Connection._conn` (the sqlite3 connection there); the whole test
suite runs through this cursor, so an aiosqlite that changed them fails every store test.
"""

from __future__ import annotations

import collections
import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)
from sqlalchemy.util.concurrency import await_

# What one statement leaves behind: description, rowcount, lastrowid, rows.
_Outcome = tuple[Any, int, int | None, list[Any]]


def _run(connection: sqlite3.Connection, many: bool, operation: str, parameters: Any) -> _Outcome:
    """In SQLite's thread: the whole statement, its cursor opened and closed around it."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        else:
            cursor.execute(operation, parameters)
        rows = cursor.fetchall() if cursor.description else []
        return cursor.description, cursor.rowcount, cursor.lastrowid, rows
    finally:
        cursor.close()


class OneHopCursor(AsyncAdapt_aiosqlite_cursor):
    """SQLAlchemy's aiosqlite cursor, each statement one trip to SQLite's thread."""

    __slots__ = ("_outcome",)

    def __init__(self, adapt_connection: AsyncAdapt_aiosqlite_connection) -> None:
        # No aiosqlite cursor is opened up front: `_run` opens its own in the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._rows = collections.deque()
        self._outcome: _Outcome = (None, -1, None, [])

    @property
    def description(self) -> Any:
        return self._outcome[0]

    @property
    def rowcount(self) -> int:
        return self._outcome[1]

    @property
    def lastrowid(self) -> Any:
        return self._outcome[2]

    def execute(self, operation: Any, parameters: Any = None) -> None:
        self._send(False, operation, () if parameters is None else parameters)

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> None:
        self._send(True, operation, seq_of_parameters)

    def _send(self, many: bool, operation: str, parameters: Any) -> None:
        aiosqlite_connection: Any = self._connection
        try:
            self._outcome = await_(
                aiosqlite_connection._execute(
                    _run, aiosqlite_connection._conn, many, operation, parameters
                )
            )
        except Exception as error:
            self._adapt_connection._handle_exception(error)
        self._rows = collections.deque(self._outcome[3])

    async def _async_soft_close(self) -> None:
        """Nothing is left open in SQLite's thread to close."""

    def close(self) -> None:
        self._rows.clear()


class OneHopConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    # mypy reads the base's attribute as exactly its own cursor class.
    _cursor_cls = OneHopCursor  # type: ignore[assignment]


def one_hop(dbapi_connection: Any) -> None:
    """Make a connection SQLAlchemy's aiosqlite dialect just opened use `OneHopCursor`."""
    if type(dbapi_connection) is AsyncAdapt_aiosqlite_connection:
        dbapi_connection.__class__ = OneHopConnection
