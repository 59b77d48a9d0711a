"""How each section of the config file becomes its typed section: bridge, web, media,
translation and e-mail (the sites and the appservice are read in `parsing.py`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bridge.config.sections import (
    DETECTED_LANGUAGES,
    SMTP_SECURITY,
    TRANSLATION_PROVIDERS,
    BridgeSettings,
    ConfigError,
    EmailConfig,
    InboundConfig,
    MediaConfig,
    SmtpConfig,
    TranslationConfig,
    WebConfig,
    is_placeholder,
)
from bridge.config.values import Section

# Room versions are short strings of digits, letters, '.' and '-' ("11", "12", "org.x.1").
_ROOM_VERSION = re.compile(r"^[A-Za-z0-9.-]{1,32}$")


def parse_bridge(bridge_section: Section) -> BridgeSettings:
    roles = bridge_section.text_list("allowed_roles", ["owner", "manager"])
    if not roles:
        raise ConfigError("bridge.allowed_roles", "must name at least one role")
    room_version = bridge_section.optional_text("room_version")
    if room_version is not None and not _ROOM_VERSION.match(room_version):
        raise ConfigError("bridge.room_version", f"{room_version!r} is not a room version")
    return BridgeSettings(
        allowed_roles=frozenset(roles),
        archive_after_days=bridge_section.integer("archive_after_days", 7, low=1, high=3650),
        room_version=room_version,
        response_target_hours=bridge_section.integer(
            "response_target_hours", 24, low=2, high=24 * 30
        ),
    )


def parse_web(web_section: Section) -> WebConfig:
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


def parse_media(media_section: Section) -> MediaConfig:
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


def parse_email(raw: Any, sections: list[Section]) -> EmailConfig:
    """`email:` with its `smtp:` relay and an optional `inbound:` listener; every section
    read is added to `sections`, for the unknown-key warning."""
    section = Section(raw, "email")
    smtp = Section(section.get("smtp"), "email.smtp")
    sections += [section, smtp]
    security = smtp.text("security", "starttls").lower()
    if security not in SMTP_SECURITY:
        raise ConfigError("email.smtp.security", f"must be one of {', '.join(SMTP_SECURITY)}")
    relay = SmtpConfig(
        host=smtp.text("host"),
        port=smtp.integer("port", 465 if security == "tls" else 587, low=1, high=65535),
        security=security,
        username=smtp.optional_text("username"),
        password=smtp.optional_text("password"),
        timeout_seconds=float(smtp.integer("timeout_seconds", 30, low=1, high=600)),
    )
    from_address = section.text("from")
    if not _EMAIL.match(from_address):
        raise ConfigError("email.from", f"{from_address!r} is not an e-mail address")
    inbound = None
    if section.get("inbound") is not None:
        listener = Section(section.get("inbound"), "email.inbound")
        sections.append(listener)
        domain = listener.text("domain")
        if not _DOMAIN.match(domain):
            raise ConfigError("email.inbound.domain", f"{domain!r} is not a domain name")
        inbound = InboundConfig(
            domain=domain,
            hostname=listener.text("hostname", "0.0.0.0"),
            port=listener.integer("port", 2525, low=1, high=65535),
            max_message_bytes=listener.integer("max_message_mb", 10, low=1, high=100) * 1024 * 1024,
        )
    return EmailConfig(
        smtp=relay,
        from_address=from_address,
        buyer_delay_minutes=section.integer("buyer_delay_minutes", 10, low=1, high=24 * 60),
        inbound=inbound,
    )


_EMAIL = re.compile(r"^[^@\s<>\"]+@[A-Za-z0-9.-]+$")
_DOMAIN = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*$")


def parse_translation(section: Section) -> TranslationConfig:
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
