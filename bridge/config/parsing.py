"""Reading the configuration: the YAML file and environment overrides parsed into typed
sections, each bad value named by its key; tokens checked and written in place.

Values come from the YAML file; environment variables `BAZAAR_<SECTION>_<KEY>` (or
`BAZAAR_<SECTION>` for a section that is a single value, like `database`) override it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import phonenumbers
import yaml

from bridge.config.parts import (
    parse_bridge,
    parse_email,
    parse_media,
    parse_translation,
    parse_web,
)
from bridge.config.sections import (
    AppserviceConfig,
    Config,
    ConfigError,
    HomeserverConfig,
    SiteConfig,
    is_placeholder,
    new_secret,
)
from bridge.config.values import Section

ENV_PREFIX = "BAZAAR_"
_SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_LOCALPART = re.compile(r"^[a-z0-9._=/-]+$")
SECTIONS = (
    "homeserver",
    "appservice",
    "database",
    "web",
    "bridge",
    "translation",
    "media",
    "email",
    "sites",
    "logging",
)


def _apply_environment(raw: dict[str, Any], environ: Mapping[str, str]) -> None:
    # Sites and logging are lists and mappings of their own, never one variable's value.
    sections = {name.upper(): name for name in raw} | {
        name.upper(): name for name in SECTIONS if name not in ("sites", "logging")
    }
    for variable, text in environ.items():
        if not variable.startswith(ENV_PREFIX):
            continue
        rest = variable[len(ENV_PREFIX) :]
        # Values stay strings (a token may start with '*' or read 'yes'); only a
        # bracketed list is read as YAML, for keys such as allowed_roles.
        value: Any = text
        if text.startswith("["):
            try:
                value = yaml.safe_load(text)
            except yaml.YAMLError:
                raise ConfigError(variable, "is not a valid [list, of, values]") from None
        if rest in sections and not isinstance(raw.get(sections[rest]), dict):
            raw[sections[rest]] = value
            continue
        for upper, section in sections.items():
            if rest.startswith(upper + "_"):
                key = rest[len(upper) + 1 :].lower()
                target = raw.setdefault(section, {})
                if isinstance(target, dict):
                    target[key] = value
                break


def parse_config(
    raw: Any, environ: Mapping[str, str] | None = None, *, require_tokens: bool = True
) -> Config:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("(top level)", "the file must hold a mapping")
    raw = dict(raw)
    _apply_environment(raw, os.environ if environ is None else environ)

    homeserver_section = Section(raw.get("homeserver"), "homeserver")
    homeserver = HomeserverConfig(
        address=homeserver_section.url("address"),
        domain=homeserver_section.text("domain"),
    )

    service = Section(raw.get("appservice"), "appservice")
    hostname = service.text("hostname", "127.0.0.1")
    port = service.integer("port", 29331, low=1, high=65535)
    ghost_prefix = service.text("ghost_prefix", "bazaar_")
    bot_username = service.text("bot_username", "bazaarbot")
    for name, value in (("ghost_prefix", ghost_prefix), ("bot_username", bot_username)):
        if not _LOCALPART.match(value):
            raise ConfigError(f"appservice.{name}", "must be a lower-case Matrix localpart")
    if bot_username.startswith(ghost_prefix):
        raise ConfigError("appservice.bot_username", "must not start with the ghost_prefix")
    appservice = AppserviceConfig(
        id=service.text("id", "bazaar"),
        hostname=hostname,
        port=port,
        address=service.url("address", f"http://{hostname}:{port}"),
        bot_username=bot_username,
        ghost_prefix=ghost_prefix,
        as_token=service.secret("as_token", required=require_tokens),
        hs_token=service.secret("hs_token", required=require_tokens),
    )
    if require_tokens and appservice.as_token == appservice.hs_token:
        raise ConfigError("appservice.hs_token", "must differ from appservice.as_token")

    database = raw.get("database", "sqlite+aiosqlite:///bazaar.db")
    if not isinstance(database, str) or not database.startswith(
        ("sqlite+aiosqlite://", "postgresql+asyncpg://")
    ):
        raise ConfigError("database", "must be a sqlite+aiosqlite:// or postgresql+asyncpg:// URL")

    web_section = Section(raw.get("web"), "web")
    web = parse_web(web_section)

    bridge_section = Section(raw.get("bridge"), "bridge")
    settings = parse_bridge(bridge_section)

    translation_section = Section(raw.get("translation"), "translation")
    translation = parse_translation(translation_section)
    media_section = Section(raw.get("media"), "media")
    media = parse_media(media_section)
    email_sections: list[Section] = []
    email = parse_email(raw.get("email"), email_sections) if raw.get("email") else None

    unknown = [name for name in raw if name not in SECTIONS]
    for section in (
        homeserver_section,
        service,
        web_section,
        bridge_section,
        translation_section,
        media_section,
        *email_sections,
    ):
        unknown += section.unknown()
    raw_sites = raw.get("sites") or []
    if not isinstance(raw_sites, list):
        raise ConfigError("sites", "must be a list")
    sites = tuple(
        _parse_site(entry, index, require_tokens, unknown) for index, entry in enumerate(raw_sites)
    )
    seen: set[str] = set()
    for site in sites:
        if site.id in seen:
            raise ConfigError("sites", f"site id {site.id!r} appears twice")
        seen.add(site.id)

    logging_config = raw.get("logging")
    if logging_config is not None and not isinstance(logging_config, dict):
        raise ConfigError("logging", "must be a logging dictConfig mapping")

    return Config(
        homeserver=homeserver,
        appservice=appservice,
        database=database,
        web=web,
        bridge=settings,
        translation=translation,
        sites=sites,
        media=media,
        email=email,
        logging=logging_config,
        unknown_keys=tuple(unknown),
    )


def _parse_site(raw: Any, index: int, require_tokens: bool, unknown: list[str]) -> SiteConfig:
    section = Section(raw, f"sites[{index}]")
    site_id = section.text("id")
    if not _SITE_ID.match(site_id):
        raise ConfigError(f"sites[{index}].id", "must be 1–32 lower-case letters, digits or '-'")
    section.key = f"sites[{site_id}]"
    webhook_url = section.url("webhook_url") if section.optional_text("webhook_url") else None
    site = SiteConfig(
        id=site_id,
        name=section.text("name", site_id),
        language=section.text("language", "en"),
        api_token=section.secret("api_token", required=require_tokens),
        widget_secret=section.secret("widget_secret", required=require_tokens),
        webhook_url=webhook_url,
        webhook_secret=section.secret(
            "webhook_secret", required=require_tokens and webhook_url is not None
        )
        or None,
        allowed_origins=section.text_list("allowed_origins", []),
        admins=_matrix_ids(section, "admins"),
        share_buyer_contact=section.flag("share_buyer_contact", False),
        contact_policy=_contact_policy(section),
        phone_region=_phone_region(section),
        currency=_currency(section),
    )
    unknown += section.unknown()
    return site


def check_appservice_tokens(config: Config) -> None:
    """The checks `run` makes on the two tokens, for commands that skip the site secrets."""
    service = {"as_token": config.appservice.as_token, "hs_token": config.appservice.hs_token}
    section = Section(service, "appservice")
    section.secret("as_token", required=True)
    section.secret("hs_token", required=True)
    if service["as_token"] == service["hs_token"]:
        raise ConfigError("appservice.hs_token", "must differ from appservice.as_token")


_MATRIX_USER_ID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _matrix_ids(section: Section, name: str) -> tuple[str, ...]:
    ids = section.text_list(name, [])
    for user_id in ids:
        if not _MATRIX_USER_ID.match(user_id):
            raise ConfigError(f"{section.key}.{name}", f"{user_id!r} is not a Matrix user id")
    return ids


def load_config(
    path: Path, environ: Mapping[str, str] | None = None, *, require_tokens: bool = True
) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), f"cannot be read: {error.strerror}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(str(path), f"is not valid YAML: {error}") from None
    return replace(parse_config(raw, environ, require_tokens=require_tokens), path=path)


def write_missing_tokens(path: Path) -> bool:
    """Put strong `as_token`/`hs_token` into the config file where they are missing or
    placeholders, keeping its comments and layout. Returns whether the file changed."""
    from ruamel.yaml import YAML  # only this command edits the file in place

    editor = YAML()
    editor.preserve_quotes = True
    editor.indent(mapping=2, sequence=4, offset=2)
    document = editor.load(path.read_text(encoding="utf-8"))
    if document is None or not isinstance(document, dict):
        raise ConfigError(str(path), "the file must hold a mapping")
    if document.get("appservice") is None:
        document["appservice"] = {}
    appservice = document["appservice"]
    changed = False
    for key in ("as_token", "hs_token"):
        value = appservice.get(key)
        if not isinstance(value, str) or is_placeholder(value):
            appservice[key] = new_secret()
            changed = True
    if changed:
        with path.open("w", encoding="utf-8") as stream:
            editor.dump(document, stream)
    return changed


def _contact_policy(section: Section) -> str:
    # YAML reads a bare `off` as false: that is what the operator meant.
    if section.get("contact_policy") is False:
        return "off"
    policy = section.text("contact_policy", "off")
    if policy not in ("off", "warn", "mask"):
        raise ConfigError(f"{section.key}.contact_policy", "must be off, warn or mask")
    return policy


def _currency(section: Section) -> str | None:
    currency = section.optional_text("currency")
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        raise ConfigError(f"{section.key}.currency", "must be an ISO 4217 code such as EUR")
    return currency


def _phone_region(section: Section) -> str | None:
    region = section.optional_text("phone_region")
    if region is None:
        return None
    if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(f"{section.key}.phone_region", "must be a region code such as KZ or DE")
    return region.upper()
