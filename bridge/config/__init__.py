"""The bridge's configuration: typed sections (`sections`) and how they are read from YAML and
the environment (`parsing`); every public name is re-exported here."""

from bridge.config.parsing import (
    ENV_PREFIX,
    SECTIONS,
    check_appservice_tokens,
    load_config,
    parse_config,
    write_missing_tokens,
)
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

__all__ = [
    "DETECTED_LANGUAGES",
    "ENV_PREFIX",
    "MIN_SECRET_LENGTH",
    "SECTIONS",
    "TRANSLATION_PROVIDERS",
    "AppserviceConfig",
    "BridgeSettings",
    "Config",
    "ConfigError",
    "HomeserverConfig",
    "MediaConfig",
    "SiteConfig",
    "TranslationConfig",
    "WebConfig",
    "check_appservice_tokens",
    "is_placeholder",
    "load_config",
    "new_secret",
    "parse_config",
    "write_missing_tokens",
]
