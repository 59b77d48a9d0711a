"""The appservice registration the homeserver loads, derived from the bridge's config."""

from __future__ import annotations

import re
from typing import Any

from bridge.config import Config


def registration(config: Config) -> dict[str, Any]:
    service = config.appservice
    domain = re.escape(config.homeserver.domain)
    prefix = re.escape(service.ghost_prefix)
    return {
        "id": service.id,
        "url": service.address,
        "as_token": service.as_token,
        "hs_token": service.hs_token,
        "sender_localpart": service.bot_username,
        "namespaces": {
            "users": [{"exclusive": True, "regex": f"@{prefix}.*:{domain}"}],
            "aliases": [{"exclusive": True, "regex": f"#{prefix}.*:{domain}"}],
            "rooms": [],
        },
        "rate_limited": False,
        "receive_ephemeral": True,
        "de.sorunome.msc2409.push_ephemeral": True,
        "protocols": ["bazaar"],
    }
