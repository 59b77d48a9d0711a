"""Who opened the pane: a Matrix OpenID token, checked with the bridge's own homeserver
(`/_matrix/federation/v1/openid/userinfo`), names the member."""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

import aiohttp

from bridge.core.ids import UserID
from bridge.errors import Forbidden, Unauthorized, Unavailable

logger = logging.getLogger(__name__)

WRONG_HOMESERVER = "BAZAAR_WRONG_HOMESERVER"
BAD_TOKEN = "BAZAAR_BAD_OPENID_TOKEN"
# An OpenID token is a short opaque string; anything longer is not worth a request.
MAX_TOKEN_CHARS = 1000
USERINFO_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)


class OpenIdCheck:
    """Asks the homeserver whose an OpenID token is. Only the bridge's homeserver is asked:
    a token another server issued would make the bridge call a server a stranger chose."""

    def __init__(self, address: str, server_name: str, http: aiohttp.ClientSession) -> None:
        self._address = address.rstrip("/")
        self._server_name = server_name
        self._http = http

    async def user_of(self, access_token: str, server_name: str) -> UserID:
        if server_name != self._server_name:
            raise Forbidden(f"The pane takes tokens of {self._server_name} only", WRONG_HOMESERVER)
        if not access_token or len(access_token) > MAX_TOKEN_CHARS:
            raise Unauthorized("The OpenID token is not valid", BAD_TOKEN)
        url = (
            f"{self._address}/_matrix/federation/v1/openid/userinfo"
            f"?access_token={quote(access_token, safe='')}"
        )
        try:
            async with self._http.get(url, timeout=USERINFO_TIMEOUT) as response:
                status, text = response.status, await response.text()
        except (aiohttp.ClientError, TimeoutError) as error:
            logger.warning("The homeserver did not answer an OpenID check: %r", error)
            raise Unavailable("The homeserver did not answer; try again") from None
        if status in (401, 403, 404):
            raise Unauthorized("The OpenID token is unknown or expired", BAD_TOKEN)
        if status != 200:
            logger.warning("OpenID check: HTTP %d %s", status, text[:200])
            raise Unavailable("The homeserver could not check the token; try again")
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        sub = answer.get("sub") if isinstance(answer, dict) else None
        # The user must be of this homeserver: the server vouches for its own users only.
        if (
            not isinstance(sub, str)
            or not sub.startswith("@")
            or not sub.endswith(":" + self._server_name)
        ):
            raise Unauthorized("The homeserver named no user of its own", BAD_TOKEN)
        return UserID(sub)
