"""A buyer's browser-less client for the widget API and its stream."""

from __future__ import annotations

import asyncio
import io
import json
import time
from typing import Any

import aiohttp
import jwt


def buyer_token(
    secret: str,
    site: str,
    buyer_id: str,
    *,
    name: str = "Anna",
    lang: str | None = "en",
    expires_in: int = 3600,
) -> str:
    claims: dict[str, Any] = {
        "iss": site,
        "sub": buyer_id,
        "name": name,
        "exp": int(time.time()) + expires_in,
    }
    if lang:
        claims["lang"] = lang
    return jwt.encode(claims, secret, algorithm="HS256")


class BuyerClient:
    def __init__(self, public_url: str, token: str, origin: str | None = None) -> None:
        self.public_url = public_url
        self.base = f"{public_url}/widget/v1"
        self.token = token
        self.origin = origin
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if self.origin:
            headers["Origin"] = self.origin
        return headers

    async def call(
        self, method: str, path: str, body: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, self.base + path, json=body, headers=self._headers(), params=params
        ) as response:
            return response.status, await response.json(content_type=None)

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, answer = await self.call(method, path, body, **kwargs)
        assert 200 <= status < 300, (status, answer)
        return answer

    async def upload(
        self,
        conversation_id: str,
        data: bytes,
        name: str,
        client_id: str,
        text: str | None = None,
    ) -> tuple[int, Any]:
        """Send a file as the widget does: one multipart form."""
        form = aiohttp.FormData()
        form.add_field("client_id", client_id)
        if text is not None:
            form.add_field("text", text)
        form.add_field(
            "file", io.BytesIO(data), filename=name, content_type="application/octet-stream"
        )
        async with self.session.post(
            f"{self.base}/conversations/{conversation_id}/messages",
            data=form,
            headers=self._headers(),
        ) as response:
            return response.status, await response.json(content_type=None)

    async def fetch(
        self, conversation_id: str, attachment_id: str, *, thumbnail: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        async with self.session.get(
            f"{self.base}/conversations/{conversation_id}/attachments/{attachment_id}",
            params={"thumbnail": "1"} if thumbnail else None,
            headers=self._headers(),
        ) as response:
            return response.status, dict(response.headers), await response.read()

    async def stream(self, since: int | None = None) -> Stream:
        params = {"access_token": self.token}
        if since is not None:
            params["since"] = str(since)
        socket = await self.session.ws_connect(
            self.base + "/stream",
            params=params,
            headers={"Origin": self.origin} if self.origin else None,
        )
        return Stream(socket)


class Stream:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.frames: list[dict[str, Any]] = []

    async def next_of(self, kind: str, within: float = 45, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                message = await self.socket.receive()
                assert message.type == aiohttp.WSMsgType.TEXT, message
                frame = json.loads(message.data)
                self.frames.append(frame)
                if frame["type"] == kind and all(
                    _get(frame, key) == value for key, value in match.items()
                ):
                    return frame

    async def close(self) -> None:
        await self.socket.close()


def _get(frame: dict[str, Any], dotted: str) -> Any:
    value: Any = frame
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value
