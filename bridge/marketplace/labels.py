"""The marketplace's API for a conversation's labels:
`PUT /api/v1/sites/{site}/conversations/{id}/labels` `{"labels": [...]}`."""

from __future__ import annotations

from aiohttp import web

from bridge.core.ids import ConversationID
from bridge.core.labels import SellerMarks, parse_labels
from bridge.core.views import ConversationView, conversation_json
from bridge.marketplace.api import BASE, CONVERSATIONS, MARKETPLACE, authenticated_site
from bridge.marketplace.bodies import LabelsBody

MARKS = web.AppKey("marks", SellerMarks)

routes = web.RouteTableDef()


@routes.put(BASE + "/conversations/{conversation_id}/labels")
@MARKETPLACE.operation(
    "Replace a conversation's labels; the room and the seller's Space follow",
    body=LabelsBody,
    answers={200: ConversationView},
)
async def put_labels(request: web.Request, body: LabelsBody) -> web.Response:
    site = authenticated_site(request)
    labels = parse_labels(body.labels)
    conversation = await request.app[CONVERSATIONS].conversation(
        site, ConversationID(request.match_info["conversation_id"])
    )
    conversation = await request.app[MARKS].set_labels(conversation, labels)
    return web.json_response(conversation_json(conversation))


def label_routes(app: web.Application, marks: SellerMarks) -> None:
    app[MARKS] = marks
    app.add_routes(routes)
