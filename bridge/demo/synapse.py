"""Run a real Synapse homeserver as a subprocess on loopback, for the demo and integration tests.

It is configured to stay offline (no federation, no key servers, no stats) and to be lenient.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import signal
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp
import yaml

logger = logging.getLogger(__name__)

CONFIG_FILE = "homeserver.yaml"
LOG_CONFIG_FILE = "log.config"
LOG_FILE = "homeserver.log"
DATABASE_FILE = "homeserver.db"
MEDIA_DIR = "media_store"

_SECRET_KEYS = ("registration_shared_secret", "macaroon_secret_key", "form_secret")
_STOP_GRACE_SECONDS = 10.0
_POLL_INTERVAL = 0.1
_LOG_TAIL_LINES = 40


class SynapseError(RuntimeError):
    """Synapse failed to start, or its admin API refused a request."""


@dataclass(frozen=True)
class SynapseSettings:
    workdir: Path
    server_name: str = "localhost"
    port: int | None = None
    appservice_registrations: tuple[Path, ...] = ()
    auto_accept_invites: bool = False
    python: str = sys.executable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedSynapse:
    def __init__(self, settings: SynapseSettings) -> None:
        self._settings = settings
        self._workdir = settings.workdir.resolve()
        self._port = settings.port if settings.port is not None else free_port()
        self._process: asyncio.subprocess.Process | None = None

    @property
    def address(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def server_name(self) -> str:
        return self._settings.server_name

    @property
    def log_path(self) -> Path:
        return self._workdir / LOG_FILE

    async def start(self, timeout: float = 60) -> None:  # noqa: ASYNC109
        if self._process is not None and self._process.returncode is None:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.to_thread(self._write_config)
        with self.log_path.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                self._settings.python,
                "-m",
                "synapse.app.homeserver",
                "-c",
                str(self._workdir / CONFIG_FILE),
                cwd=self._workdir,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        logger.info("Started Synapse (pid %d) on %s", self._process.pid, self.address)
        try:
            async with asyncio.timeout(timeout):
                await self._wait_until_ready(self._process)
        except TimeoutError:
            await self.stop()
            raise SynapseError(
                f"Synapse did not come up on {self.address} within {timeout:g} s; "
                f"last lines of {self.log_path}:\n{await self._log_tail()}"
            ) from None
        except BaseException:
            await self.stop()
            raise
        logger.info("Synapse ready on %s after %.1f s", self.address, loop.time() - started)

    async def _wait_until_ready(self, process: asyncio.subprocess.Process) -> None:
        url = f"{self.address}/_matrix/client/versions"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while process.returncode is None:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(url) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(_POLL_INTERVAL)
        raise SynapseError(
            f"Synapse exited with code {process.returncode} during startup; "
            f"last lines of {self.log_path}:\n{await self._log_tail()}"
        )

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), _STOP_GRACE_SECONDS)
        except TimeoutError:
            logger.warning("Synapse (pid %d) ignored SIGTERM; killing it", process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        logger.info("Stopped Synapse (pid %d, exit code %s)", process.pid, process.returncode)

    async def register_user(
        self,
        localpart: str,
        password: str,
        *,
        admin: bool = False,
        displayname: str | None = None,
    ) -> str:
        secret = await self._shared_secret()
        url = f"{self.address}/_synapse/admin/v1/register"
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            async with session.get(url) as response:
                nonce_body = await _json_or_raise(response, "nonce request")
            nonce = str(nonce_body["nonce"])
            signed = (nonce, localpart, password, "admin" if admin else "notadmin")
            mac = hmac.new(secret.encode(), b"\x00".join(p.encode() for p in signed), "sha1")
            body: dict[str, Any] = {
                "nonce": nonce,
                "username": localpart,
                "password": password,
                "admin": admin,
                "mac": mac.hexdigest(),
            }
            if displayname is not None:
                body["displayname"] = displayname
            async with session.post(url, json=body) as response:
                if response.status == 400:
                    error = await response.json(content_type=None)
                    if error.get("errcode") == "M_USER_IN_USE":
                        user_id = f"@{localpart.lower()}:{self.server_name}"
                        logger.debug("User %s already exists", user_id)
                        return user_id
                registered = await _json_or_raise(response, f"registration of {localpart!r}")
        user_id = str(registered["user_id"])
        logger.info("Registered %s%s", user_id, " (admin)" if admin else "")
        return user_id

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _shared_secret(self) -> str:
        config = await asyncio.to_thread(self._read_config)
        secret = config.get("registration_shared_secret")
        if not isinstance(secret, str):
            raise SynapseError(f"No registration_shared_secret in {self._workdir / CONFIG_FILE}")
        return secret

    def _read_config(self) -> dict[str, Any]:
        path = self._workdir / CONFIG_FILE
        if not path.exists():
            return {}
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else {}

    def _write_config(self) -> None:
        self._workdir.mkdir(parents=True, exist_ok=True)
        previous = self._read_config()
        config = self._build_config(
            {key: previous.get(key) or secrets.token_urlsafe(32) for key in _SECRET_KEYS}
        )
        (self._workdir / CONFIG_FILE).write_text(
            yaml.safe_dump(config, sort_keys=False), encoding="utf-8"
        )
        (self._workdir / LOG_CONFIG_FILE).write_text(
            yaml.safe_dump(self._build_log_config(), sort_keys=False), encoding="utf-8"
        )

    def _build_config(self, secret_values: dict[str, str]) -> dict[str, Any]:
        workdir = self._workdir
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"{self.address}/",
            "listeners": [
                {
                    "port": self._port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": False,
                    "resources": [{"names": ["client", "federation"]}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(workdir / DATABASE_FILE)}},
            "log_config": str(workdir / LOG_CONFIG_FILE),
            "media_store_path": str(workdir / MEDIA_DIR),
            "signing_key_path": str(workdir / f"{self.server_name}.signing.key"),
            **secret_values,
            "report_stats": False,
            "enable_metrics": False,
            "enable_registration": False,
            "bcrypt_rounds": 4,
            "url_preview_enabled": False,
            "presence": {"enabled": False},
            "suppress_key_server_warning": True,
            "trusted_key_servers": [],
            "federation_domain_whitelist": [],
            "app_service_config_files": [
                str(path.resolve()) for path in self._settings.appservice_registrations
            ],
            "rc_message": _lenient(),
            "rc_registration": _lenient(),
            "rc_registration_token_validity": _lenient(),
            "rc_login": {
                "address": _lenient(),
                "account": _lenient(),
                "failed_attempts": _lenient(),
            },
            "rc_admin_redaction": _lenient(),
            "rc_joins": {"local": _lenient(), "remote": _lenient()},
            "rc_joins_per_room": _lenient(),
            "rc_3pid_validation": _lenient(),
            "rc_invites": {
                "per_room": _lenient(),
                "per_user": _lenient(),
                "per_issuer": _lenient(),
            },
            "rc_third_party_invite": _lenient(),
            "rc_media_create": _lenient(),
            "rc_presence": {"per_user": _lenient()},
            "rc_delayed_event_mgmt": _lenient(),
            "rc_room_creation": _lenient(),
            "rc_reports": _lenient(),
            "rc_user_directory": _lenient(),
            "rc_profile": _lenient(),
        }
        if self._settings.auto_accept_invites:
            config["auto_accept_invites"] = {"enabled": True}
        return config

    def _build_log_config(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                    " - %(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "encoding": "utf8",
                }
            },
            "root": {"level": "WARNING", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    async def _log_tail(self) -> str:
        def read() -> str:
            if not self.log_path.exists():
                return "(no log written)"
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
            return "\n".join(lines[-_LOG_TAIL_LINES:])

        return await asyncio.to_thread(read)


def _lenient() -> dict[str, int]:
    return {"per_second": 1000, "burst_count": 1000}


async def _json_or_raise(response: aiohttp.ClientResponse, what: str) -> dict[str, Any]:
    if response.status != 200:
        raise SynapseError(f"Synapse refused the {what}: {response.status} {await response.text()}")
    body = await response.json()
    if not isinstance(body, dict):
        raise SynapseError(f"Synapse answered the {what} with non-object JSON: {body!r}")
    return body
