"""A throwaway PostgreSQL cluster of its own, so a test or benchmark can restart the database.

The shared server on 5432 must never be stopped; this one lives in a temp dir, listens on a
free loopback port and keeps its unix socket in that dir. initdb refuses to run as root, so as
root the server's binaries run as the `postgres` user, who owns the dir.

    async with PgCluster() as cluster:
        engine = create_async_engine(cluster.url)
        await cluster.restart(mode="immediate")   # the way a crash looks to the clients
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

from bridge.demo.synapse import free_port

StopMode = Literal["smart", "fast", "immediate"]
SERVER_USER = "postgres"
BIN_DIRS = ("/usr/lib/postgresql/*/bin", "/usr/local/bin", "/usr/bin")
_START_TIMEOUT = 60


class PgClusterError(RuntimeError):
    """A PostgreSQL binary is missing, or initdb or pg_ctl failed."""


def find_binary(name: str) -> str:
    """The newest Debian version's `name`, else one on the usual paths."""
    for pattern in BIN_DIRS:
        for directory in sorted(glob.glob(pattern), reverse=True):
            candidate = Path(directory) / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    raise PgClusterError(f"no {name} found in {', '.join(BIN_DIRS)} (apt-get install postgresql)")


def available() -> bool:
    """Whether a cluster can be made here: the binaries, and a server user when root."""
    try:
        find_binary("initdb")
        find_binary("pg_ctl")
        if os.geteuid() == 0:
            pwd.getpwnam(SERVER_USER)
    except (PgClusterError, KeyError):
        return False
    return True


class PgCluster:
    def __init__(self) -> None:
        self.port = free_port()
        self._root = Path(tempfile.mkdtemp(prefix="bazaar-pg-"))
        self.data_dir = self._root / "data"
        self.socket_dir = self._root / "socket"
        self.log_path = self._root / "server.log"
        self._initialised = False
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://{SERVER_USER}@127.0.0.1:{self.port}/postgres"

    async def start(self) -> None:
        if not self._initialised:
            await self._init()
        await self._pg_ctl(
            "start",
            "-w",
            "-t",
            str(_START_TIMEOUT),
            "-l",
            str(self.log_path),
            "-o",
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1"
            # Nothing here must outlive the machine; a restart still goes through the WAL.
            " -c fsync=off -c full_page_writes=off",
        )
        self.running = True

    async def stop(self, mode: StopMode = "fast") -> None:
        """`fast` disconnects clients and shuts down cleanly; `immediate` is a crash."""
        if not self.running:
            return
        await self._pg_ctl("stop", "-w", "-m", mode)
        self.running = False

    async def restart(self, mode: StopMode = "fast") -> None:
        await self.stop(mode)
        await self.start()

    async def cleanup(self) -> None:
        """Stop the server if it runs and remove the cluster, whatever state it is in."""
        try:
            if self.running:
                await self.stop("immediate")
        finally:
            await asyncio.to_thread(shutil.rmtree, self._root, True)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.cleanup()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.cleanup()

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return "(no server log)"
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    async def _init(self) -> None:
        self.data_dir.mkdir()
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            server = pwd.getpwnam(SERVER_USER)
            for path in (self._root, self.data_dir, self.socket_dir):
                os.chown(path, server.pw_uid, server.pw_gid)
        await self._run(
            find_binary("initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SERVER_USER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._initialised = True

    async def _pg_ctl(self, *args: str) -> None:
        await self._run(find_binary("pg_ctl"), "-D", str(self.data_dir), *args)

    async def _run(self, *argv: str) -> None:
        if os.geteuid() == 0:
            argv = ("runuser", "-u", SERVER_USER, "--", *argv)
        # The output goes to a file, not a pipe: on uvloop's loop the server `pg_ctl start`
        # leaves running keeps the pipe open, and reading it to the end waited for the
        # server to stop.
        output_path = self._root / "command.out"
        with output_path.open("wb") as output:
            process = await asyncio.create_subprocess_exec(
                *argv,
                cwd=self._root,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=asyncio.subprocess.STDOUT,
            )
            await process.wait()
        if process.returncode != 0:
            raise PgClusterError(
                f"{' '.join(argv)} exited with {process.returncode}:\n"
                f"{output_path.read_text(errors='replace')}\n{self.log_tail()}"
            )
