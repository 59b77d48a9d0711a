"""A thin appservice gateway over matrix-nio's sans-I/O request builders.

nio builds the request (method, path, JSON body) and parses the answer; this module adds
what an appservice needs and nio lacks: the `as_token` as bearer, `?user_id=` to act as a
ghost, `?ts=` to keep a message's real time, and `m.login.application_service` sign-up.
Failures become the domain's `HomeserverUnavailable` (retry) or `MatrixRejected` (don't).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp
import nio

from bridge.core.ids import EventID, RoomID, UserID
from bridge.core.lanes import Lanes
from bridge.core.ports import HomeserverUnavailable, MatrixRejected

logger = logging.getLogger(__name__)

# sock_connect, not connect: waiting for a free pooled connection is queueing, not a failure.
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5)


# Refusals of the request itself, which no later try of the same request can change: the
# body or a name in it breaks Matrix's grammar or limits. Anything else (M_FORBIDDEN,
# M_UNKNOWN_TOKEN, M_NOT_FOUND, …) depends on the server's state, which may change.
PERMANENT_REFUSALS = frozenset(
    {
        "M_BAD_JSON",
        "M_NOT_JSON",
        "M_INVALID_PARAM",
        "M_INVALID_USERNAME",
        "M_INVALID_ROOM_STATE",
        "M_EXCLUSIVE",
        "M_TOO_LARGE",
    }
)

# Events looked through per page when checking whether a message reached a room.
TIMELINE_PAGE = 50
# Events per page when reading a room's timeline back (`matrix/catchup.py`).
CATCH_UP_PAGE = 100

_MXC = re.compile(r"^mxc://([A-Za-z0-9.:\[\]-]+)/([A-Za-z0-9_-]+)$")


def parse_mxc(mxc: str) -> tuple[str, str]:
    """The server name and media id of an mxc:// URI; ValueError for anything else."""
    match = _MXC.match(mxc)
    if match is None:
        raise ValueError(f"not an mxc:// URI: {mxc[:80]!r}")
    return match.group(1), match.group(2)


def without_silent_retries(session: aiohttp.ClientSession) -> aiohttp.ClientSession:
    """The session, no longer sending an idempotent request again on its own.

    aiohttp repeats a PUT once when the kept-alive connection it went out on drops. If the
    homeserver carried it out and went down, the repeat is refused a connection, and that
    reads as "never sent": the courier would then send again without looking in the room,
    to a restarted Synapse that has forgotten the transaction id. Without the repeat, the
    dropped connection itself is the error, which says the send may have been done. The
    flag is aiohttp's own (its test client turns it off); should it go, setting it warns,
    and the tests turn that warning into a failure."""
    session._retry_connection = False
    return session


class MatrixGateway:
    def __init__(self, address: str, as_token: str, session: aiohttp.ClientSession) -> None:
        self._address = address.rstrip("/")
        self._as_token = as_token
        self._session = session
        # Requests made, by method: for logs and benchmarks of how much work a change costs.
        self.requests: Counter[str] = Counter()
        # Live requests go ahead of bulk ones (`core/lanes.py`).
        self.lanes = Lanes()
        self._unreachable_since: datetime | None = None

    async def request(
        self,
        method: str,
        path: str,
        body: str | bytes | dict[str, Any] | None = None,
        *,
        as_user: UserID | None = None,
        ts: int | None = None,
        content_type: str = "application/json",
        outside_lanes: bool = False,
    ) -> dict[str, Any]:
        answer = await self.request_json(
            method,
            path,
            body,
            as_user=as_user,
            ts=ts,
            content_type=content_type,
            outside_lanes=outside_lanes,
        )
        return answer if isinstance(answer, dict) else {}

    async def request_json(
        self,
        method: str,
        path: str,
        body: str | bytes | dict[str, Any] | None = None,
        *,
        as_user: UserID | None = None,
        ts: int | None = None,
        content_type: str = "application/json",
        outside_lanes: bool = False,
    ) -> Any:
        """One client-server API call; the parsed JSON answer, whatever its shape."""
        url = self._url(path, as_user=as_user, ts=ts)
        path = urlsplit(path).path
        self.requests[method] += 1
        data = json.dumps(body) if isinstance(body, dict) else body
        headers = {"Authorization": f"Bearer {self._as_token}"}
        if data is not None:
            headers["Content-Type"] = content_type
        try:
            async with (
                nullcontext() if outside_lanes else self.lanes.turn(),
                self._session.request(
                    method, url, data=data, headers=headers, timeout=REQUEST_TIMEOUT
                ) as response,
            ):
                status = response.status
                text = await response.text()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            # Never connected: the request did nothing.
            self._unreachable_since = self._unreachable_since or datetime.now(UTC)
            raise HomeserverUnavailable(f"{method} {path}: {error!r}", maybe_done=False) from error
        except (aiohttp.ClientError, TimeoutError) as error:
            # Sent, perhaps carried out, and the answer lost.
            self._unreachable_since = self._unreachable_since or datetime.now(UTC)
            raise HomeserverUnavailable(f"{method} {path}: {error!r}") from error
        if status >= 400:
            self._raise_for(status, text, method, path)
        try:
            return json.loads(text) if text else {}
        except ValueError:
            return {}

    def _url(self, path: str, *, as_user: UserID | None, ts: int | None) -> str:
        parts = urlsplit(path)
        # nio puts the access token in the query; the gateway sends the as_token as a header.
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "access_token"]
        if as_user is not None:
            query.append(("user_id", as_user))
        if ts is not None:
            query.append(("ts", str(ts)))
        return self._address + urlunsplit(("", "", parts.path, urlencode(query), ""))

    # Users

    async def register_ghost(self, localpart: str) -> None:
        """Register an appservice user; one that exists already is fine."""
        body = {"type": "m.login.application_service", "username": localpart}
        try:
            await self.request("POST", "/_matrix/client/v3/register", body)
        except MatrixRejected as error:
            if error.errcode != "M_USER_IN_USE":
                raise

    async def set_display_name(self, user_id: UserID, name: str) -> None:
        method, path, data = nio.Api.profile_set_displayname("", user_id, name)
        await self.request(method, path, data, as_user=user_id)

    async def set_avatar_url(self, user_id: UserID, mxc: str) -> None:
        method, path, data = nio.Api.profile_set_avatar("", user_id, mxc)
        await self.request(method, path, data, as_user=user_id)

    async def display_name(self, user_id: UserID) -> str | None:
        method, path = nio.Api.profile_get_displayname(user_id)
        try:
            answer = await self.request(method, path)
        except MatrixRejected:
            return None
        name = answer.get("displayname")
        return name if isinstance(name, str) and name else None

    async def room_versions(self) -> tuple[str, frozenset[str]]:
        """The homeserver's default room version and every version it offers."""
        answer = await self.request("GET", "/_matrix/client/v3/capabilities")
        versions = answer.get("capabilities", {}).get("m.room_versions", {})
        offered = versions.get("available")
        return str(versions.get("default", "1")), frozenset(
            offered if isinstance(offered, dict) else ()
        )

    async def default_room_version(self) -> str:
        return (await self.room_versions())[0]

    async def room_state(
        self, room_id: RoomID, event_type: str, state_key: str = ""
    ) -> dict[str, Any] | None:
        method, path = nio.Api.room_get_state_event("", room_id, event_type, state_key)
        try:
            return await self.request(method, path)
        except MatrixRejected as error:
            if error.errcode == "M_NOT_FOUND":
                return None
            raise

    async def ping(self, appservice_id: str) -> int:
        """Ask the homeserver to call us back (MSC2659); it also retries transactions it had
        queued for us while we were away. Returns the round trip in milliseconds."""
        answer = await self.request(
            "POST",
            f"/_matrix/client/v1/appservice/{quote(appservice_id, safe='')}/ping",
            {"transaction_id": f"bazaar-ping-{secrets.token_hex(6)}"},
        )
        return int(answer.get("duration_ms", 0))

    async def whoami(self) -> str:
        answer = await self.request("GET", "/_matrix/client/v3/account/whoami")
        return str(answer.get("user_id", ""))

    # Media

    async def upload(
        self, data: bytes, content_type: str, filename: str, *, as_user: UserID | None = None
    ) -> str:
        """Put bytes in the homeserver's media repository; returns the mxc:// URI."""
        method, path = nio.Api.upload("", filename)
        answer = await self.request(method, path, data, as_user=as_user, content_type=content_type)
        return str(nio.UploadResponse.from_dict(answer).content_uri)

    async def download(self, mxc: str, *, max_bytes: int) -> tuple[bytes, str | None]:
        """The bytes behind an mxc:// URI and the type the homeserver claims for them.

        Authenticated media (`/_matrix/client/v1/media/download`) first; the legacy
        unauthenticated path only where the homeserver doesn't know the new one."""
        server, media_id = parse_mxc(mxc)
        where = f"{quote(server, safe='')}/{quote(media_id, safe='')}"
        try:
            return await self._download(f"/_matrix/client/v1/media/download/{where}", max_bytes)
        except MatrixRejected as error:
            if error.errcode != "M_UNRECOGNIZED":
                raise
        logger.info("The homeserver lacks authenticated media; using the legacy download path")
        return await self._download(f"/_matrix/media/v3/download/{where}", max_bytes)

    async def _download(self, path: str, max_bytes: int) -> tuple[bytes, str | None]:
        self.requests["GET"] += 1
        headers = {"Authorization": f"Bearer {self._as_token}"}
        try:
            async with self._session.get(
                self._address + path, headers=headers, timeout=REQUEST_TIMEOUT
            ) as response:
                if response.status != 200:
                    text = await response.text()
                    self._raise_for(response.status, text, "GET", path)
                too_large = MatrixRejected(
                    "M_TOO_LARGE", f"{path} holds more than {max_bytes} bytes", permanent=True
                )
                if response.content_length is not None and response.content_length > max_bytes:
                    raise too_large
                # The whole file, however many packets it takes: read(n) gives only what
                # has arrived so far.
                data = bytearray()
                async for chunk in response.content.iter_chunked(256 * 1024):
                    data += chunk
                    if len(data) > max_bytes:
                        raise too_large
                declared = response.headers.get("Content-Type")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise HomeserverUnavailable(f"GET {path}: {error!r}") from error
        return bytes(data), declared

    @staticmethod
    def _raise_for(status: int, text: str, method: str, path: str) -> None:
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {}
        if status >= 500 or status == 429:
            raise HomeserverUnavailable(
                f"{method} {path}: HTTP {status} {text[:200]}", maybe_done=status != 429
            )
        error_body = answer if isinstance(answer, dict) else {}
        errcode = str(error_body.get("errcode", f"HTTP_{status}"))
        raise MatrixRejected(
            errcode,
            str(error_body.get("error", text[:200])),
            permanent=errcode in PERMANENT_REFUSALS or status == 413,
        )

    # Rooms

    async def create_room(
        self,
        *,
        alias_localpart: str | None,
        name: str,
        topic: str | None,
        room_version: str | None,
        invite: Sequence[UserID],
        initial_state: Sequence[dict[str, Any]],
        power_levels: dict[str, Any],
        space: bool = False,
    ) -> RoomID:
        method, path, data = nio.Api.room_create(
            "",
            alias=alias_localpart,
            name=name,
            topic=topic,
            room_version=room_version,
            preset=nio.RoomPreset.private_chat,
            invite=invite,
            initial_state=initial_state,
            power_level_override=power_levels,
            space=space,
        )
        answer = await self.request(method, path, data)
        return RoomID(nio.RoomCreateResponse.from_dict(answer).room_id)

    async def resolve_alias(self, alias: str) -> RoomID | None:
        method, path = nio.Api.room_resolve_alias(alias)
        try:
            answer = await self.request(method, path)
        except MatrixRejected as error:
            if error.errcode == "M_NOT_FOUND":
                return None
            raise
        return RoomID(nio.RoomResolveAliasResponse.from_dict(answer, alias).room_id)

    async def invite(self, room_id: RoomID, user_id: UserID) -> None:
        method, path, data = nio.Api.room_invite("", room_id, user_id)
        await self.request(method, path, data)

    async def kick(self, room_id: RoomID, user_id: UserID, reason: str) -> None:
        method, path, data = nio.Api.room_kick("", room_id, user_id, reason)
        await self.request(method, path, data)

    async def full_state(self, room_id: RoomID) -> list[dict[str, Any]]:
        method, path = nio.Api.room_get_state("", room_id)
        answer = await self.request_json(method, path)
        return (
            [event for event in answer if isinstance(event, dict)]
            if isinstance(answer, list)
            else []
        )

    async def join(self, room_id: RoomID, user_id: UserID) -> None:
        method, path = nio.Api.join("", room_id)
        await self.request(method, path, "{}", as_user=user_id)

    async def send(
        self,
        room_id: RoomID,
        event_type: str,
        content: dict[str, Any],
        txn_id: str,
        *,
        as_user: UserID | None = None,
        ts: int | None = None,
    ) -> EventID:
        method, path, data = nio.Api.room_send("", room_id, event_type, content, txn_id)
        answer = await self.request(method, path, data, as_user=as_user, ts=ts)
        return EventID(nio.RoomSendResponse.from_dict(answer, room_id).event_id)

    async def recent_messages(
        self, room_id: RoomID, senders: Sequence[UserID], *, before: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the room's `m.room.message` events from these senders, newest first,
        read as the bot; and the token of the page before it (None at the room's start)."""
        return await self._page_back(
            room_id,
            before,
            TIMELINE_PAGE,
            {"senders": list(senders), "types": ["m.room.message"]},
        )

    # Reading back

    async def reachable(self) -> None:
        """Ask the homeserver for its versions; raises HomeserverUnavailable when it is
        away. Takes no turn in the lanes: it is a look, not work."""
        await self.request("GET", "/_matrix/client/versions", outside_lanes=True)

    def take_unreachable_since(self) -> datetime | None:
        """When a request last found the homeserver unreachable, first of a run of such
        failures, since this was last asked (None: none did)."""
        since, self._unreachable_since = self._unreachable_since, None
        return since

    async def timeline_before(
        self, room_id: RoomID, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of the room's events before the place `before` (None: the room's end),
        newest first, each with its `room_id`; and the place before that page (None at the
        room's start)."""
        events, end = await self._page_back(room_id, before, CATCH_UP_PAGE, None)
        return [event | {"room_id": room_id} for event in events], end

    async def _page_back(
        self, room_id: RoomID, before: str | None, limit: int, only: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        method, path = nio.Api.room_messages(
            "",
            room_id,
            start=before,
            direction=nio.MessageDirection.back,
            limit=limit,
            message_filter=only,
        )
        answer = await self.request(method, path)
        chunk = answer.get("chunk")
        events = [e for e in chunk if isinstance(e, dict)] if isinstance(chunk, list) else []
        end = answer.get("end")
        return events, end if isinstance(end, str) and end else None

    async def redact(self, room_id: RoomID, event_id: EventID, reason: str, txn_id: str) -> EventID:
        """Redact an event as the bot; the same `txn_id` again is not a second redaction."""
        method, path, data = nio.Api.room_redact("", room_id, event_id, txn_id, reason=reason)
        answer = await self.request(method, path, data)
        return EventID(str(answer.get("event_id", "")))

    async def read_receipt(self, room_id: RoomID, event_id: EventID, as_user: UserID) -> None:
        # Unthreaded (no thread_id), so every client counts it for the whole room.
        method, path, _ = nio.Api.update_receipt_marker("", room_id, event_id)
        await self.request(method, path, "{}", as_user=as_user)

    async def typing(self, room_id: RoomID, user_id: UserID, typing: bool) -> None:
        method, path, data = nio.Api.room_typing("", room_id, user_id, typing, timeout=8000)
        await self.request(method, path, data, as_user=user_id)

    async def put_state(
        self, room_id: RoomID, event_type: str, content: Mapping[str, Any], state_key: str = ""
    ) -> EventID:
        method, path, data = nio.Api.room_put_state("", room_id, event_type, content, state_key)
        answer = await self.request(method, path, data)
        return EventID(str(answer.get("event_id", "")))
