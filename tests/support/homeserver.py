"""The homeserver's side of the appservice API: calls to the bridge as Synapse makes them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import aiohttp

from tests.conftest import BridgeRunner


def reply_event(room_id: str, sender: str, event_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "m.room.message",
        "room_id": room_id,
        "sender": sender,
        "event_id": event_id,
        "origin_server_ts": int(datetime.now(UTC).timestamp() * 1000),
        "content": {"msgtype": "m.text", "body": text},
    }


class Homeside:
    """Calls the bridge's appservice API the way Synapse does."""

    def __init__(self, runner: BridgeRunner, session: aiohttp.ClientSession) -> None:
        self.base = runner.config.appservice.address
        self.token = runner.config.appservice.hs_token
        self.session = session

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        if token == "":
            headers = {}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def transaction(self, txn_id: str, events: list[dict[str, Any]]) -> tuple[int, Any]:
        return await self.call("PUT", f"/_matrix/app/v1/transactions/{txn_id}", {"events": events})
