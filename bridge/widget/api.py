"""The buyer's API behind the widget: `/widget/v1/…` with a JWT, CORS per site, the stream."""

from __future__ import annotations

import gzip
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import jwt
from aiohttp import web

from bridge.core.buyer_desk import BuyerConversation, BuyerDesk, unread_total
from bridge.core.cards import BuyerCards
from bridge.core.feedback import FeedbackDesk
from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, SiteID
from bridge.core.models import Buyer
from bridge.core.validation import (
    MAX_CLIENT_ID_CHARS,
    MAX_TEXT_CHARS,
    parse_context,
    require_id,
    require_text,
)
from bridge.core.views import buyer_conversation_json, message_json
from bridge.errors import BadRequest, Forbidden, TooLarge, Unauthorized
from bridge.http import (
    Handler,
    bearer_token,
    file_response,
    query_number,
    read_json,
    read_upload,
)
from bridge.widget.minify import minify_script
from bridge.widget.stream import FeedHub, stream_feed
from bridge.widget.tokens import verify_buyer_token

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
BASE = "/widget/v1"


@dataclass(frozen=True)
class WidgetSite:
    widget_secret: str
    allowed_origins: frozenset[str]


@dataclass(frozen=True)
class WidgetContext:
    desk: BuyerDesk
    hub: FeedHub
    sites: Mapping[SiteID, WidgetSite]
    max_upload_bytes: int
    feedback: FeedbackDesk
    cards: BuyerCards

    @property
    def any_origin(self) -> frozenset[str]:
        return frozenset().union(*(site.allowed_origins for site in self.sites.values()))


WIDGET = web.AppKey("widget", WidgetContext)
routes = web.RouteTableDef()


async def _buyer(request: web.Request) -> Buyer:
    """The signed-in buyer of the request, from the token, on an origin the site allows."""
    widget = request.app[WIDGET]
    token = bearer_token(request) or request.query.get("access_token")
    if not token:
        raise Unauthorized("Send the buyer's token as 'Authorization: Bearer …'", "M_MISSING_TOKEN")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.InvalidTokenError:
        raise Unauthorized("The buyer token is not a JWT", "M_UNKNOWN_TOKEN") from None
    site = widget.sites.get(SiteID(str(issuer)))
    if site is None:
        raise Unauthorized("The buyer token names no known site", "M_UNKNOWN_TOKEN")
    claims = verify_buyer_token(site.widget_secret, SiteID(str(issuer)), token)
    origin = request.headers.get("Origin")
    if origin is not None and origin not in site.allowed_origins:
        raise Forbidden(
            f"Origin {origin} is not allowed for this site", "BAZAAR_ORIGIN_NOT_ALLOWED"
        )
    try:
        buyer_id = BuyerID(require_id(claims.buyer_id, "sub"))
    except BadRequest as error:
        raise Unauthorized(f"The buyer token's {error.error}", "M_UNKNOWN_TOKEN") from None
    name = (claims.name or "").strip()[:200]
    return await widget.desk.sign_in(Buyer(claims.site, buyer_id, name, claims.lang))


def _view(item: BuyerConversation) -> dict[str, object]:
    return buyer_conversation_json(
        item.conversation, seller_name=item.seller_name, last_message=item.last_message
    )


def _message_id(request: web.Request, key: str) -> MessageID | None:
    value = request.query.get(key)
    return MessageID(value) if value else None


@routes.get(BASE + "/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    found = await widget.desk.conversations(buyer)
    return web.json_response(
        {
            "conversations": [_view(item) for item in found],
            "unread_total": unread_total(found),
            # The widget checks a file's size before sending it all the way.
            "max_upload_bytes": widget.max_upload_bytes,
        }
    )


@routes.post(BASE + "/conversations")
async def start_conversation(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    body = await read_json(request)
    desk = request.app[WIDGET].desk
    seller = await desk.seller(buyer, SellerID(require_id(body.get("seller_id"), "seller_id")))
    item, created = await desk.start(buyer, seller, parse_context(body.get("context")))
    return web.json_response(_view(item), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    limit = query_number(request, "limit", 50)
    before, after = _message_id(request, "before"), _message_id(request, "after")
    if before and after:
        raise BadRequest("Give 'before' or 'after', not both")
    messages = await request.app[WIDGET].desk.messages(
        buyer,
        ConversationID(request.match_info["conversation_id"]),
        before=before,
        after=after,
        limit=limit,
    )
    return web.json_response({"messages": [message_json(m) for m in messages]})


@routes.post(BASE + "/conversations/{conversation_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    conversation_id = ConversationID(request.match_info["conversation_id"])
    if request.content_type == "multipart/form-data":
        # A file is refused (404, 403, 429) before its bytes are read, not after.
        async with widget.desk.sending_file(buyer, conversation_id) as conversation:
            upload = await read_upload(request, widget.max_upload_bytes)
            if upload.data is None:
                raise BadRequest("Attach the file as the form's 'file' part", "M_MISSING_PARAM")
            text = upload.fields.get("text", "").strip()
            if len(text) > MAX_TEXT_CHARS:
                raise TooLarge(f"'text' is longer than {MAX_TEXT_CHARS} characters")
            message, created = await widget.desk.post_file(
                buyer,
                conversation,
                text,
                require_text(
                    upload.fields.get("client_id"), "client_id", limit=MAX_CLIENT_ID_CHARS
                ),
                upload.data,
                upload.filename,
            )
    else:
        body = await read_json(request)
        client_id = require_text(body.get("client_id"), "client_id", limit=MAX_CLIENT_ID_CHARS)
        if body.get("text") in (None, ""):
            # A retry of a stored message by its client id, e.g. one that carried a file.
            message = await widget.desk.retry(buyer, conversation_id, client_id)
            return web.json_response(message_json(message), status=200)
        message, created = await widget.desk.post(
            buyer, conversation_id, require_text(body.get("text"), "text"), client_id
        )
    return web.json_response(message_json(message), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/cards")
async def cards(request: web.Request) -> web.Response:
    """The conversation's open and ended offers and its orders (`core/cards.py`)."""
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    found = await widget.cards.cards(buyer, ConversationID(request.match_info["conversation_id"]))
    return web.json_response(found)


@routes.get(BASE + "/conversations/{conversation_id}/attachments/{attachment_id}")
async def attachment(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    download = await request.app[WIDGET].desk.attachment(
        buyer,
        ConversationID(request.match_info["conversation_id"]),
        request.match_info["attachment_id"],
        thumbnail=request.query.get("thumbnail") in ("1", "true"),
    )
    return file_response(download)


@routes.post(BASE + "/conversations/{conversation_id}/read")
async def mark_read(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    body = await read_json(request)
    unread = await request.app[WIDGET].desk.read(
        buyer,
        ConversationID(request.match_info["conversation_id"]),
        MessageID(require_id(body.get("up_to"), "up_to")),
    )
    return web.json_response({"unread": unread})


@routes.post(BASE + "/conversations/{conversation_id}/block")
@routes.post(BASE + "/conversations/{conversation_id}/unblock")
async def block(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    item = await request.app[WIDGET].desk.set_block(
        buyer,
        ConversationID(request.match_info["conversation_id"]),
        blocked=request.path.endswith("/block"),
    )
    return web.json_response(_view(item))


@routes.get(BASE + "/sellers/{seller_id}")
async def seller_state(request: web.Request) -> web.Response:
    """What the widget shows before the buyer writes: open or away, chat on or off."""
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    seller = await widget.desk.seller(buyer, SellerID(request.match_info["seller_id"]))
    return web.json_response(await widget.feedback.state(seller))


@routes.post(BASE + "/sellers/{seller_id}/feedback")
async def leave_feedback(request: web.Request) -> web.Response:
    """The form a buyer sends instead of a message while the seller's chat is off."""
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    seller = await widget.desk.seller(buyer, SellerID(request.match_info["seller_id"]))
    body = await read_json(request)
    feedback = await widget.feedback.leave(buyer, seller, body.get("text"), body.get("contact"))
    return web.json_response({"feedback_id": feedback.feedback_id}, status=201)


@routes.post(BASE + "/conversations/{conversation_id}/typing")
async def typing(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    body = await read_json(request)
    state = body.get("typing")
    if not isinstance(state, bool):
        raise BadRequest(
            "'typing' must be true or false", "M_MISSING_PARAM" if state is None else None
        )
    await request.app[WIDGET].desk.typing(
        buyer, ConversationID(request.match_info["conversation_id"]), state
    )
    return web.json_response({})


@routes.get(BASE + "/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    # A frame's seq; none means from now on (where the buyer's feed stands).
    since = query_number(request, "since", -1)
    return await stream_feed(
        request, widget.hub, buyer.site, buyer.buyer_id, since if since >= 0 else None
    )


@dataclass(frozen=True)
class StaticFile:
    mtime: float
    raw: bytes
    gzipped: bytes
    etag: str


_static_cache: dict[Path, StaticFile] = {}


def _static(path: Path) -> StaticFile:
    """The file as served (lightly minified, `minify.py`) and its gzip, made once per
    version of the file; the ETag is of the bytes served."""
    mtime = path.stat().st_mtime
    cached = _static_cache.get(path)
    if cached is None or cached.mtime != mtime:
        raw = minify_script(path.read_text(encoding="utf-8")).encode()
        cached = StaticFile(
            mtime, raw, gzip.compress(raw, 9, mtime=0), f'"{hashlib.sha256(raw).hexdigest()[:20]}"'
        )
        _static_cache[path] = cached
    return cached


@routes.get("/widget/{filename:[a-z0-9-]+\\.js}")
async def static_file(request: web.Request) -> web.StreamResponse:
    path = STATIC / request.match_info["filename"]
    if not path.is_file():
        raise web.HTTPNotFound()
    served = _static(path)
    headers = {
        "Content-Type": "text/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=300",
        "X-Content-Type-Options": "nosniff",
        "ETag": served.etag,
        "Vary": "Accept-Encoding",
    }
    if request.headers.get("If-None-Match") == served.etag:
        return web.Response(status=304, headers=headers)
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        return web.Response(body=served.gzipped, headers={**headers, "Content-Encoding": "gzip"})
    return web.Response(body=served.raw, headers=headers)


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for the buyer API: only the sites' own shop origins may call it from a page."""
    if not request.path.startswith(BASE):
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[WIDGET].any_origin
    if request.method == "OPTIONS":
        if not allowed:
            return web.json_response(
                {
                    "errcode": "BAZAAR_ORIGIN_NOT_ALLOWED",
                    "error": f"Origin {origin} is not allowed",
                },
                status=403,
            )
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if allowed and origin is not None and not response.prepared:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


def widget_routes(app: web.Application, widget: WidgetContext) -> None:
    app[WIDGET] = widget
    app.add_routes(routes)
