"""The docker/ files wired together, checked without a Docker engine.

compose.yaml, the Dockerfile, the bridge's config.yaml and Synapse's homeserver.yaml must
agree on service names, ports, paths and volumes; the image must run the documented CLI.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from aiohttp import web
from sqlalchemy.engine import make_url

from bridge.__main__ import _parser, generate_registration
from bridge.config import Config, ConfigError, parse_config
from bridge.demo.synapse import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
PLACEHOLDER = "CHANGE_ME"
SYNAPSE_CONFIG = PurePosixPath("/data/homeserver.yaml")
# Alembic's template for new revisions: a developer's tool, not needed to run migrations.
DEV_ONLY_FILES = {"script.py.mako"}


def load(name: str) -> Any:
    return yaml.safe_load((DOCKER / name).read_text(encoding="utf-8"))


def services() -> dict[str, Any]:
    compose = load("compose.yaml")
    assert isinstance(compose["services"], dict)
    return compose["services"]


def bridge_config(*, require_tokens: bool = False) -> Config:
    return parse_config(load("config.yaml"), environ={}, require_tokens=require_tokens)


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (DOCKER / "Dockerfile").read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, arguments = (pending + stripped).partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def instruction(keyword: str) -> list[str]:
    return [arguments for name, arguments in dockerfile() if name == keyword]


def exec_form(arguments: str) -> list[str]:
    value = json.loads(arguments)
    assert isinstance(value, list), f"not the JSON (exec) form: {arguments}"
    assert all(isinstance(item, str) for item in value)
    return value


def published_ports(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """Container port → (host address, host port); every port must name its host address."""
    ports: dict[int, tuple[str, int]] = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container_port = str(entry).split(":")
        ports[int(container_port)] = (host_ip, int(host_port))
    return ports


def mounts(service: dict[str, Any]) -> list[tuple[str, PurePosixPath, bool]]:
    """(source, target, read-only) of each short-syntax volume entry."""
    found = []
    for entry in service.get("volumes", []):
        source, target, *mode = str(entry).split(":")
        found.append((source, PurePosixPath(target), mode == ["ro"]))
    return found


def mount_holding(
    service: dict[str, Any], path: PurePosixPath
) -> tuple[str, PurePosixPath, PurePosixPath, bool]:
    """The deepest mount that holds `path`: (source, target, path inside it, read-only)."""
    holding = [
        (source, target, read_only)
        for source, target, read_only in mounts(service)
        if path.is_relative_to(target)
    ]
    assert holding, f"no volume holds {path}"
    source, target, read_only = max(holding, key=lambda mount: len(mount[1].parts))
    return source, target, path.relative_to(target), read_only


def header_commands() -> list[list[str]]:
    """The `docker compose ...` commands that compose.yaml's header tells the operator to run."""
    lines: list[str] = []
    for line in (DOCKER / "compose.yaml").read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        text = line.lstrip("#").strip()
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1] + " " + text
        else:
            lines.append(text)
    return [shlex.split(line) for line in lines if line.startswith("docker compose")]


def command_args(tokens: list[str], service: str) -> list[str]:
    return tokens[tokens.index(service) + 1 :]


# compose.yaml


def test_compose_runs_postgres_synapse_and_the_bridge() -> None:
    found = services()
    assert set(found) == {"postgres", "synapse", "bridge"}
    assert found["postgres"]["image"] == "postgres:16"
    assert found["synapse"]["image"] == "matrixdotorg/synapse:latest"


def test_the_bridge_is_built_from_the_dockerfile_with_the_repository_as_context() -> None:
    build = services()["bridge"]["build"]
    context = (DOCKER / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKER / "Dockerfile"


def test_the_bridge_starts_once_postgres_is_healthy_and_uses_its_database() -> None:
    found = services()
    postgres = found["postgres"]
    assert found["bridge"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert postgres["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert any(
        target == PurePosixPath("/var/lib/postgresql/data") for _, target, _ in mounts(postgres)
    )

    url = make_url(bridge_config().database)
    environment = postgres["environment"]
    assert url.drivername == "postgresql+asyncpg"
    assert url.host == "postgres"
    assert url.username == environment["POSTGRES_USER"] == "bazaar"
    assert url.password == environment["POSTGRES_PASSWORD"] == "bazaar"
    assert url.database == environment["POSTGRES_DB"] == "bazaar"
    assert "ports" not in postgres


def test_only_the_marketplace_api_and_synapse_are_published_and_only_on_loopback() -> None:
    found = services()
    config = bridge_config()
    assert published_ports(found["bridge"]) == {config.web.port: ("127.0.0.1", config.web.port)}
    assert config.appservice.port not in published_ports(found["bridge"])
    # Inside the container both listeners must take connections from outside it.
    assert config.web.hostname == "0.0.0.0"
    assert config.appservice.hostname == "0.0.0.0"

    listener_ports = {listener["port"] for listener in load("homeserver.yaml")["listeners"]}
    assert listener_ports == {8008}
    assert published_ports(found["synapse"]) == {8008: ("127.0.0.1", 8008)}
    assert "ports" not in found["postgres"]


def test_bridge_and_synapse_reach_each_other_by_service_name() -> None:
    found = services()
    config = bridge_config()
    homeserver = urlsplit(config.homeserver.address)
    assert (homeserver.scheme, homeserver.hostname) == ("http", "synapse")
    assert homeserver.port in {
        listener["port"] for listener in load("homeserver.yaml")["listeners"]
    }
    appservice = urlsplit(config.appservice.address)
    assert (appservice.scheme, appservice.hostname) == ("http", "bridge")
    assert appservice.port == config.appservice.port
    assert {homeserver.hostname, appservice.hostname} <= set(found)


def test_the_domains_of_bridge_and_synapse_agree() -> None:
    assert bridge_config().homeserver.domain == load("homeserver.yaml")["server_name"]


def test_synapse_reads_the_registration_where_the_documented_command_writes_it() -> None:
    found = services()
    generate = [tokens for tokens in header_commands() if "generate-registration" in tokens]
    assert len(generate) == 1, "the header must give the generate-registration command"
    assert generate[0][:4] == ["docker", "compose", "run", "--rm"]
    args = _parser().parse_args(command_args(generate[0], "bridge"))
    assert args.command == "generate-registration"
    output = PurePosixPath(args.output)

    volume, _, inside, read_only = mount_holding(found["bridge"], output)
    assert volume in load("compose.yaml")["volumes"], "the registration must be on a named volume"
    assert not read_only

    files = load("homeserver.yaml")["app_service_config_files"]
    assert len(files) == 1
    synapse_volume, _, synapse_inside, synapse_read_only = mount_holding(
        found["synapse"], PurePosixPath(files[0])
    )
    assert (synapse_volume, synapse_inside) == (volume, inside)
    assert synapse_read_only


def test_the_setup_puts_the_config_where_the_image_reads_it() -> None:
    found = services()
    config_path = PurePosixPath(_parser().parse_args(exec_form(instruction("CMD")[-1])).config)
    generate = next(tokens for tokens in header_commands() if "generate-registration" in tokens)
    assert PurePosixPath(_parser().parse_args(command_args(generate, "bridge")).config) == (
        config_path
    )
    # The copy step's last argument is the config's place in the bridge's volume.
    copy = [tokens for tokens in header_commands() if "--entrypoint" in tokens]
    assert len(copy) == 1
    assert PurePosixPath(copy[0][-1]) == config_path
    seed = copy[0][copy[0].index("-v") + 1].split(":")[0]
    assert seed == "$PWD/config.yaml" and (DOCKER / "config.yaml").exists()

    volume, _, _, read_only = mount_holding(found["bridge"], config_path)
    assert volume == "bridge-data"
    assert not read_only, "generate-registration writes the tokens into the config"


# Dockerfile


def test_the_image_runs_the_documented_cli() -> None:
    assert exec_form(instruction("ENTRYPOINT")[-1]) == ["python", "-m", "bridge"]
    args = _parser().parse_args(exec_form(instruction("CMD")[-1]))
    assert args.command == "run"
    assert args.config == Path("/data/config.yaml")


def test_the_image_is_a_slim_python_3_11_running_as_a_user_on_a_data_volume() -> None:
    assert instruction("FROM") == ["python:3.11-slim"]
    user = instruction("USER")[-1]
    assert user not in {"root", "0"}
    assert any("useradd" in run and user in run.split() for run in instruction("RUN"))
    assert instruction("WORKDIR")[-1] == "/data"
    assert "/data" in " ".join(instruction("VOLUME")).split()
    config = bridge_config()
    exposed = {int(port) for ports in instruction("EXPOSE") for port in ports.split()}
    assert exposed == {config.appservice.port, config.web.port} == {29331, 29332}


def test_the_image_installs_the_package_without_extras_from_files_that_exist() -> None:
    installs = [run for run in instruction("RUN") if "pip install" in run]
    assert len(installs) == 1
    assert re.search(r"pip install --no-cache-dir \.(\s|$)", installs[0]), installs[0]
    assert "[" not in installs[0] and "synapse" not in installs[0]
    copied = set()
    for arguments in instruction("COPY"):
        *sources, _ = arguments.split()
        for source in sources:
            assert not source.startswith("--"), arguments
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            copied.add(source)
    assert {"pyproject.toml", "bridge"} <= copied


def test_the_install_ships_every_data_file_the_package_holds() -> None:
    """`pip install .` (not editable) copies only the .py files and the package-data globs."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"].get("package-data", {}).get("bridge", [])
    package = ROOT / "bridge"
    shipped = {path for pattern in patterns for path in package.glob(pattern)}
    data = {
        path
        for path in package.rglob("*")
        if path.is_file()
        and path.suffix not in {".py", ".pyc"}
        and "__pycache__" not in path.parts
        and path.name not in DEV_ONLY_FILES
    }
    assert sorted(str(path.relative_to(package)) for path in data - shipped) == []


async def test_the_healthcheck_asks_the_web_port_for_liveness_and_needs_a_2xx() -> None:
    healthchecks = instruction("HEALTHCHECK")
    assert len(healthchecks) == 1
    _, _, command = healthchecks[0].partition(" CMD ")
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    found = re.findall(r"'http://127\.0\.0\.1:(\d+)(/[^']*)'", argv[2])
    assert len(found) == 1, argv[2]
    port, path = int(found[0][0]), found[0][1]
    assert port == bridge_config().web.port
    assert path == "/health/live"
    user = instruction("USER")[-1]
    assert user not in {"root", "0"}, "the healthcheck runs as the image's user"

    async def check(test_port: int) -> int:
        code = argv[2].replace(f"127.0.0.1:{port}/", f"127.0.0.1:{test_port}/")
        assert code != argv[2]
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            code,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(30):
            return await process.wait()

    answers = {"status": 200}

    async def health(request: web.Request) -> web.Response:
        if request.path != path:
            return web.json_response({"errcode": "M_NOT_FOUND"}, status=404)
        return web.json_response({"status": "ok"}, status=answers["status"])

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", health)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        listening = runner.addresses[0][1]
        assert await check(listening) == 0, "200 from /health/live means alive"
        answers["status"] = 503
        assert await check(listening) != 0, "an error status means unhealthy"
    finally:
        await runner.cleanup()
    assert await check(free_port()) != 0, "nothing listening means unhealthy"


# docker/config.yaml


def item_key(key: str, index: int, item: Any) -> str:
    """A list item's key as ConfigError names it: sites[shop] for a site, else by index."""
    return f"{key}[{item['id']}]" if isinstance(item, dict) and "id" in item else f"{key}[{index}]"


def placeholder_keys(raw: Any, key: str = "") -> list[str]:
    """The config keys whose value is the placeholder, named as ConfigError names them."""
    if isinstance(raw, dict):
        return [
            found
            for name, value in raw.items()
            for found in placeholder_keys(value, f"{key}.{name}" if key else str(name))
        ]
    if isinstance(raw, list):
        return [
            found
            for index, item in enumerate(raw)
            for found in placeholder_keys(item, item_key(key, index, item))
        ]
    return [key] if raw == PLACEHOLDER else []


def test_the_config_parses_while_its_secrets_are_placeholders() -> None:
    config = bridge_config(require_tokens=False)
    assert config.appservice.as_token == config.appservice.hs_token == PLACEHOLDER
    assert [site.id for site in config.sites] == ["shop"]
    assert config.sites[0].api_token == PLACEHOLDER


def test_the_placeholders_are_exactly_the_secrets_the_operator_must_set() -> None:
    assert sorted(placeholder_keys(load("config.yaml"))) == [
        "appservice.as_token",
        "appservice.hs_token",
        "sites[shop].api_token",
        "sites[shop].webhook_secret",
        "sites[shop].widget_secret",
    ]


def with_secrets(raw: Any, keep: str | None = None, key: str = "") -> Any:
    """A copy of `raw` with every placeholder but the one at `keep` made a distinct secret."""
    if isinstance(raw, dict):
        return {
            name: with_secrets(value, keep, f"{key}.{name}" if key else str(name))
            for name, value in raw.items()
        }
    if isinstance(raw, list):
        return [
            with_secrets(item, keep, item_key(key, index, item)) for index, item in enumerate(raw)
        ]
    if raw == PLACEHOLDER and key != keep:
        return f"secret-for-{key}-" + "s" * 48
    return raw


@pytest.mark.parametrize("key", sorted(placeholder_keys(load("config.yaml"))))
def test_the_bridge_refuses_to_run_while_any_placeholder_is_left(key: str) -> None:
    raw = load("config.yaml")
    with pytest.raises(ConfigError) as caught:
        parse_config(with_secrets(raw, keep=key), environ={}, require_tokens=True)
    assert caught.value.key == key
    with pytest.raises(ConfigError):
        parse_config(raw, environ={}, require_tokens=True)


def test_the_config_runs_once_every_placeholder_is_set() -> None:
    config = parse_config(with_secrets(load("config.yaml")), environ={}, require_tokens=True)
    assert config.sites[0].webhook_url is not None


# Synapse's own view of homeserver.yaml and the registration


def test_synapse_loads_its_config_and_the_bridge_registration(tmp_path: Path) -> None:
    # Looked up, not imported: importing Synapse flips process-wide switches (Pillow's).
    if importlib.util.find_spec("synapse") is None:
        pytest.skip("Synapse is not installed")
    found = services()
    # Each named volume becomes a folder; paths in the containers map onto them.
    volumes = {name: tmp_path / name for name in load("compose.yaml")["volumes"]}
    for folder in volumes.values():
        folder.mkdir()

    def on_host(service: dict[str, Any], path: str) -> Path:
        source, _, inside, _ = mount_holding(service, PurePosixPath(path))
        return volumes[source] / inside

    config_path = on_host(found["bridge"], "/data/config.yaml")
    config_path.write_text((DOCKER / "config.yaml").read_text(encoding="utf-8"))
    generate_registration(
        config_path, on_host(found["bridge"], "/data/registration.yaml"), example=False
    )
    assert PLACEHOLDER not in yaml.safe_load(config_path.read_text())["appservice"].values()

    def relocate(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: relocate(item) for key, item in value.items()}
        if isinstance(value, list):
            return [relocate(item) for item in value]
        if isinstance(value, str) and value.startswith("/"):
            return str(on_host(found["synapse"], value))
        return value

    # The image's start script reads /data/homeserver.yaml when given no config path.
    source, _, inside, read_only = mount_holding(found["synapse"], SYNAPSE_CONFIG)
    assert (DOCKER / source).resolve() == DOCKER / "homeserver.yaml"
    assert inside == PurePosixPath(".") and read_only
    homeserver_path = tmp_path / "homeserver.yaml"
    homeserver_path.write_text(yaml.safe_dump(relocate(load("homeserver.yaml"))))

    config = bridge_config()
    ghost = f"@{config.appservice.ghost_prefix}shop_anna:{config.homeserver.domain}"
    # In a child process: Synapse's imports warn, and its config code sets global state.
    result = subprocess.run(
        [sys.executable, "-c", SYNAPSE_CHECK, str(homeserver_path), ghost],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["server_name"] == config.homeserver.domain
    assert seen["shared_secret"], "Synapse generates it on first start"
    assert seen["appservices"] == [
        {
            "url": config.appservice.address,
            "sender": f"@{config.appservice.bot_username}:{config.homeserver.domain}",
            "owns_ghost": True,
        }
    ]


SYNAPSE_CHECK = """
import json, sys
from synapse.config.appservice import load_appservices
from synapse.config.homeserver import HomeServerConfig

config = HomeServerConfig.load_or_generate_config("synapse", ["-c", sys.argv[1]])
name = config.server.server_name
loaded = load_appservices(name, config.appservice.app_service_config_files)
print(json.dumps({
    "server_name": name,
    "shared_secret": bool(config.registration.registration_shared_secret),
    "appservices": [
        {
            "url": service.url,
            "sender": service.sender.to_string(),
            "owns_ghost": service.is_exclusive_user(sys.argv[2]),
        }
        for service in loaded
    ],
}))
"""
