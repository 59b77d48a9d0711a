"""The marketplace's HTTP client for the bridge's API, as a shop's backend would use it."""

from __future__ import annotations

import io
from typing import Any

import aiohttp


class MarketplaceClient:
    def __init__(self, base_url: str, site: str, token: str) -> None:
        self.base = f"{base_url}/api/v1/sites/{site}"
        self.token = token
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        token: str | None = None,
        params: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        headers = {}
        bearer = self.token if token is None else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        data = raw
        if body is not None:
            kwargs: dict[str, Any] = {"json": body}
        else:
            kwargs = {"data": data}
            if data is not None:
                headers["Content-Type"] = "application/json"
        async with self.session.request(
            method, self.base + path, headers=headers, params=params, **kwargs
        ) as response:
            answer = await response.json(content_type=None)
            return response.status, answer

    async def ok(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        status, answer = await self.call(method, path, body, **kwargs)
        assert 200 <= status < 300, (status, answer)
        return answer

    async def put_file(
        self, path: str, data: bytes, name: str, content_type: str = "image/png"
    ) -> tuple[int, Any]:
        """PUT a file as multipart/form-data with one `file` part (a template's file)."""
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(data), filename=name, content_type=content_type)
        async with self.session.put(
            self.base + path, data=form, headers={"Authorization": f"Bearer {self.token}"}
        ) as response:
            return response.status, await response.json(content_type=None)
