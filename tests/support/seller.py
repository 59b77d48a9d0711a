"""A seller member's real Matrix client (matrix-nio), syncing like Element would."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import nio

TIMELINE_FILTER = {"room": {"timeline": {"limit": 500}}}


class SellerClient:
    def __init__(self, homeserver: str, user_id: str, password: str) -> None:
        self.user_id = user_id
        self._password = password
        self.client = nio.AsyncClient(homeserver, user_id)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.invites: set[str] = set()

    async def login(self) -> None:
        response = await self.client.login(self._password)
        assert isinstance(response, nio.LoginResponse), response

    async def close(self) -> None:
        await self.client.close()

    async def sync_once(self, timeout_ms: int = 1000) -> None:
        # A large timeline limit, so no event falls into a gap between two syncs.
        response = await self.client.sync(
            timeout=timeout_ms, full_state=False, sync_filter=TIMELINE_FILTER
        )
        assert isinstance(response, nio.SyncResponse), response
        for room_id in response.rooms.invite:
            self.invites.add(room_id)
        for room_id, room in response.rooms.join.items():
            timeline = self.events.setdefault(room_id, [])
            for event in room.timeline.events:
                timeline.append(event.source)

    async def wait_until(
        self, condition: Callable[[], Any], within: float = 45, what: str = "condition"
    ) -> Any:
        try:
            async with asyncio.timeout(within):
                while True:
                    result = condition()
                    if result:
                        return result
                    await self.sync_once()
        except TimeoutError:
            raise AssertionError(f"{self.user_id} never saw: {what}") from None

    async def wait_until_async(
        self, condition: Callable[[], Awaitable[bool]], within: float = 45, what: str = "condition"
    ) -> None:
        try:
            async with asyncio.timeout(within):
                while not await condition():
                    await self.sync_once(timeout_ms=500)
        except TimeoutError:
            raise AssertionError(f"{self.user_id} never saw: {what}") from None

    async def accept_invite(self, room_id: str) -> None:
        response = await self.client.join(room_id)
        assert isinstance(response, nio.JoinResponse), response

    def messages(self, room_id: str) -> list[dict[str, Any]]:
        return [e for e in self.events.get(room_id, []) if e.get("type") == "m.room.message"]

    def conversation(self, room_id: str) -> list[str]:
        """The bodies of what was said in a conversation room, leaving out the bot's card of
        the buyer's profile that opens every room."""
        return [
            m["content"].get("body", "")
            for m in self.messages(room_id)
            if "io.bazaar.card" not in m["content"]
        ]

    async def state(self, room_id: str, event_type: str, state_key: str = "") -> dict[str, Any]:
        response = await self.client.room_get_state_event(room_id, event_type, state_key)
        assert isinstance(response, nio.RoomGetStateEventResponse), response
        content: dict[str, Any] = response.content
        return content

    async def level(self, room_id: str, user_id: str) -> int:
        """`user_id`'s power level in the room as the spec reads `m.room.power_levels`: the
        one listed in `users`, else `users_default`, else 0."""
        levels = await self.state(room_id, "m.room.power_levels")
        level = levels.get("users", {}).get(user_id, levels.get("users_default", 0))
        assert isinstance(level, int), levels
        return level

    async def send_text(self, room_id: str, text: str) -> str:
        response = await self.client.room_send(
            room_id, "m.room.message", {"msgtype": "m.text", "body": text}
        )
        assert isinstance(response, nio.RoomSendResponse), response
        return str(response.event_id)

    async def send(self, room_id: str, content: dict[str, Any]) -> str:
        response = await self.client.room_send(room_id, "m.room.message", content)
        assert isinstance(response, nio.RoomSendResponse), response
        return str(response.event_id)

    async def redact(self, room_id: str, event_id: str) -> None:
        response = await self.client.room_redact(room_id, event_id)
        assert isinstance(response, nio.RoomRedactResponse), response

    async def upload(self, data: bytes, content_type: str, name: str) -> str:
        response, _ = await self.client.upload(
            io.BytesIO(data), content_type=content_type, filename=name, filesize=len(data)
        )
        assert isinstance(response, nio.UploadResponse), response
        return str(response.content_uri)

    async def download(self, mxc: str) -> tuple[int, bytes]:
        """Fetch media the way current clients do: authenticated, with the user's token."""
        server, media_id = mxc.removeprefix("mxc://").split("/", 1)
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.client.homeserver}/_matrix/client/v1/media/download/{server}/{media_id}",
                headers={"Authorization": f"Bearer {self.client.access_token}"},
            ) as response,
        ):
            return response.status, await response.read()

    async def display_name(self, user_id: str) -> str | None:
        response = await self.client.get_displayname(user_id)
        assert isinstance(response, nio.ProfileGetDisplayNameResponse), response
        return response.displayname
