"""The marketplace's server-to-server API: `/api/v1/sites/{site}/…`, bearer token per site."""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from bridge.core.attachments import AttachmentFiles
from bridge.core.hours import WeeklyHours, zone
from bridge.core.ids import BuyerID, ConversationID, MessageID, SellerID, SiteID, UserID
from bridge.core.labels import parse_label
from bridge.core.marketplace_desk import MarketplaceDesk
from bridge.core.models import Buyer, ConversationState, Member, Seller, Side
from bridge.core.profile import parse_phone, parse_summary
from bridge.core.validation import (
    MAX_CLIENT_ID_CHARS,
    MAX_NAME_CHARS,
    optional_text,
    optional_url,
    parse_context,
    require_id,
    require_language,
    require_text,
)
from bridge.core.views import buyer_json, conversation_json, message_json, seller_json
from bridge.errors import BadRequest, Forbidden, NotFound, Unauthorized
from bridge.http import bearer_token, file_response, query_number, read_json

logger = logging.getLogger(__name__)

TokenIssuer = Callable[[SiteID, Buyer, int], tuple[str, int]]

CONVERSATIONS = web.AppKey("conversations", MarketplaceDesk)
FILES = web.AppKey("files", AttachmentFiles)
API_TOKENS = web.AppKey("api_tokens", dict[SiteID, str])
ISSUE_TOKEN: web.AppKey[TokenIssuer] = web.AppKey("issue_token")

MATRIX_USER_ID = re.compile(r"^@[a-z0-9._=/+-]+:[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
ROLE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_MEMBERS = 100
DEFAULT_TOKEN_TTL = 3600
MAX_TOKEN_TTL = 30 * 24 * 3600

routes = web.RouteTableDef()
BASE = "/api/v1/sites/{site}"


def authenticated_site(request: web.Request) -> SiteID:
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


def _email(value: Any) -> str | None:
    email = optional_text(value, "email", limit=320)
    if email is not None and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email):
        raise BadRequest("'email' is not an e-mail address")
    return email


def _members(raw: Any) -> tuple[Member, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_MEMBERS:
        raise BadRequest(f"'members' must be a list of at most {MAX_MEMBERS} objects")
    members: dict[str, Member] = {}
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise BadRequest(f"'members[{index}]' must be an object")
        user_id = entry.get("user_id")
        if not isinstance(user_id, str) or not MATRIX_USER_ID.match(user_id):
            raise BadRequest(
                f"'members[{index}].user_id' must be a Matrix user id like @name:server"
            )
        role = entry.get("role")
        if not isinstance(role, str) or not ROLE.match(role):
            raise BadRequest(f"'members[{index}].role' must be a role name such as 'owner'")
        members[user_id] = Member(UserID(user_id), role)
    return tuple(members.values())


def _bool(value: Any, key: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadRequest(f"'{key}' must be true or false")
    return value


def _timezone(value: Any) -> str:
    if value is None:
        return "UTC"
    if not isinstance(value, str):
        raise BadRequest(
            "'timezone' must be an IANA time zone such as Europe/Vilnius", "BAZAAR_BAD_TIMEZONE"
        )
    zone(value)
    return value


@routes.put(BASE + "/sellers/{seller_id}")
async def put_seller(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    body = await read_json(request)
    conversations = request.app[CONVERSATIONS]
    site = conversations.site(site_id)
    seller = Seller(
        site=site_id,
        seller_id=SellerID(require_id(request.match_info["seller_id"], "seller_id")),
        name=require_text(body.get("name"), "name", limit=MAX_NAME_CHARS),
        language=require_language(body.get("language", site.language), "language"),
        email=_email(body.get("email")),
        chat_enabled=_bool(body.get("chat_enabled"), "chat_enabled", True),
        greeting=optional_text(body.get("greeting"), "greeting"),
        members=_members(body.get("members")),
        timezone=_timezone(body.get("timezone")),
        hours=WeeklyHours.parse(body["hours"]) if body.get("hours") is not None else None,
        away_message=optional_text(body.get("away_message"), "away_message"),
        email_copies=_bool(body.get("email_copies"), "email_copies", False),
    )
    # Left out, the switch stays as stored: the owner may have said `!chat off`.
    chat_given = body.get("chat_enabled") is not None
    stored = await conversations.put_seller(seller, chat_given=chat_given)
    return web.json_response(seller_json(stored))


@routes.get(BASE + "/sellers/{seller_id}")
async def get_seller(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    seller = await request.app[CONVERSATIONS].seller(
        site_id, SellerID(request.match_info["seller_id"])
    )
    return web.json_response(seller_json(seller))


@routes.put(BASE + "/buyers/{buyer_id}")
async def put_buyer(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    body = await read_json(request)
    language = body.get("language")
    buyer = Buyer(
        site=site_id,
        buyer_id=BuyerID(require_id(request.match_info["buyer_id"], "buyer_id")),
        name=require_text(body.get("name"), "name", limit=MAX_NAME_CHARS),
        language=require_language(language, "language") if language is not None else None,
        email=_email(body.get("email")),
        phone=parse_phone(body.get("phone")),
        avatar_url=optional_url(body.get("avatar_url"), "avatar_url"),
        profile_url=optional_url(body.get("profile_url"), "profile_url"),
        summary=parse_summary(body.get("summary")),
    )
    return web.json_response(buyer_json(await request.app[CONVERSATIONS].put_buyer(buyer)))


@routes.post(BASE + "/conversations")
async def start_conversation(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    body = await read_json(request)
    conversations = request.app[CONVERSATIONS]
    # An unknown seller is the answer, before the rest of the body is looked at.
    seller = await conversations.seller(
        site_id, SellerID(require_id(body.get("seller_id"), "seller_id"))
    )
    buyer_id = BuyerID(require_id(body.get("buyer_id"), "buyer_id"))
    context = parse_context(body.get("context"))
    buyer = await conversations.buyer(site_id, buyer_id)
    conversation, created = await conversations.start_conversation(seller, buyer, context)
    return web.json_response(conversation_json(conversation), status=201 if created else 200)


@routes.get(BASE + "/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    query = request.query
    state = None
    if "state" in query:
        try:
            state = ConversationState(query["state"])
        except ValueError:
            raise BadRequest("'state' must be active, archived or blocked") from None
    found = await request.app[CONVERSATIONS].list_conversations(
        site_id,
        seller_id=SellerID(query["seller_id"]) if "seller_id" in query else None,
        buyer_id=BuyerID(query["buyer_id"]) if "buyer_id" in query else None,
        state=state,
        label=parse_label(query["label"]) if "label" in query else None,
        assignee=UserID(query["assignee"]) if "assignee" in query else None,
    )
    return web.json_response({"conversations": [conversation_json(c) for c in found]})


@routes.get(BASE + "/conversations/{conversation_id}")
async def get_conversation(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    conversation = await request.app[CONVERSATIONS].conversation(
        site_id, ConversationID(request.match_info["conversation_id"])
    )
    return web.json_response(conversation_json(conversation))


@routes.put(BASE + "/conversations/{conversation_id}/context")
async def put_context(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    context = parse_context(await read_json(request))
    conversation = await request.app[CONVERSATIONS].update_context(
        site_id, ConversationID(request.match_info["conversation_id"]), context
    )
    return web.json_response(conversation_json(conversation))


@routes.post(BASE + "/conversations/{conversation_id}/block")
@routes.post(BASE + "/conversations/{conversation_id}/unblock")
async def block(request: web.Request) -> web.Response:
    """`by` says which side blocks: the seller (the default) or the buyer."""
    site_id = authenticated_site(request)
    body = await read_json(request)
    try:
        side = Side(body.get("by", Side.SELLER.value))
    except ValueError:
        raise BadRequest("'by' must be 'seller' or 'buyer'") from None
    desk = request.app[CONVERSATIONS]
    conversation = await desk.conversation(
        site_id, ConversationID(request.match_info["conversation_id"])
    )
    conversation = await desk.set_block(conversation, side, blocked=request.path.endswith("/block"))
    return web.json_response(conversation_json(conversation))


@routes.post(BASE + "/conversations/{conversation_id}/messages")
async def post_message(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    body = await read_json(request)
    message, created = await request.app[CONVERSATIONS].post_for_buyer(
        site_id,
        ConversationID(request.match_info["conversation_id"]),
        require_text(body.get("text"), "text"),
        require_text(body.get("client_id"), "client_id", limit=MAX_CLIENT_ID_CHARS),
    )
    return web.json_response(message_json(message), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/messages")
async def list_messages(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    limit = query_number(request, "limit", 50)
    after = request.query.get("after")
    messages = await request.app[CONVERSATIONS].list_messages(
        site_id,
        ConversationID(request.match_info["conversation_id"]),
        after=MessageID(after) if after else None,
        limit=limit,
    )
    return web.json_response({"messages": [message_json(m) for m in messages]})


@routes.post(BASE + "/buyer-tokens")
async def buyer_token(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    body = await read_json(request)
    ttl = body.get("ttl", DEFAULT_TOKEN_TTL)
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 60 <= ttl <= MAX_TOKEN_TTL:
        raise BadRequest(f"'ttl' must be between 60 and {MAX_TOKEN_TTL} seconds")
    buyer = await request.app[CONVERSATIONS].buyer(
        site_id, BuyerID(require_id(body.get("buyer_id"), "buyer_id"))
    )
    token, expires_at = request.app[ISSUE_TOKEN](site_id, buyer, ttl)
    return web.json_response({"token": token, "expires_at": expires_at})


@routes.get(BASE + "/conversations/{conversation_id}/attachments/{attachment_id}")
async def attachment(request: web.Request) -> web.Response:
    site_id = authenticated_site(request)
    conversation = await request.app[CONVERSATIONS].conversation(
        site_id, ConversationID(request.match_info["conversation_id"])
    )
    download = await request.app[FILES].download(
        conversation,
        request.match_info["attachment_id"],
        thumbnail=request.query.get("thumbnail") in ("1", "true"),
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
