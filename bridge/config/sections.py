"""The configuration's typed sections: frozen dataclasses, their limits and defaults,
ConfigError, and the placeholder and new-secret helpers."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_PLACEHOLDER = re.compile(
    r"^(|\.\.\.|x+|changeme|change[-_ ]?me.*|generate|placeholder.*|secret|token|todo)$",
    re.IGNORECASE,
)
# HS256 wants a key of at least 32 bytes (RFC 7518 §3.2); the same floor suits every secret.
MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """A bad or missing configuration value; the message starts with the key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key


def is_placeholder(value: str | None) -> bool:
    return value is None or bool(_PLACEHOLDER.match(value.strip()))


def new_secret() -> str:
    return secrets.token_urlsafe(48)


@dataclass(frozen=True)
class HomeserverConfig:
    address: str
    domain: str


@dataclass(frozen=True)
class AppserviceConfig:
    id: str
    hostname: str
    port: int
    address: str
    bot_username: str
    ghost_prefix: str
    as_token: str
    hs_token: str


@dataclass(frozen=True)
class WebConfig:
    hostname: str
    port: int
    public_url: str
    # A request body (JSON or upload) must arrive whole within this many seconds.
    body_timeout_seconds: float = 30.0
    # Open widget streams per buyer; a new one closes the oldest.
    max_streams_per_buyer: int = 5
    # Uploads one buyer may have in flight at once.
    max_uploads_per_buyer: int = 2
    # Attachment downloads per buyer per minute.
    downloads_per_minute: int = 120


@dataclass(frozen=True)
class BridgeSettings:
    allowed_roles: frozenset[str]
    archive_after_days: int
    # The version of every room and Space the bridge makes; None: the homeserver's default.
    room_version: str | None = None
    # Within how long a seller should answer a buyer; reminders at half and an hour before.
    response_target_hours: int = 24


TRANSLATION_PROVIDERS = ("none", "google", "deepl", "microsoft", "mymemory", "libre")
# Languages the offline detector chooses among when a buyer's language is unknown.
DETECTED_LANGUAGES = ("en", "ru", "uk", "kk", "pl", "lt", "lv", "et", "de", "fr", "es", "it", "tr")


@dataclass(frozen=True)
class TranslationConfig:
    provider: str = "none"
    api_key: str | None = None
    # LibreTranslate: the server's base URL (self-hosted or a public instance).
    url: str | None = None
    # Microsoft: the Azure resource's region, when it is not global.
    region: str | None = None
    timeout_seconds: float = 5.0
    detect_languages: tuple[str, ...] = DETECTED_LANGUAGES


@dataclass(frozen=True)
class MediaConfig:
    """Where checked attachments are kept, and how big one may be."""

    directory: Path = Path("media")
    max_upload_bytes: int = 20 * 1024 * 1024
    # Product images (`context.image_url`) from loopback or private addresses: demo and
    # tests only; a marketplace's URL must never reach the bridge's own network.
    allow_private_fetch: bool = False
    # Largest product image fetched, and how long the whole fetch may take.
    fetch_max_bytes: int = 5 * 1024 * 1024
    fetch_timeout_seconds: float = 10.0
    # Images by shape: each side, all pixels, and the longer side over the shorter.
    max_image_side: int = 12_000
    max_image_pixels: int = 50_000_000
    max_aspect_ratio: int = 40
    # Images decoded at the same time (each may take a few hundred MB while it is).
    decodes_at_once: int = 2


SMTP_SECURITY = ("starttls", "tls", "none")


@dataclass(frozen=True)
class SmtpConfig:
    """The relay mail leaves through."""

    host: str
    port: int = 587
    # starttls: plain then STARTTLS (port 587); tls: TLS from the start (465); none.
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class InboundConfig:
    """The bridge's own SMTP listener for buyers' replies to `reply+{token}@{domain}`."""

    domain: str
    hostname: str = "0.0.0.0"
    port: int = 2525
    max_message_bytes: int = 10 * 1024 * 1024


@dataclass(frozen=True)
class EmailConfig:
    smtp: SmtpConfig
    # The address mail comes from; the display name is the marketplace's (the site's name).
    from_address: str
    buyer_delay_minutes: int = 10
    inbound: InboundConfig | None = None


@dataclass(frozen=True)
class SiteConfig:
    id: str
    name: str
    language: str
    api_token: str
    widget_secret: str
    webhook_url: str | None
    webhook_secret: str | None
    allowed_origins: tuple[str, ...]
    admins: tuple[str, ...]
    share_buyer_contact: bool = False
    # off | warn | mask: contact and payment details before an order (core/contact_policy.py).
    contact_policy: str = "off"
    # ISO 3166 region of phone numbers written without a country code ("KZ"); none: only
    # international numbers are recognised.
    phone_region: str | None = None
    # The currency of the shop's prices (ISO 4217), for `!offer` where the context has none.
    currency: str | None = None


@dataclass(frozen=True)
class Config:
    homeserver: HomeserverConfig
    appservice: AppserviceConfig
    database: str
    web: WebConfig
    bridge: BridgeSettings
    translation: TranslationConfig
    sites: tuple[SiteConfig, ...]
    media: MediaConfig = field(default_factory=MediaConfig)
    # No `email` section: no mail at all.
    email: EmailConfig | None = None
    logging: dict[str, Any] | None = None
    path: Path | None = field(default=None, compare=False)
    # Keys the file (or the environment) sets that the bridge doesn't know, by full name.
    unknown_keys: tuple[str, ...] = ()

    def site(self, site_id: str) -> SiteConfig | None:
        return next((site for site in self.sites if site.id == site_id), None)
