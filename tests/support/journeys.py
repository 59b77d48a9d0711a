"""The first steps many journeys share: a seller with members, a buyer, a conversation
opened through the marketplace API, and the buyer's widget client for it."""

from __future__ import annotations

from typing import Any

from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

# The Matrix ghost of buyer "anna" of the test site, as `two_conversations` makes her.
GHOST = "@bazaar_shop_anna:localhost"


async def open_conversation(
    marketplace: MarketplaceClient,
    owner: SellerClient,
    *,
    seller_id: str = "acme",
    buyer_id: str = "Anna_K",
    staff: SellerClient | None = None,
    manager: SellerClient | None = None,
) -> dict[str, Any]:
    """`staff` is a member in a role that doesn't answer; `manager` one who does."""
    members = [{"user_id": owner.user_id, "role": "owner"}]
    if staff is not None:
        members.append({"user_id": staff.user_id, "role": "staff"})
    if manager is not None:
        members.append({"user_id": manager.user_id, "role": "manager"})
    await marketplace.ok(
        "PUT", f"/sellers/{seller_id}", {"name": "ACME", "language": "en", "members": members}
    )
    await marketplace.ok("PUT", f"/buyers/{buyer_id}", {"name": "Anna K.", "language": "en"})
    status, conversation = await marketplace.call(
        "POST",
        "/conversations",
        {"seller_id": seller_id, "buyer_id": buyer_id, "context": product()},
    )
    assert status == 201, conversation
    return dict(conversation)


async def joined_conversation(
    marketplace: MarketplaceClient, owner: SellerClient
) -> dict[str, Any]:
    """`open_conversation`, with the owner in the room, as a seller who answers would be."""
    conversation = await open_conversation(marketplace, owner)
    room_id = conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    return conversation


async def anna_in(runner: BridgeRunner, sites: Sites) -> BuyerClient:
    """The widget client of the buyer `open_conversation` starts the conversation for."""
    token = buyer_token(sites.widget_secret, SITE, "Anna_K", name="Anna K.")
    return BuyerClient(runner.config.web.public_url, token)


async def two_conversations(
    marketplace: MarketplaceClient, owner: SellerClient
) -> list[dict[str, Any]]:
    """Seller acme and buyer anna talking about two products, both rooms joined by `owner`."""
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
    )
    await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna"})
    conversations = []
    for product_id in ("kettle-1", "mug-2"):
        conversations.append(
            await marketplace.ok(
                "POST",
                "/conversations",
                {"seller_id": "acme", "buyer_id": "anna", "context": product(product_id)},
            )
        )
    for conversation in conversations:
        await owner.wait_until(lambda c=conversation: c["room_id"] in owner.invites, what="invite")
        await owner.accept_invite(conversation["room_id"])
    return conversations


async def with_seller(marketplace: MarketplaceClient, owner: SellerClient, **extra: Any) -> None:
    """Seller acme with `owner` as its owner; `extra` goes into the seller's record."""
    await marketplace.ok(
        "PUT",
        "/sellers/acme",
        {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}], **extra},
    )


async def seller_messages(marketplace: MarketplaceClient, conversation_id: str) -> list[str]:
    """The texts of the seller's messages, as the marketplace lists them."""
    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    return [m["text"] for m in listed["messages"] if m["sender"] == "seller"]
