"""The demo shop's side of the bridge's marketplace API: the few calls its checkout makes
(list and answer offers, list and put orders), with the site's api_token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from bridge.core.ids import ConversationID

# A demo call that hangs should fail, not hold a page or the offer answerer forever.
CALL_TIMEOUT = aiohttp.ClientTimeout(total=15)


def _segment(text: str) -> str:
    """One path segment: an id from a shop URL can't reach another API path."""
    return quote(text, safe="")


class MarketplaceRefused(Exception):
    """The bridge answered a call with an error (`status`, `errcode`, `error`)."""

    def __init__(self, status: int, errcode: str, error: str) -> None:
        super().__init__(f"{status} {errcode}: {error}")
        self.status = status
        self.errcode = errcode
        self.error = error


class MarketplaceAPI:
    """`api` is the site's API base, `{bridge}/api/v1/sites/{site}`. One client session per
    call keeps it usable from any task without a session to close."""

    def __init__(self, api: str, api_token: str) -> None:
        self.api = api.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_token}"}

    async def _call(self, method: str, path: str, body: object = None) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession(timeout=CALL_TIMEOUT) as session,
            session.request(method, self.api + path, json=body, headers=self._headers) as response,
        ):
            try:
                answer = await response.json()
            except (aiohttp.ContentTypeError, ValueError):
                answer = {}
            if not isinstance(answer, dict):
                answer = {}
            if response.status >= 400:
                raise MarketplaceRefused(
                    response.status,
                    str(answer.get("errcode", "")),
                    str(answer.get("error", response.reason or "")),
                )
            return answer

    async def offers(self, conversation_id: ConversationID) -> list[dict[str, Any]]:
        answer = await self._call("GET", f"/conversations/{_segment(conversation_id)}/offers")
        return [offer for offer in answer.get("offers", []) if isinstance(offer, dict)]

    async def answer_offer(
        self, conversation_id: ConversationID, offer_id: str, answer: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._call(
            "PUT", f"/conversations/{_segment(conversation_id)}/offers/{_segment(offer_id)}", answer
        )

    async def orders(self, conversation_id: ConversationID) -> list[dict[str, Any]]:
        answer = await self._call("GET", f"/conversations/{_segment(conversation_id)}/orders")
        return [order for order in answer.get("orders", []) if isinstance(order, dict)]

    async def put_order(
        self, conversation_id: ConversationID, order_id: str, order: dict[str, Any]
    ) -> dict[str, Any]:
        return await self._call(
            "PUT", f"/conversations/{_segment(conversation_id)}/orders/{_segment(order_id)}", order
        )
