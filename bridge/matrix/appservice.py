"""The appservice HTTP API the homeserver calls: transactions, user and room queries, ping."""

from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web

from bridge.core.ids import ConversationID, SiteID
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bridge.http import bearer_token, errors_middleware, parse_json, read_body, read_json
from bridge.matrix.identifiers import MatrixNames
from bridge.matrix.rooms import MatrixRooms
from bridge.matrix.transactions import TransactionProcessor

logger = logging.getLogger(__name__)

HS_TOKEN = web.AppKey("hs_token", str)
PROCESSOR = web.AppKey("processor", TransactionProcessor)
NAMES = web.AppKey("names", MatrixNames)
CONVERSATIONS = web.AppKey("conversations", MarketplaceDesk)
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


# Synapse sends up to 100 events of up to 64 KiB each, escaped to ASCII (up to 3 × the
# bytes), and as many ephemeral and to-device events beside them: room to spare for all.
MAX_TRANSACTION_BYTES = 64 * 1024 * 1024


@routes.put("/_matrix/app/v1/transactions/{txn_id}")
@routes.put("/transactions/{txn_id}")
async def put_transaction(request: web.Request) -> web.Response:
    """Store and acknowledge the transaction.

    The homeserver retries anything but a 200 with the same transaction, forever, and holds
    every later event behind it: so what can't be used is logged and skipped, never
    refused. Only a failure to store (the database away) answers an error, to be retried.
    """
    txn_id = request.match_info["txn_id"]
    raw = await read_body(request, MAX_TRANSACTION_BYTES)
    try:
        body = parse_json(raw, mend=True)
    except BadRequest as error:
        logger.error("Skipping transaction %s: %s", txn_id, error.error)
        return web.json_response({})
    if not isinstance(body, dict):
        logger.error("Skipping transaction %s: its body is not a JSON object", txn_id)
        return web.json_response({})
    events = _events(body, "events", txn_id)
    for key in EPHEMERAL_KEYS:
        events += _events(body, key, txn_id)
    await request.app[PROCESSOR].accept(txn_id, events)
    return web.json_response({})


def _events(body: dict[str, Any], key: str, txn_id: str) -> list[dict[str, Any]]:
    found = body.get(key)
    if found is None:
        return []
    if not isinstance(found, list):
        logger.error("Skipping '%s' of transaction %s: not a list", key, txn_id)
        return []
    events = [event for event in found if isinstance(event, dict)]
    if len(events) < len(found):
        logger.error(
            "Skipping %d entries of '%s' in transaction %s: not objects",
            len(found) - len(events),
            key,
            txn_id,
        )
    return events


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
    conversations: MarketplaceDesk,
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
