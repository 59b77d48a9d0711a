"""What the benchmarks share: the stage they set up and the clients they measure with.

An embedded Synapse with the bridge's appservice registration, the bridge's config for it,
the marketplace API and the Matrix client-server API over real HTTP, and a /sync loop that
notes when each tagged event first reaches a Matrix client. Used by `relay.py` and
`widget.py` in this directory (run as scripts, so they import it as `stage`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import uvloop
import yaml
from sqlalchemy.engine import make_url

from bridge.config import Config, parse_config
from bridge.demo.synapse import EmbeddedSynapse, SynapseSettings, free_port
from bridge.matrix.content import MESSAGE_ID_KEY
from bridge.matrix.registration import registration

SITE = "bench"
SELLER_ID = "bench-seller"
DOMAIN = "localhost"
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=60)
SYNC_TIMEOUT_MS = 30_000
SYNC_TIMELINE_LIMIT = 1000
JOIN_ATTEMPTS = 50


class BenchError(RuntimeError):
    """The benchmark could not set up or finish a run."""


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, round(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def progress(text: str) -> None:
    print(f"… {text}", file=sys.stderr, flush=True)


async def json_body(response: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    text = await response.text()
    if response.status >= 300:
        raise BenchError(f"{what}: HTTP {response.status} {text[:300]}")
    body = json.loads(text) if text else {}
    if not isinstance(body, dict):
        raise BenchError(f"{what}: expected a JSON object, got {text[:300]}")
    return body


class Marketplace:
    """The shop's backend: the bridge's marketplace API over real HTTP."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, token: str) -> None:
        self._session = session
        self._base = f"{base_url}/api/v1/sites/{SITE}"
        self._headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        async with self._session.request(
            method, self._base + path, json=body, headers=self._headers
        ) as response:
            return await json_body(response, f"{method} {path}")


class Homeserver:
    """Client-server API calls: the seller's own, and the appservice's as a ghost."""

    def __init__(self, session: aiohttp.ClientSession, address: str) -> None:
        self._session = session
        self._address = address

    async def call(
        self,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        async with self._session.request(
            method,
            self._address + path,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            return await json_body(response, f"{method} {path}")

    async def login(self, user_id: str, password: str) -> str:
        async with self._session.post(
            self._address + "/_matrix/client/v3/login",
            json={
                "type": "m.login.password",
                "identifier": {"type": "m.id.user", "user": user_id},
                "password": password,
            },
        ) as response:
            answer = await json_body(response, "login")
        return str(answer["access_token"])

    async def version(self) -> str:
        with contextlib.suppress(aiohttp.ClientError, BenchError, KeyError):
            async with self._session.get(
                self._address + "/_matrix/federation/v1/version"
            ) as response:
                server = (await json_body(response, "version"))["server"]
            # Synapse appends "(b=branch,commit)" of whatever git checkout it runs from.
            return f"{server['name']} {str(server['version']).split(' ')[0]}"
        return f"Synapse {importlib.metadata.version('matrix-synapse')}"


class Arrivals:
    """When each tagged message first reached a client, and a way to wait for them; `_run`
    is the loop, in the background between `start` and `stop`, that notes them."""

    def __init__(self, client: str, loop: str) -> None:
        self._client = client
        self._loop = loop
        self.arrivals: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self._error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch(), name=self._loop)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError

    async def _watch(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._notify(error)

    async def _notify(self, error: BaseException | None = None) -> None:
        if error is not None:
            self._error = error
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, message_ids: Sequence[str], timeout: float) -> float:  # noqa: ASYNC109
        """Wait until every message has arrived; returns the time the last one did."""

        def done() -> bool:
            return self._error is not None or all(m in self.arrivals for m in message_ids)

        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            seen = sum(m in self.arrivals for m in message_ids)
            raise BenchError(
                f"only {seen} of {len(message_ids)} messages reached {self._client} "
                f"within {timeout:g} s"
            ) from None
        if self._error is not None:
            raise BenchError(f"{self._loop} failed: {self._error!r}") from self._error
        return max(self.arrivals[m] for m in message_ids)


def sync_filter(timeline: dict[str, Any]) -> str:
    """A /sync filter that leaves out all but the rooms' timelines (as `timeline` says)."""
    return json.dumps(
        {
            "presence": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "room": {
                "timeline": timeline,
                "state": {"types": []},
                "ephemeral": {"not_types": ["*"]},
                "account_data": {"not_types": ["*"]},
            },
        }
    )


def bazaar_message_id(event: dict[str, Any]) -> str | None:
    """The tag of a message the bridge (or the relay baseline) sent: its bazaar message id."""
    content = event.get("content")
    if event.get("type") != "m.room.message" or not isinstance(content, dict):
        return None
    message_id = content.get(MESSAGE_ID_KEY)
    return message_id if isinstance(message_id, str) else None


class StreamWatcher(Arrivals):
    """The buyer's WebSocket stream, read in the background; `on_frame` says what counts."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__("the buyer's stream", "the buyer's stream")
        self._socket = socket

    async def stop(self) -> None:
        await super().stop()
        await self._socket.close()

    def on_frame(self, frame: dict[str, Any], arrived: float) -> bool:
        """Note what the frame brings; True when waiters should look again."""
        raise NotImplementedError

    async def _run(self) -> None:
        async for message in self._socket:
            arrived = time.perf_counter()
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            if isinstance(frame, dict) and self.on_frame(frame, arrived):
                await self._notify()
        raise BenchError(f"the bridge closed the buyer's stream ({self._socket.close_code})")


class SyncDetector(Arrivals):
    """A Matrix user's /sync loop; notes when each tagged message first reaches the client.

    `tag` names the message an event carries (None: not one being watched for).
    """

    def __init__(
        self,
        homeserver: Homeserver,
        token: str,
        tag: Callable[[dict[str, Any]], str | None] = bazaar_message_id,
        whose: str = "the seller's",
    ) -> None:
        super().__init__(f"{whose} client", f"{whose} /sync loop")
        self._homeserver = homeserver
        self._token = token
        self._tag = tag
        self.limited_timelines = 0

    async def _run(self) -> None:
        only_messages = sync_filter({"limit": SYNC_TIMELINE_LIMIT, "types": ["m.room.message"]})
        since: str | None = None
        while True:
            params = {
                "filter": only_messages,
                "timeout": str(SYNC_TIMEOUT_MS),
                "set_presence": "offline",
            }
            if since is not None:
                params["since"] = since
            answer = await self._homeserver.call(
                "GET", "/_matrix/client/v3/sync", self._token, params=params
            )
            self._note(answer, time.perf_counter(), incremental=since is not None)
            since = str(answer["next_batch"])
            await self._notify()

    def _note(self, answer: dict[str, Any], arrived: float, *, incremental: bool) -> None:
        for room in answer.get("rooms", {}).get("join", {}).values():
            timeline = room.get("timeline", {})
            if incremental and timeline.get("limited"):
                self.limited_timelines += 1
            for event in timeline.get("events", []):
                tag = self._tag(event)
                if tag is not None:
                    self.arrivals.setdefault(tag, arrived)


async def join_all(homeserver: Homeserver, token: str, room_ids: Sequence[str]) -> None:
    """A seller member accepts the invites the bridge sent when it made each room."""

    async def join(room_id: str) -> None:
        path = f"/_matrix/client/v3/join/{quote(room_id, safe='')}"
        for _ in range(JOIN_ATTEMPTS - 1):
            try:
                await homeserver.call("POST", path, token, body={})
                return
            except BenchError:
                await asyncio.sleep(0.1)  # the invite may not be through yet
        await homeserver.call("POST", path, token, body={})

    await asyncio.gather(*(join(room_id) for room_id in room_ids))


def bridge_settings(synapse_port: int, database: str, workdir: Path) -> dict[str, Any]:
    """The bridge's raw config (as its YAML file would hold it): free ports, fresh secrets."""
    return {
        "homeserver": {"address": f"http://127.0.0.1:{synapse_port}", "domain": DOMAIN},
        "appservice": {
            "port": free_port(),
            "as_token": secrets.token_urlsafe(32),
            "hs_token": secrets.token_urlsafe(32),
        },
        "database": database,
        "web": {"port": free_port()},
        # The bridge's copies of attachments go with the run's temp dir.
        "media": {"directory": str(workdir / "media")},
        "sites": [
            {
                "id": SITE,
                "name": "Bench Shop",
                "language": "en",
                "api_token": secrets.token_urlsafe(24),
                "widget_secret": secrets.token_urlsafe(24),
                "webhook_url": None,
            }
        ],
    }


def bridge_config(synapse_port: int, database: str, workdir: Path) -> Config:
    return parse_config(bridge_settings(synapse_port, database, workdir), environ={})


def resolve_database(option: str, workdir: Path) -> str:
    """`--database`: 'sqlite' is a fresh file in the temp dir; a URL is used as it is."""
    if option == "sqlite":
        return f"sqlite+aiosqlite:///{workdir / 'bazaar.db'}"
    return option


def database_error(option: str) -> str | None:
    """Why a `--database` value is refused, or None when it is fine."""
    if option != "sqlite" and not option.startswith(
        ("postgresql+asyncpg://", "sqlite+aiosqlite://")
    ):
        return "--database must be 'sqlite' or a postgresql+asyncpg:// URL"
    return None


def describe_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite, {parsed.database}"
    return f"PostgreSQL, {parsed.render_as_string(hide_password=True)}"


def embedded_synapse(workdir: Path, port: int, config: Config) -> EmbeddedSynapse:
    """A Synapse in `workdir/synapse` on `port` that knows the bridge's registration."""
    registration_path = workdir / "registration.yaml"
    registration_path.write_text(yaml.safe_dump(registration(config)), encoding="utf-8")
    return EmbeddedSynapse(
        SynapseSettings(
            workdir=workdir / "synapse",
            server_name=DOMAIN,
            port=port,
            appservice_registrations=(registration_path,),
        )
    )


def quiet_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run_bench(name: str, bench: Coroutine[Any, Any, None]) -> int:
    """Run one benchmark to its exit code: 1 with a line on stderr when it fails."""
    try:
        # The loop the bridge runs on (`python -m bridge`), so the figures are its own.
        uvloop.run(bench)
    except BenchError as error:
        print(f"{name} benchmark failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def synapse_pid() -> int | None:
    """The embedded Synapse among this process's children (Linux /proc)."""
    with contextlib.suppress(OSError, ValueError):
        for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
            for pid in children.read_text().split():
                if b"synapse.app.homeserver" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return int(pid)
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """User+system CPU of a process so far, from /proc/<pid>/stat (Linux only)."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
