"""The marketplace's server-to-server API: `/api/v1/sites/{site}/…`, bearer token per site."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping

from aiohttp import web

from bridge.core.attachments import AttachmentFiles
from bridge.core.hours import WeeklyHours, zone
from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, SiteID, UserID
from bridge.core.labels import parse_label
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import Buyer, ConversationState, Member, Seller, Side
from bridge.core.profile import parse_summary
from bridge.core.validation import AttachmentQuery, ContextBody, SellerRef, require_id
from bridge.core.views import (
    BuyerToken,
    BuyerView,
    ConversationList,
    ConversationView,
    MessageList,
    MessageView,
    SellerView,
    buyer_json,
    conversation_json,
    message_json,
    seller_json,
)
from bridge.errors import Forbidden, NotFound, Unauthorized
from bridge.http import bearer_token, file_response, read_json
from bridge.marketplace.bodies import (
    BlockBody,
    BuyerBody,
    BuyerTokenBody,
    ConversationQuery,
    MessageBody,
    MessagesQuery,
    SellerBody,
    StartBody,
)
from bridge.openapi import Api, File, validated

logger = logging.getLogger(__name__)

TokenIssuer = Callable[[SiteID, Buyer, int], tuple[str, int]]

CONVERSATIONS = web.AppKey("conversations", MarketplaceDesk)
FILES = web.AppKey("files", AttachmentFiles)
API_TOKENS = web.AppKey("api_tokens", dict[SiteID, str])
ISSUE_TOKEN: web.AppKey[TokenIssuer] = web.AppKey("issue_token")

routes = web.RouteTableDef()
BASE = "/api/v1/sites/{site}"


PROVEN_SITE = web.RequestKey("proven_site", SiteID)


def authenticated_site(request: web.Request) -> SiteID:
    """The site of the URL, once the caller has proven it speaks for it; proven once per
    request, though the API's guard and the handler both ask."""
    site = request.get(PROVEN_SITE)
    if site is None:
        site = request[PROVEN_SITE] = _proven_site(request)
    return site


def _proven_site(request: web.Request) -> SiteID:
    """The site of the URL, once the caller has proven it speaks for it.

    The token is checked first, so a caller without one learns nothing, not even which
    sites exist."""
    site = SiteID(request.match_info["site"])
    tokens = request.app[API_TOKENS]
    token = bearer_token(request)
    if token is None:
        raise Unauthorized(
            "Send the site's API token as 'Authorization: Bearer …'", "M_MISSING_TOKEN"
        )
    owners = [
        owner
        for owner, expected in tokens.items()
        if hmac.compare_digest(token.encode(), expected.encode())
    ]
    if not owners:
        raise Unauthorized("Unknown API token", "M_UNKNOWN_TOKEN")
    if site in owners:
        return site
    if site not in tokens:
        raise NotFound(f"Unknown site '{site}'", "BAZAAR_UNKNOWN_SITE")
    raise Forbidden("This token belongs to another site")


async def _site_guard(request: web.Request) -> SiteID:
    return authenticated_site(request)


MARKETPLACE = Api(
    "Bazaar marketplace API",
    version="1",
    prefix="/api/v1/sites/",
    security_scheme={
        "type": "http",
        "scheme": "bearer",
        "description": "The site's api_token from the bridge's config",
    },
    description="The marketplace's server-to-server API: sellers, buyers, conversations, "
    "messages, templates, labels, orders, offers, statistics and buyers' data rights. "
    "Each site has its own token; events come back as signed webhooks.",
    guard=_site_guard,
)


@routes.put(BASE + "/sellers/{seller_id}")
@MARKETPLACE.operation("Create or change a seller", body=SellerBody, answers={200: SellerView})
async def put_seller(request: web.Request, body: SellerBody) -> web.Response:
    site_id = authenticated_site(request)
    conversations = request.app[CONVERSATIONS]
    site = conversations.site(site_id)
    if body.timezone is not None:
        zone(body.timezone)
    # One entry per account: the last role given for it counts.
    members = {m.user_id: Member(UserID(m.user_id), m.role) for m in body.members or ()}
    seller = Seller(
        site=site_id,
        seller_id=SellerID(require_id(request.match_info["seller_id"], "seller_id")),
        name=body.name,
        language=body.language or site.language,
        email=body.email,
        chat_enabled=True if body.chat_enabled is None else body.chat_enabled,
        greeting=body.greeting,
        members=tuple(members.values()),
        timezone=body.timezone or "UTC",
        hours=WeeklyHours.parse(body.hours.ranges()) if body.hours is not None else None,
        away_message=body.away_message,
        email_copies=body.email_copies,
    )
    # Left out, the switch stays as stored: the owner may have said `!chat off`.
    chat_given = body.chat_enabled is not None
    stored = await conversations.put_seller(seller, chat_given=chat_given)
    return web.json_response(seller_json(stored))


@routes.get(BASE + "/sellers/{seller_id}")
@MARKETPLACE.operation("A seller as stored", answers={200: SellerView})
async def get_seller(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    seller = await request.app[CONVERSATIONS].seller(
        site_id, SellerID(request.match_info["seller_id"])
    )
    return web.json_response(seller_json(seller))


@routes.put(BASE + "/buyers/{buyer_id}")
@MARKETPLACE.operation("Create or change a buyer", body=BuyerBody, answers={200: BuyerView})
async def put_buyer(request: web.Request, body: BuyerBody) -> web.Response:
    site_id = authenticated_site(request)
    buyer = Buyer(
        site=site_id,
        buyer_id=BuyerID(require_id(request.match_info["buyer_id"], "buyer_id")),
        name=body.name,
        language=body.language,
        email=body.email,
        phone=body.phone,
        avatar_url=body.avatar_url,
        profile_url=body.profile_url,
        summary=parse_summary(body.summary),
    )
    return web.json_response(buyer_json(await request.app[CONVERSATIONS].put_buyer(buyer)))


@routes.post(BASE + "/conversations")
@MARKETPLACE.operation(
    "Open a conversation (or find the one already open)",
    json=StartBody,
    answers={200: ConversationView, 201: ConversationView},
)
async def start_conversation(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    raw = await read_json(request)
    conversations = request.app[CONVERSATIONS]
    # An unknown seller is the answer, before the rest of the body is looked at.
    seller = await conversations.seller(site_id, SellerID(validated(SellerRef, raw).seller_id))
    body = validated(StartBody, raw)
    buyer = await conversations.buyer(site_id, BuyerID(body.buyer_id))
    conversation, created = await conversations.start_conversation(
        seller, buyer, body.context.context()
    )
    return web.json_response(conversation_json(conversation), status=201 if created else 200)


@routes.get(BASE + "/conversations")
@MARKETPLACE.operation(
    "The site's conversations, filtered", query=ConversationQuery, answers={200: ConversationList}
)
async def list_conversations(request: web.Request, query: ConversationQuery) -> web.Response:
    site_id = authenticated_site(request)
    found = await request.app[CONVERSATIONS].list_conversations(
        site_id,
        seller_id=SellerID(query.seller_id) if query.seller_id is not None else None,
        buyer_id=BuyerID(query.buyer_id) if query.buyer_id is not None else None,
        state=ConversationState(query.state) if query.state is not None else None,
        label=parse_label(query.label) if query.label is not None else None,
        assignee=UserID(query.assignee) if query.assignee is not None else None,
    )
    return web.json_response({"conversations": [conversation_json(c) for c in found]})


@routes.get(BASE + "/conversations/{conversation_id}")
@MARKETPLACE.operation("A conversation", answers={200: ConversationView})
async def get_conversation(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    conversation = await request.app[CONVERSATIONS].conversation(
        site_id, ConversationID(request.match_info["conversation_id"])
    )
    return web.json_response(conversation_json(conversation))


@routes.put(BASE + "/conversations/{conversation_id}/context")
@MARKETPLACE.operation(
    "Change what a conversation is about",
    body=ContextBody,
    answers={200: ConversationView},
    errors=(409,),
    description="The title, link, price or status may change; the type and id may not (409).",
)
async def put_context(request: web.Request, body: ContextBody) -> web.Response:
    site_id = authenticated_site(request)
    conversation = await request.app[CONVERSATIONS].update_context(
        site_id, ConversationID(request.match_info["conversation_id"]), body.context()
    )
    return web.json_response(conversation_json(conversation))


@routes.post(BASE + "/conversations/{conversation_id}/block")
@routes.post(BASE + "/conversations/{conversation_id}/unblock")
@MARKETPLACE.operation(
    "Block or unblock a conversation for one side",
    body=BlockBody,
    answers={200: ConversationView},
    description="`by` says which side blocks: the seller (the default) or the buyer.",
)
async def block(request: web.Request, body: BlockBody) -> web.Response:
    site_id = authenticated_site(request)
    desk = request.app[CONVERSATIONS]
    conversation = await desk.conversation(
        site_id, ConversationID(request.match_info["conversation_id"])
    )
    conversation = await desk.set_block(
        conversation, Side(body.by), blocked=request.path.endswith("/block")
    )
    return web.json_response(conversation_json(conversation))


@routes.post(BASE + "/conversations/{conversation_id}/messages")
@MARKETPLACE.operation(
    "Send a message as the buyer",
    body=MessageBody,
    answers={200: MessageView, 201: MessageView},
    errors=(409,),
    description="Stored before the answer (201, status pending); the same client_id again "
    "answers 200 with the stored message, or 409 if it came with other words.",
)
async def post_message(request: web.Request, body: MessageBody) -> web.Response:
    site_id = authenticated_site(request)
    message, created = await request.app[CONVERSATIONS].post_for_buyer(
        site_id, ConversationID(request.match_info["conversation_id"]), body.text, body.client_id
    )
    return web.json_response(message_json(message), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/messages")
@MARKETPLACE.operation(
    "A conversation's messages, oldest first", query=MessagesQuery, answers={200: MessageList}
)
async def list_messages(request: web.Request, query: MessagesQuery) -> web.Response:
    site_id = authenticated_site(request)
    messages = await request.app[CONVERSATIONS].list_messages(
        site_id,
        ConversationID(request.match_info["conversation_id"]),
        after=MessageID(query.after) if query.after else None,
        limit=int(query.limit) if query.limit else 50,
    )
    return web.json_response({"messages": [message_json(m) for m in messages]})


@routes.post(BASE + "/buyer-tokens")
@MARKETPLACE.operation(
    "A token for the buyer's widget", body=BuyerTokenBody, answers={200: BuyerToken}
)
async def buyer_token(request: web.Request, body: BuyerTokenBody) -> web.Response:
    site_id = authenticated_site(request)
    buyer = await request.app[CONVERSATIONS].buyer(site_id, BuyerID(body.buyer_id))
    token, expires_at = request.app[ISSUE_TOKEN](site_id, buyer, body.ttl)
    return web.json_response({"token": token, "expires_at": expires_at})


@routes.get(BASE + "/conversations/{conversation_id}/attachments/{attachment_id}")
@MARKETPLACE.operation(
    "An attachment's bytes (or its thumbnail)", query=AttachmentQuery, answers={200: File()}
)
async def attachment(request: web.Request, query: AttachmentQuery) -> web.Response:
    site_id = authenticated_site(request)
    conversation = await request.app[CONVERSATIONS].conversation(
        site_id, ConversationID(request.match_info["conversation_id"])
    )
    download = await request.app[FILES].download(
        conversation,
        request.match_info["attachment_id"],
        thumbnail=query.thumbnail in ("1", "true"),
    )
    return file_response(download)


def marketplace_routes(
    app: web.Application,
    conversations: MarketplaceDesk,
    api_tokens: Mapping[SiteID, str],
    issue_token: TokenIssuer,
    files: AttachmentFiles,
) -> None:
    app[FILES] = files
    app[CONVERSATIONS] = conversations
    app[API_TOKENS] = dict(api_tokens)
    app[ISSUE_TOKEN] = issue_token
    app.add_routes(routes)
    MARKETPLACE.serve(app, "/api/v1/openapi.json")
