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
from urllib.parse import urlsplit

import yaml

from bridge.config.sections import (
    DETECTED_LANGUAGES,
    MIN_SECRET_LENGTH,
    TRANSLATION_PROVIDERS,
    AppserviceConfig,
    BridgeSettings,
    Config,
    ConfigError,
    HomeserverConfig,
    MediaConfig,
    SiteConfig,
    TranslationConfig,
    WebConfig,
    is_placeholder,
    new_secret,
)

ENV_PREFIX = "BAZAAR_"
_SITE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_LOCALPART = re.compile(r"^[a-z0-9._=/-]+$")
# Room versions are short strings of digits, letters, '.' and '-' ("11", "12", "org.x.1").
_ROOM_VERSION = re.compile(r"^[A-Za-z0-9.-]{1,32}$")
SECTIONS = (
    "homeserver",
    "appservice",
    "database",
    "web",
    "bridge",
    "translation",
    "media",
    "sites",
    "logging",
)


class _Section:
    """Reads typed values from one mapping, naming each failure by its full key."""

    def __init__(self, raw: Any, key: str) -> None:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(key, "must be a mapping")
        self.raw = raw
        self.key = key
        self.read: set[str] = set()

    def get(self, name: str, default: Any = None) -> Any:
        self.read.add(name)
        return self.raw.get(name, default)

    def unknown(self) -> list[str]:
        """The keys of this section that nothing read: typos, or sections of a later
        version; the bridge warns of them by name."""
        return [self._name(str(name)) for name in self.raw if name not in self.read]

    def _name(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def text(self, name: str, default: str | None = None) -> str:
        value = self.get(name, default)
        if value is None:
            raise ConfigError(self._name(name), "is required")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(self._name(name), "must be a string")
        text = str(value).strip()
        if not text:
            raise ConfigError(self._name(name), "must not be empty")
        return text

    def optional_text(self, name: str) -> str | None:
        if self.get(name) in (None, ""):
            return None
        return self.text(name)

    def integer(self, name: str, default: int, *, low: int, high: int) -> int:
        value = self.get(name, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self._name(name), "must be a whole number")
        if not low <= value <= high:
            raise ConfigError(self._name(name), f"must be between {low} and {high}")
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.get(name, default)
        if isinstance(value, str) and value.strip().lower() in (
            "true",
            "yes",
            "1",
            "false",
            "no",
            "0",
        ):
            value = value.strip().lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise ConfigError(self._name(name), "must be true or false")
        return value

    def url(self, name: str, default: str | None = None) -> str:
        value = self.text(name, default).rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(self._name(name), f"must be an http(s) URL, not {value!r}")
        return value

    def text_list(self, name: str, default: list[str]) -> tuple[str, ...]:
        value = self.get(name, default)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ConfigError(self._name(name), "must be a list of strings")
        return tuple(item.strip() for item in value)

    def secret(self, name: str, *, required: bool) -> str:
        value = self.get(name)
        text = str(value).strip() if isinstance(value, str | int) else None
        if not required:
            return text or ""
        if text is None or is_placeholder(text):
            raise ConfigError(
                self._name(name), "is missing or a placeholder; set a long random value"
            )
        if len(text) < MIN_SECRET_LENGTH:
            raise ConfigError(
                self._name(name), f"is too short; use at least {MIN_SECRET_LENGTH} characters"
            )
        return text


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

    homeserver_section = _Section(raw.get("homeserver"), "homeserver")
    homeserver = HomeserverConfig(
        address=homeserver_section.url("address"),
        domain=homeserver_section.text("domain"),
    )

    service = _Section(raw.get("appservice"), "appservice")
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

    web_section = _Section(raw.get("web"), "web")
    web = _parse_web(web_section)

    bridge_section = _Section(raw.get("bridge"), "bridge")
    roles = bridge_section.text_list("allowed_roles", ["owner", "manager"])
    if not roles:
        raise ConfigError("bridge.allowed_roles", "must name at least one role")
    room_version = bridge_section.optional_text("room_version")
    if room_version is not None and not _ROOM_VERSION.match(room_version):
        raise ConfigError("bridge.room_version", f"{room_version!r} is not a room version")
    settings = BridgeSettings(
        allowed_roles=frozenset(roles),
        archive_after_days=bridge_section.integer("archive_after_days", 7, low=1, high=3650),
        room_version=room_version,
    )

    translation_section = _Section(raw.get("translation"), "translation")
    translation = _parse_translation(translation_section)
    media_section = _Section(raw.get("media"), "media")
    media = _parse_media(media_section)

    unknown = [name for name in raw if name not in SECTIONS]
    for section in (
        homeserver_section,
        service,
        web_section,
        bridge_section,
        translation_section,
        media_section,
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
        logging=logging_config,
        unknown_keys=tuple(unknown),
    )


def _parse_web(web_section: _Section) -> WebConfig:
    web_host = web_section.text("hostname", "127.0.0.1")
    web_port = web_section.integer("port", 29332, low=1, high=65535)
    return WebConfig(
        hostname=web_host,
        port=web_port,
        public_url=web_section.url("public_url", f"http://{web_host}:{web_port}"),
        body_timeout_seconds=float(
            web_section.integer("body_timeout_seconds", 30, low=1, high=600)
        ),
        max_streams_per_buyer=web_section.integer("max_streams_per_buyer", 5, low=1, high=100),
        max_uploads_per_buyer=web_section.integer("max_uploads_per_buyer", 2, low=1, high=20),
        downloads_per_minute=web_section.integer("downloads_per_minute", 120, low=1, high=100_000),
    )


def _parse_media(media_section: _Section) -> MediaConfig:
    return MediaConfig(
        directory=Path(media_section.text("directory", "media")),
        max_upload_bytes=media_section.integer("max_upload_mb", 20, low=1, high=1024) * 1024 * 1024,
        allow_private_fetch=media_section.flag("allow_private_fetch", False),
        fetch_max_bytes=media_section.integer("fetch_max_mb", 5, low=1, high=100) * 1024 * 1024,
        fetch_timeout_seconds=float(
            media_section.integer("fetch_timeout_seconds", 10, low=1, high=120)
        ),
        max_image_side=media_section.integer("max_image_side", 12_000, low=64, high=100_000),
        max_image_pixels=media_section.integer(
            "max_image_pixels", 50_000_000, low=10_000, high=1_000_000_000
        ),
        max_aspect_ratio=media_section.integer("max_aspect_ratio", 40, low=1, high=10_000),
        decodes_at_once=media_section.integer("decodes_at_once", 2, low=1, high=64),
    )


def _parse_translation(section: _Section) -> TranslationConfig:
    provider = section.text("provider", "none").lower()
    if provider not in TRANSLATION_PROVIDERS:
        raise ConfigError(
            "translation.provider", f"must be one of {', '.join(TRANSLATION_PROVIDERS)}"
        )
    api_key = section.optional_text("api_key")
    if provider in ("deepl", "microsoft") and (api_key is None or is_placeholder(api_key)):
        raise ConfigError("translation.api_key", f"is required for {provider}")
    url = section.url("url") if section.optional_text("url") else None
    if provider == "libre" and url is None:
        raise ConfigError("translation.url", "is required for libre: the LibreTranslate server")
    timeout = section.integer("timeout_seconds", 5, low=1, high=60)
    languages = section.text_list("detect_languages", list(DETECTED_LANGUAGES))
    if len(languages) < 2:
        raise ConfigError("translation.detect_languages", "must name at least two languages")
    return TranslationConfig(
        provider=provider,
        api_key=api_key,
        url=url,
        region=section.optional_text("region"),
        timeout_seconds=float(timeout),
        detect_languages=tuple(language.lower() for language in languages),
    )


def _parse_site(raw: Any, index: int, require_tokens: bool, unknown: list[str]) -> SiteConfig:
    section = _Section(raw, f"sites[{index}]")
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
    )
    unknown += section.unknown()
    return site


def check_appservice_tokens(config: Config) -> None:
    """The checks `run` makes on the two tokens, for commands that skip the site secrets."""
    service = {"as_token": config.appservice.as_token, "hs_token": config.appservice.hs_token}
    section = _Section(service, "appservice")
    section.secret("as_token", required=True)
    section.secret("hs_token", required=True)
    if service["as_token"] == service["hs_token"]:
        raise ConfigError("appservice.hs_token", "must differ from appservice.as_token")


_MATRIX_USER_ID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def _matrix_ids(section: _Section, name: str) -> tuple[str, ...]:
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
