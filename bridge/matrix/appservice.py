"""The appservice HTTP API the homeserver calls: transactions, user and room queries, ping."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web

from bridge.core.conversations import Conversations
from bridge.core.ids import ConversationID, SiteID
from bridge.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bridge.http import bearer_token, errors_middleware, read_json
from bridge.matrix.events import TransactionProcessor
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.rooms import MatrixRooms

logger = logging.getLogger(__name__)

HS_TOKEN = web.AppKey("hs_token", str)
PROCESSOR = web.AppKey("processor", TransactionProcessor)
NAMES = web.AppKey("names", MatrixNames)
CONVERSATIONS = web.AppKey("conversations", Conversations)
ROOMS = web.AppKey("rooms", MatrixRooms)

routes = web.RouteTableDef()

EPHEMERAL_KEYS = ("ephemeral", "de.sorunome.msc2409.ephemeral")


@web.middleware
async def homeserver_auth(request: web.Request, handler: Any) -> web.StreamResponse:
    token = bearer_token(request) or request.query.get("access_token")
    if token is None:
        raise Unauthorized("The homeserver's token is missing", "M_UNAUTHORIZED")
    if not hmac.compare_digest(token.encode(), request.app[HS_TOKEN].encode()):
        logger.warning("Rejected an appservice call with a wrong hs_token from %s", request.remote)
        raise Forbidden("Wrong hs_token")
    response: web.StreamResponse = await handler(request)
    return response


@routes.put("/_matrix/app/v1/transactions/{txn_id}")
@routes.put("/transactions/{txn_id}")
async def put_transaction(request: web.Request) -> web.Response:
    body = await read_json(request)
    events = body.get("events", [])
    if not isinstance(events, list):
        raise BadRequest("'events' must be a list")
    for key in EPHEMERAL_KEYS:
        ephemeral = body.get(key)
        if isinstance(ephemeral, list):
            events = [*events, *ephemeral]
    events = [event for event in events if isinstance(event, dict)]
    await request.app[PROCESSOR].accept(request.match_info["txn_id"], events)
    return web.json_response({})


@routes.get("/_matrix/app/v1/users/{user_id}")
@routes.get("/users/{user_id}")
async def query_user(request: web.Request) -> web.Response:
    """A ghost exists when its buyer does: register it now so the homeserver can go on."""
    parsed = request.app[NAMES].parse_ghost(request.match_info["user_id"])
    if parsed is not None:
        site, buyer_id = parsed
        try:
            buyer = await request.app[CONVERSATIONS].buyer(site, buyer_id)
        except NotFound:
            buyer = None
        if buyer is not None:
            await request.app[ROOMS].ensure_ghost(buyer)
            return web.json_response({})
    raise NotFound("No such user is provided by this bridge", "M_NOT_FOUND")


@routes.get("/_matrix/app/v1/rooms/{alias}")
@routes.get("/rooms/{alias}")
async def query_room(request: web.Request) -> web.Response:
    alias = request.match_info["alias"]
    names = request.app[NAMES]
    localpart = alias[1:].split(":", 1)[0] if alias.startswith("#") else ""
    if localpart.startswith(names.ghost_prefix):
        site, _, conversation_id = localpart[len(names.ghost_prefix) :].partition("_")
        conversations = request.app[CONVERSATIONS]
        try:
            conversation = await conversations.conversation(
                SiteID(site), ConversationID(conversation_id)
            )
        except (NotFound, BadRequest):
            conversation = None
        if conversation is not None and conversation.room_id is None:
            conversation = await conversations.ensure_room(conversation)
            if conversation.room_id is not None:
                return web.json_response({})
    raise NotFound("No such room alias is provided by this bridge", "M_NOT_FOUND")


@routes.post("/_matrix/app/v1/ping")
async def ping(request: web.Request) -> web.Response:
    await read_json(request)
    return web.json_response({})


def appservice_app(
    hs_token: str,
    processor: TransactionProcessor,
    names: MatrixNames,
    conversations: Conversations,
    rooms: MatrixRooms,
) -> web.Application:
    app = web.Application(middlewares=[errors_middleware, homeserver_auth])
    app[HS_TOKEN] = hs_token
    app[PROCESSOR] = processor
    app[NAMES] = names
    app[CONVERSATIONS] = conversations
    app[ROOMS] = rooms
    app.add_routes(routes)
    return app
