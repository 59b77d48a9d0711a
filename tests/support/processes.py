"""The bridge as its own process, `python -m bridge -c CONFIG run`, as an operator runs it.

A SIGKILL of it is a real crash, and the next process starts on the same config and
database. Used by the fault suite (`bench/faults.py`) and the replica harness
(`tests/support/replicas.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent.parent
# A start under load is several seconds: imports, migrations, the homeserver's ping.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0
LOG_TAIL_LINES = 40


class BridgeProcessError(RuntimeError):
    """The bridge's process did not come up, or exited while it was awaited."""


class BridgeProcess:
    """`python -m bridge run` on one config; SIGKILLed and started again on the same config
    and database. `start` returns once `ready_url` answers 200. `watch` notes (and repairs)
    an exit nobody asked for."""

    def __init__(self, config_path: Path, log_path: Path, ready_url: str) -> None:
        self._argv = [sys.executable, "-m", "bridge", "-c", str(config_path), "run"]
        self.config_path = config_path
        self.log_path = log_path
        self._ready_url = ready_url
        self._process: asyncio.subprocess.Process | None = None
        self._restarting = asyncio.Lock()
        self.own_exits: list[int] = []

    @property
    def pid(self) -> int | None:
        """The running process's id; None before a start and after a kill or stop."""
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        # BAZAAR_* variables of the caller's shell would override the config.
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAZAAR_")}
        with self.log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *self._argv,
                cwd=REPO,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        self._process = process
        try:
            async with (
                asyncio.timeout(START_TIMEOUT),
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session,
            ):
                while process.returncode is None:
                    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                        async with session.get(self._ready_url) as response:
                            if response.status == 200:
                                return
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise BridgeProcessError(
                f"the bridge did not come up within {START_TIMEOUT:g} s:\n{self.log_tail()}"
            ) from None
        raise BridgeProcessError(f"the bridge exited with {process.returncode}:\n{self.log_tail()}")

    async def kill(self) -> int:
        """SIGKILL, the way a crash or the OOM killer ends it; returns its pid."""
        async with self._restarting:
            process, self._process = self._process, None
            if process is None:
                raise BridgeProcessError("the bridge is not running")
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGKILL)
            await process.wait()
            return process.pid

    async def restart_after_kill(self) -> None:
        async with self._restarting:
            await self.start()

    async def stop(self) -> None:
        """SIGTERM, and SIGKILL if it has not ended within STOP_TIMEOUT."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()

    async def watch(self, note: Callable[[str], None]) -> None:
        """Start the bridge again whenever it exits by itself, telling `note`; runs until
        cancelled."""
        while True:
            await asyncio.sleep(0.5)
            async with self._restarting:
                process = self._process
                if process is None or process.returncode is None:
                    continue
                self.own_exits.append(process.returncode)
                note(f"the bridge exited by itself (code {process.returncode}); starting it")
                await self.start()

    def catch_ups(self) -> str:
        """'sweeps / events' the catch-up logged: events Synapse never pushed, found."""
        found = [int(n) for n in re.findall(r"Catch-up: (\d+) events", self.log_text())]
        return f"{len(found)} / {sum(found)}"

    def log_text(self) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text()
        if not text:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])
