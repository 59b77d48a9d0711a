"""Config parsing: defaults, named errors, refused placeholders, environment overrides."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from bridge.config import ConfigError, parse_config
from tests.support.checkout import ROOT

TOKEN = "t" * 32


def minimal(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "homeserver": {"address": "http://127.0.0.1:8008", "domain": "example.org"},
        "appservice": {"as_token": "a" * 32, "hs_token": "h" * 32},
        "sites": [{"id": "shop", "api_token": TOKEN, "widget_secret": TOKEN}],
    }
    raw.update(overrides)
    return raw


def error_for(raw: Any, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw, environ or {})
    return str(caught.value)


def test_defaults_fill_every_optional_key() -> None:
    config = parse_config(minimal(), {})
    assert config.appservice.port == 29331
    assert config.appservice.address == "http://127.0.0.1:29331"
    assert config.appservice.bot_username == "bazaarbot"
    assert config.appservice.ghost_prefix == "bazaar_"
    assert config.database == "sqlite+aiosqlite:///bazaar.db"
    assert config.web.public_url == "http://127.0.0.1:29332"
    assert config.bridge.allowed_roles == frozenset({"owner", "manager"})
    assert config.bridge.archive_after_days == 7
    assert config.translation.provider == "none"
    [site] = config.sites
    assert (site.name, site.language, site.webhook_url) == ("shop", "en", None)


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (minimal(homeserver={"domain": "example.org"}), "homeserver.address"),
        (minimal(homeserver={"address": "ftp://x", "domain": "d"}), "homeserver.address"),
        (
            minimal(appservice={"as_token": "CHANGE_ME", "hs_token": "h" * 32}),
            "appservice.as_token",
        ),
        (minimal(appservice={"as_token": "a" * 32}), "appservice.hs_token"),
        (minimal(appservice={"as_token": "short", "hs_token": "h" * 32}), "appservice.as_token"),
        (minimal(appservice={"as_token": "a" * 32, "hs_token": "a" * 32}), "appservice.hs_token"),
        (
            minimal(appservice={"as_token": "a" * 32, "hs_token": "h" * 32, "port": 70000}),
            "appservice.port",
        ),
        (
            minimal(appservice={"as_token": "a" * 32, "hs_token": "h" * 32, "ghost_prefix": "B!"}),
            "appservice.ghost_prefix",
        ),
        (minimal(database="mysql://x"), "database"),
        (minimal(bridge={"allowed_roles": []}), "bridge.allowed_roles"),
        (minimal(bridge={"archive_after_days": "soon"}), "bridge.archive_after_days"),
        (
            minimal(sites=[{"id": "Shop_1", "api_token": TOKEN, "widget_secret": TOKEN}]),
            "sites[0].id",
        ),
        (
            minimal(sites=[{"id": "shop", "api_token": "...", "widget_secret": TOKEN}]),
            "sites[shop].api_token",
        ),
        (
            minimal(
                sites=[
                    {
                        "id": "shop",
                        "api_token": TOKEN,
                        "widget_secret": TOKEN,
                        "webhook_url": "https://shop.example/hook",
                    }
                ]
            ),
            "sites[shop].webhook_secret",
        ),
        (minimal(sites=[{"id": "shop", "api_token": TOKEN, "widget_secret": TOKEN}] * 2), "sites"),
        (
            minimal(
                sites=[
                    {
                        "id": "shop",
                        "api_token": TOKEN,
                        "widget_secret": TOKEN,
                        "contact_policy": "hide",
                    }
                ]
            ),
            "sites[shop].contact_policy",
        ),
        (
            minimal(
                sites=[
                    {"id": "shop", "api_token": TOKEN, "widget_secret": TOKEN, "phone_region": "XX"}
                ]
            ),
            "sites[shop].phone_region",
        ),
        (
            minimal(
                sites=[
                    {"id": "shop", "api_token": TOKEN, "widget_secret": TOKEN, "currency": "euro"}
                ]
            ),
            "sites[shop].currency",
        ),
        (["not", "a", "mapping"], "(top level)"),
    ],
)
def test_a_bad_value_is_named_by_its_key(raw: Any, key: str) -> None:
    assert error_for(raw).startswith(f"{key}:")


def test_environment_overrides_the_file() -> None:
    config = parse_config(
        minimal(),
        {
            "BAZAAR_HOMESERVER_ADDRESS": "http://synapse:8008",
            "BAZAAR_DATABASE": "postgresql+asyncpg://bazaar@db/bazaar",
            "BAZAAR_BRIDGE_ALLOWED_ROLES": "[owner]",
            "BAZAAR_WEB_PORT": "8080",
            "BAZAAR_APPSERVICE_AS_TOKEN": "*" + "s" * 40,
            "UNRELATED": "x",
        },
    )
    assert config.homeserver.address == "http://synapse:8008"
    assert config.database == "postgresql+asyncpg://bazaar@db/bazaar"
    assert config.bridge.allowed_roles == frozenset({"owner"})
    assert config.web.port == 8080
    assert config.appservice.as_token == "*" + "s" * 40
    assert error_for(minimal(), {"BAZAAR_WEB_PORT": "eighty"}).startswith("web.port:")


def test_placeholders_are_allowed_only_when_tokens_are_not_required() -> None:
    raw = minimal(appservice={"as_token": "CHANGE_ME", "hs_token": "CHANGE_ME"})
    config = parse_config(raw, {}, require_tokens=False)
    assert config.appservice.as_token == "CHANGE_ME"


def test_keys_the_bridge_does_not_know_are_named() -> None:
    raw = minimal(
        replicas={"count": 3},
        web={"port": 29332, "body_timeout": 5},
        sites=[{"id": "shop", "api_token": TOKEN, "widget_secret": TOKEN, "colour": "red"}],
    )
    config = parse_config(raw, {})
    assert config.unknown_keys == ("replicas", "web.body_timeout", "sites[shop].colour")
    assert parse_config(minimal(), {}).unknown_keys == ()


def test_a_bare_off_is_the_contact_policy_off() -> None:
    # YAML 1.1 reads `contact_policy: off` as false.
    raw = yaml.safe_load(
        f"sites: [{{id: shop, api_token: {TOKEN}, widget_secret: {TOKEN}, contact_policy: off}}]"
    )
    assert raw["sites"][0]["contact_policy"] is False
    config = parse_config(minimal(sites=raw["sites"]), {})
    assert config.sites[0].contact_policy == "off"


def test_every_key_of_the_sample_is_known() -> None:
    sample = yaml.safe_load((ROOT / "config.sample.yaml").read_text())
    assert parse_config(sample, {}, require_tokens=False).unknown_keys == ()


@pytest.mark.parametrize("version", ["11", "12", "org.example.3"])
def test_a_room_version_may_be_set(version: str) -> None:
    assert parse_config(minimal(bridge={"room_version": version}), {}).bridge.room_version == (
        version
    )
    assert parse_config(minimal(), {}).bridge.room_version is None


def test_a_room_version_that_is_no_version_is_refused() -> None:
    assert error_for(minimal(bridge={"room_version": "11; drop"})).startswith(
        "bridge.room_version:"
    )
