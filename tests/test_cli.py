"""The command line as an operator uses it: registration, run and stop, bad config."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from bridge.demo.synapse import EmbeddedSynapse, SynapseSettings, free_port
from tests.support.checkout import ROOT


def bridge_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


def test_example_registration_is_what_the_command_makes_from_the_sample(tmp_path: Path) -> None:
    result = bridge_cli(
        "generate-registration",
        "-c",
        str(ROOT / "config.sample.yaml"),
        "-o",
        str(tmp_path / "registration.yaml"),
        "--example",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "registration.yaml").read_text() == (ROOT / "registration.yaml").read_text()
    registration = yaml.safe_load((ROOT / "registration.yaml").read_text())
    assert registration["as_token"] == "CHANGE_ME"
    assert registration["receive_ephemeral"] is True
    assert all(ns["exclusive"] for ns in registration["namespaces"]["users"])
    assert all(ns["exclusive"] for ns in registration["namespaces"]["aliases"])


def test_the_bridge_refuses_to_run_with_the_sample_placeholders(tmp_path: Path) -> None:
    result = bridge_cli("run", "-c", str(ROOT / "config.sample.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "appservice.as_token" in lines[0]


async def test_generated_tokens_are_written_into_the_config_and_synapse_accepts_them(
    tmp_path: Path,
) -> None:
    config_path = tmp_path / "config.yaml"
    synapse_port = free_port()
    sample = (ROOT / "config.sample.yaml").read_text()
    config_path.write_text(
        sample.replace("http://127.0.0.1:8008", f"http://127.0.0.1:{synapse_port}")
    )
    result = bridge_cli(
        "generate-registration", "-c", str(config_path), "-o", "registration.yaml", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr

    written = config_path.read_text()
    assert "# Where the bridge reaches the homeserver's client-server API." in written
    assert "\n  - id: demo\n" in written, "the layout of lists is kept"
    config = yaml.safe_load(written)
    registration = yaml.safe_load((tmp_path / "registration.yaml").read_text())
    assert registration["as_token"] == config["appservice"]["as_token"]
    assert registration["hs_token"] == config["appservice"]["hs_token"]
    assert len(config["appservice"]["as_token"]) >= 32
    assert config["appservice"]["as_token"] != config["appservice"]["hs_token"]

    # A second run keeps the tokens: the two files still agree.
    bridge_cli(
        "generate-registration", "-c", str(config_path), "-o", "registration.yaml", cwd=tmp_path
    )
    assert yaml.safe_load(config_path.read_text())["appservice"] == config["appservice"]

    synapse = EmbeddedSynapse(
        SynapseSettings(
            workdir=tmp_path / "synapse",
            port=synapse_port,
            appservice_registrations=(tmp_path / "registration.yaml",),
        )
    )
    async with (
        synapse,
        aiohttp.ClientSession() as session,
        session.get(
            f"{synapse.address}/_matrix/client/v3/account/whoami",
            headers={"Authorization": f"Bearer {config['appservice']['as_token']}"},
        ) as response,
    ):
        assert (await response.json())["user_id"] == "@bazaarbot:localhost"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_run_serves_and_stops_cleanly_on_a_signal(tmp_path: Path, signum: int) -> None:
    as_port, web_port = free_port(), free_port()
    token = secrets.token_urlsafe(24)
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "homeserver": {"address": "http://127.0.0.1:9", "domain": "localhost"},
                "appservice": {
                    "port": as_port,
                    "as_token": secrets.token_urlsafe(32),
                    "hs_token": secrets.token_urlsafe(32),
                },
                "database": f"sqlite+aiosqlite:///{tmp_path / 'bazaar.db'}",
                "web": {"port": web_port},
                "sites": [{"id": "shop", "api_token": token, "widget_secret": token + "w"}],
                # A section of a later version: named in a warning, not silently skipped.
                "replicas": {"count": 3},
            }
        )
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "-c",
        "config.yaml",
        cwd=tmp_path,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    started: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while b"Bazaar Bridge running" not in (line := await process.stderr.readline()):
                assert line, b"".join(started).decode()  # the bridge exited before it ran
                started.append(line)
        assert any(b"WARNING" in line and b"sets replicas," in line for line in started), started
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"http://127.0.0.1:{web_port}/api/v1/sites/shop/conversations",
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            assert await response.json() == {"conversations": []}
        process.send_signal(signum)
        async with asyncio.timeout(30):
            rest = await process.stderr.read()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, rest.decode()
    assert b"Bazaar Bridge stopped" in rest
    assert b"Traceback" not in rest
    assert (tmp_path / "bazaar.db").exists()


def run_config(tmp_path: Path, name: str, database: Path) -> tuple[Path, int]:
    """A config for `run` on its own ports and the given SQLite file; its web port."""
    web_port = free_port()
    token = secrets.token_urlsafe(24)
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "homeserver": {"address": "http://127.0.0.1:9", "domain": "localhost"},
                "appservice": {
                    "port": free_port(),
                    "as_token": secrets.token_urlsafe(32),
                    "hs_token": secrets.token_urlsafe(32),
                },
                "database": f"sqlite+aiosqlite:///{database}",
                "web": {"port": web_port},
                "sites": [{"id": "shop", "api_token": token, "widget_secret": token + "w"}],
            }
        )
    )
    return path, web_port


async def running(config: Path, cwd: Path) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "-c",
        str(config),
        cwd=cwd,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stderr is not None
    seen: list[bytes] = []
    async with asyncio.timeout(30):
        while b"Bazaar Bridge running" not in (line := await process.stderr.readline()):
            assert line, b"".join(seen).decode()
            seen.append(line)
    return process


async def test_a_second_bridge_on_the_same_sqlite_file_is_refused_until_the_first_is_gone(
    tmp_path: Path,
) -> None:
    database = tmp_path / "bazaar.db"
    first_config, _ = run_config(tmp_path, "first", database)
    second_config, second_port = run_config(tmp_path, "second", database)
    first = await running(first_config, tmp_path)
    try:
        refused = await asyncio.to_thread(bridge_cli, "-c", str(second_config), cwd=tmp_path)
        assert refused.returncode == 3, refused.stderr
        assert refused.stderr.strip().splitlines()[-1] == (
            f"Another bridge process is running on {database}: on SQLite only one may. "
            "Stop it first, or run several replicas on PostgreSQL."
        )
        assert "Traceback" not in refused.stderr
    finally:
        # A crash lets go of the database as a clean stop would.
        first.kill()
        await first.wait()
    second = await running(second_config, tmp_path)
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{second_port}/health/live") as response,
        ):
            assert response.status == 200
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
