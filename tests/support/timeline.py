"""A room's whole history as a seller's Matrix client reads it, paging back to the start."""

from __future__ import annotations

import nio

from tests.support.seller import SellerClient

MESSAGE_ID_KEY = "io.bazaar.message_id"


async def buyer_message_ids(seller: SellerClient, room_id: str) -> list[str]:
    """The `io.bazaar.message_id` of every buyer message in the room, oldest first; a
    message in the room twice is listed twice."""
    newest_first: list[str] = []
    start: str | None = None
    while True:
        response = await seller.client.room_messages(
            room_id,
            start=start,
            direction=nio.MessageDirection.back,
            limit=100,
            message_filter={"types": ["m.room.message"]},
        )
        assert isinstance(response, nio.RoomMessagesResponse), response
        for event in response.chunk:
            message_id = event.source.get("content", {}).get(MESSAGE_ID_KEY)
            if isinstance(message_id, str):
                newest_first.append(message_id)
        if not response.chunk or not response.end:
            return newest_first[::-1]
        start = response.end
