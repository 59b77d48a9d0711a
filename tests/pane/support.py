"""The pane's tests' common ground: a seller with an owner and a manager in a conversation
room, real OpenID tokens from Synapse, and a client of the pane's API as the page uses it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from tests.conftest import product
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

NewSeller = Callable[[str], Awaitable[SellerClient]]

BUYER = {
    "name": "Anna <img src=x onerror=alert(1)>",
    "email": "anna@example.com",
    "phone": "+370 600 12345",
    "profile_url": "https://shop.example/buyers/anna",
    "summary": {"orders_count": 3, "address": "Vilnius <b>old town</b>"},
}
KETTLE = product(title="Kettle <script>alert(1)</script>")


@dataclass
class PaneRoom:
    owner: SellerClient
    manager: SellerClient
    conversation_id: str
    room_id: str


def members(owner: SellerClient, manager: SellerClient | None) -> list[dict[str, str]]:
    found = [{"user_id": owner.user_id, "role": "owner"}]
    if manager is not None:
        found.append({"user_id": manager.user_id, "role": "manager"})
    return found


async def pane_room(marketplace: MarketplaceClient, new_seller: NewSeller) -> PaneRoom:
    """Seller acme, its owner and manager joined to the room of Anna's question."""
    owner = await new_seller("owner")
    manager = await new_seller("manager")
    await marketplace.ok(
        "PUT", "/sellers/acme", {"name": "ACME", "members": members(owner, manager)}
    )
    await marketplace.ok("PUT", "/buyers/anna", BUYER)
    conversation = await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "anna", "context": KETTLE}
    )
    room_id = conversation["room_id"]
    for client in (owner, manager):
        await client.wait_until(lambda c=client: room_id in c.invites, what="the invite")
        await client.accept_invite(room_id)
    await marketplace.ok(
        "PUT", "/sellers/acme/templates/hello", {"text": "Hello {buyer}, about {title}!"}
    )
    return PaneRoom(owner, manager, conversation["conversation_id"], room_id)


async def openid_token(client: SellerClient) -> dict[str, Any]:
    """A real OpenID token of the client's user, as Element would get it for a widget."""
    homeserver = client.client.homeserver
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{homeserver}/_matrix/client/v3/user/{quote(client.user_id)}/openid/request_token",
            json={},
            headers={"Authorization": f"Bearer {client.client.access_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        token: dict[str, Any] = await response.json()
        return token


class PaneClient:
    """The pane's calls to the bridge, as pane.js makes them."""

    def __init__(self, public_url: str) -> None:
        self.base = f"{public_url}/matrix-widget/v1"
        self.session = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, body: Any = None, *, session: str | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {session}"} if session else {}
        async with self.session.request(
            method, self.base + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json(content_type=None)

    async def open(self, room_id: str, token: dict[str, Any]) -> tuple[int, Any]:
        return await self.call(
            "POST",
            "/session",
            {
                "room_id": room_id,
                "access_token": token["access_token"],
                "matrix_server_name": token["matrix_server_name"],
            },
        )

    async def session_for(self, room_id: str, client: SellerClient) -> str:
        status, answer = await self.open(room_id, await openid_token(client))
        assert status == 200, answer
        session: str = answer["session"]
        return session

    async def room(self, room_id: str, session: str) -> tuple[int, Any]:
        return await self.call("GET", f"/rooms/{quote(room_id)}", session=session)

    async def send(self, room_id: str, name: str, session: str, **body: Any) -> tuple[int, Any]:
        return await self.call(
            "POST", f"/rooms/{quote(room_id)}/templates/{quote(name)}", body, session=session
        )
