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

from bridge.core.buyer_desk import (
    BuyerConversation,
    BuyerDesk,
    MarkedRead,
    TypingSent,
    unread_total,
)
from bridge.core.cards import BuyerCards, ConversationCards
from bridge.core.feedback import FeedbackDesk, FeedbackLeft, SellerStateView
from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, SiteID
from bridge.core.models import Buyer
from bridge.core.validation import AttachmentQuery, SellerRef, require_id
from bridge.core.views import (
    BuyerConversationList,
    BuyerConversationView,
    MessageList,
    MessageView,
    buyer_conversation_json,
    message_json,
)
from bridge.errors import BadRequest, Forbidden, Unauthorized
from bridge.http import Handler, bearer_token, file_response, read_json, read_upload
from bridge.openapi import Api, File, validated
from bridge.widget.bodies import (
    FeedbackBody,
    FileMessageForm,
    MessageBody,
    MessagesQuery,
    ReadBody,
    StartBody,
    StreamQuery,
    TypingBody,
)
from bridge.widget.minify import minify_script
from bridge.widget.stream import FeedHub, stream_feed
from bridge.widget.tokens import BuyerClaims, verify_buyer_token

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


CLAIMS = web.RequestKey("buyer_claims", BuyerClaims)


def _claims(request: web.Request) -> BuyerClaims:
    """The buyer token's claims, checked once per request, though the API's guard and the
    handler both ask."""
    claims = request.get(CLAIMS)
    if claims is None:
        claims = request[CLAIMS] = _checked_claims(request)
    return claims


def _checked_claims(request: web.Request) -> BuyerClaims:
    """The buyer token's claims, once its signature, expiry and origin are checked."""
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
        require_id(claims.buyer_id, "sub")
    except BadRequest as error:
        raise Unauthorized(f"The buyer token's {error.error}", "M_UNKNOWN_TOKEN") from None
    return claims


async def _token_guard(request: web.Request) -> BuyerClaims:
    return _claims(request)


async def _buyer(request: web.Request) -> Buyer:
    """The signed-in buyer of the request, from the token, on an origin the site allows."""
    claims = _claims(request)
    name = (claims.name or "").strip()[:200]
    return await request.app[WIDGET].desk.sign_in(
        Buyer(claims.site, BuyerID(claims.buyer_id), name, claims.lang)
    )


WIDGET_API = Api(
    "Bazaar buyer widget API",
    version="1",
    prefix=BASE + "/",
    security_scheme={
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "The buyer token (HS256, signed with the site's widget_secret) the "
        "marketplace issues, or that POST /api/v1/sites/{site}/buyer-tokens returns",
    },
    description="What the buyer's widget calls: the buyer's conversations and messages, "
    "files, read marks, typing, blocking, the seller's state and feedback form, and the "
    "stream of frames (a WebSocket).",
    guard=_token_guard,
)


def _view(item: BuyerConversation) -> BuyerConversationView:
    return buyer_conversation_json(
        item.conversation, seller_name=item.seller_name, last_message=item.last_message
    )


@routes.get(BASE + "/conversations")
@WIDGET_API.operation("The buyer's conversations", answers={200: BuyerConversationList})
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
@WIDGET_API.operation(
    "Ask a seller about a product (or find the conversation already open)",
    json=StartBody,
    answers={200: BuyerConversationView, 201: BuyerConversationView},
)
async def start_conversation(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    raw = await read_json(request)
    desk = request.app[WIDGET].desk
    # An unknown seller is the answer, before the rest of the body is looked at.
    seller = await desk.seller(buyer, SellerID(validated(SellerRef, raw).seller_id))
    item, created = await desk.start(buyer, seller, validated(StartBody, raw).context.context())
    return web.json_response(_view(item), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/messages")
@WIDGET_API.operation(
    "A conversation's messages, oldest first: the latest, or those before or after one",
    query=MessagesQuery,
    answers={200: MessageList},
)
async def list_messages(request: web.Request, query: MessagesQuery) -> web.Response:
    buyer = await _buyer(request)
    limit = int(query.limit) if query.limit else 50
    before = MessageID(query.before) if query.before else None
    after = MessageID(query.after) if query.after else None
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
@WIDGET_API.operation(
    "Send a message, or a file with a caption",
    json=MessageBody,
    form=FileMessageForm,
    answers={200: MessageView, 201: MessageView},
    errors=(409,),
    description="Stored before the answer (201, status pending); the same client_id again "
    "answers 200 with the stored message (409 if it came with other words), and a body of "
    "the client_id alone retries it.",
)
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
            form = validated(FileMessageForm, upload.fields)
            message, created = await widget.desk.post_file(
                buyer,
                conversation,
                form.text.strip(),
                form.client_id,
                upload.data,
                upload.filename,
            )
    else:
        body = validated(MessageBody, await read_json(request))
        if not body.text:
            # A retry of a stored message by its client id, e.g. one that carried a file.
            message = await widget.desk.retry(buyer, conversation_id, body.client_id)
            return web.json_response(message_json(message), status=200)
        message, created = await widget.desk.post(buyer, conversation_id, body.text, body.client_id)
    return web.json_response(message_json(message), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/cards")
@WIDGET_API.operation(
    "The conversation's offers and orders, as the widget shows them",
    answers={200: ConversationCards},
)
async def cards(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    found = await widget.cards.cards(buyer, ConversationID(request.match_info["conversation_id"]))
    return web.json_response(found)


@routes.get(BASE + "/conversations/{conversation_id}/attachments/{attachment_id}")
@WIDGET_API.operation(
    "An attachment's bytes (or its thumbnail)", query=AttachmentQuery, answers={200: File()}
)
async def attachment(request: web.Request, query: AttachmentQuery) -> web.Response:
    buyer = await _buyer(request)
    download = await request.app[WIDGET].desk.attachment(
        buyer,
        ConversationID(request.match_info["conversation_id"]),
        request.match_info["attachment_id"],
        thumbnail=query.thumbnail in ("1", "true"),
    )
    return file_response(download)


@routes.post(BASE + "/conversations/{conversation_id}/read")
@WIDGET_API.operation(
    "Mark the conversation read up to a message", body=ReadBody, answers={200: MarkedRead}
)
async def mark_read(request: web.Request, body: ReadBody) -> web.Response:
    buyer = await _buyer(request)
    unread = await request.app[WIDGET].desk.read(
        buyer, ConversationID(request.match_info["conversation_id"]), MessageID(body.up_to)
    )
    return web.json_response({"unread": unread})


@routes.post(BASE + "/conversations/{conversation_id}/block")
@routes.post(BASE + "/conversations/{conversation_id}/unblock")
@WIDGET_API.operation("Block or unblock the seller", answers={200: BuyerConversationView})
async def block(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    item = await request.app[WIDGET].desk.set_block(
        buyer,
        ConversationID(request.match_info["conversation_id"]),
        blocked=request.path.endswith("/block"),
    )
    return web.json_response(_view(item))


@routes.get(BASE + "/sellers/{seller_id}")
@WIDGET_API.operation(
    "What the widget shows before the buyer writes: open or away, chat on or off",
    answers={200: SellerStateView},
)
async def seller_state(request: web.Request) -> web.Response:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    seller = await widget.desk.seller(buyer, SellerID(request.match_info["seller_id"]))
    return web.json_response(await widget.feedback.state(seller))


@routes.post(BASE + "/sellers/{seller_id}/feedback")
@WIDGET_API.operation(
    "The form a buyer sends instead of a message while the seller's chat is off",
    body=FeedbackBody,
    answers={201: FeedbackLeft},
    errors=(409,),
)
async def leave_feedback(request: web.Request, body: FeedbackBody) -> web.Response:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    seller = await widget.desk.seller(buyer, SellerID(request.match_info["seller_id"]))
    feedback = await widget.feedback.leave(buyer, seller, body.text, body.contact)
    return web.json_response({"feedback_id": feedback.feedback_id}, status=201)


@routes.post(BASE + "/conversations/{conversation_id}/typing")
@WIDGET_API.operation("The buyer is typing, or stopped", body=TypingBody, answers={200: TypingSent})
async def typing(request: web.Request, body: TypingBody) -> web.Response:
    buyer = await _buyer(request)
    await request.app[WIDGET].desk.typing(
        buyer, ConversationID(request.match_info["conversation_id"]), body.typing
    )
    return web.json_response({})


@routes.get(BASE + "/stream")
@WIDGET_API.operation(
    "The buyer's stream of frames: a WebSocket (docs/widget-api.md)",
    query=StreamQuery,
    answers={101: None},
)
async def stream(request: web.Request, query: StreamQuery) -> web.StreamResponse:
    buyer = await _buyer(request)
    widget = request.app[WIDGET]
    # A frame's seq; none means from now on (where the buyer's feed stands).
    since = int(query.since) if query.since is not None else None
    return await stream_feed(request, widget.hub, buyer.site, buyer.buyer_id, since)


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
    WIDGET_API.serve(app, BASE + "/openapi.json")
