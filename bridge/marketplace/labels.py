"""The marketplace's API for a conversation's labels:
`PUT /api/v1/sites/{site}/conversations/{id}/labels` `{"labels": [...]}`."""

from __future__ import annotations

from aiohttp import web

from bridge.core.ids import ConversationID
from bridge.core.labels import SellerMarks, parse_labels
from bridge.core.views import conversation_json
from bridge.http import read_json
from bridge.marketplace.api import BASE, CONVERSATIONS, authenticated_site

MARKS = web.AppKey("marks", SellerMarks)

routes = web.RouteTableDef()


@routes.put(BASE + "/conversations/{conversation_id}/labels")
async def put_labels(request: web.Request) -> web.Response:
    """Replace the conversation's labels; the room and the seller's Space follow."""
    site = authenticated_site(request)
    body = await read_json(request)
    labels = parse_labels(body.get("labels"))
    conversation = await request.app[CONVERSATIONS].conversation(
        site, ConversationID(request.match_info["conversation_id"])
    )
    conversation = await request.app[MARKS].set_labels(conversation, labels)
    return web.json_response(conversation_json(conversation))


def label_routes(app: web.Application, marks: SellerMarks) -> None:
    app[MARKS] = marks
    app.add_routes(routes)
