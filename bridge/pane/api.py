"""The pane's HTTP side at `/matrix-widget/v1/`: the page itself, a session for an OpenID
token, the room's view, and a template sent by a click. Thin: parse, authenticate, ask
`PaneDesk`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bridge.core.ids import RoomID
from bridge.core.validation import MAX_CLIENT_ID_CHARS, MAX_ID_CHARS
from bridge.errors import BadRequest, Unauthorized
from bridge.http import bearer_token, read_json
from bridge.pane.access import PaneDesk, PaneSessions, Seen
from bridge.pane.openid import MAX_TOKEN_CHARS, OpenIdCheck

BASE = "/matrix-widget/v1"
STATIC = Path(__file__).parent / "static"
MAX_SERVER_NAME_CHARS = 255
MAX_TEMPLATE_NAME_CHARS = 100

# Element embeds the page from wherever it runs, so any ancestor may frame it; the page
# itself runs only its own script and talks only to the bridge.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True)
class PaneContext:
    desk: PaneDesk
    sessions: PaneSessions
    openid: OpenIdCheck


PANE = web.AppKey("pane", PaneContext)
routes = web.RouteTableDef()


def _text(value: object, key: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"'{key}' must be a non-empty string", "M_MISSING_PARAM")
    if len(value) > limit:
        raise BadRequest(f"'{key}' is longer than {limit} characters")
    return value


def _room_id(value: object, key: str = "room_id") -> RoomID:
    room_id = _text(value, key, MAX_ID_CHARS)
    # Room version 12 ids carry no server name: "!" and an opaque rest.
    if not room_id.startswith("!") or len(room_id) < 2 or any(c.isspace() for c in room_id):
        raise BadRequest(f"'{key}' is not a Matrix room id")
    return RoomID(room_id)


async def _seen(request: web.Request) -> Seen:
    """The member behind the session, checked again for the room of the path."""
    pane = request.app[PANE]
    room_id = _room_id(request.match_info["room_id"])
    token = bearer_token(request)
    if not token:
        raise Unauthorized("Send the pane session as 'Authorization: Bearer …'", "M_MISSING_TOKEN")
    session = pane.sessions.verify(token, room_id)
    return await pane.desk.may_see(session.user_id, room_id)


def _static(name: str) -> web.FileResponse:
    return web.FileResponse(STATIC / name, headers=PAGE_HEADERS)


@routes.get(BASE + "/")
async def pane_page(request: web.Request) -> web.StreamResponse:
    return _static("pane.html")


@routes.get(BASE + "/pane.js")
async def pane_script(request: web.Request) -> web.StreamResponse:
    return _static("pane.js")


@routes.get(BASE + "/pane.css")
async def pane_style(request: web.Request) -> web.StreamResponse:
    return _static("pane.css")


@routes.post(BASE + "/session")
async def open_session(request: web.Request) -> web.Response:
    pane = request.app[PANE]
    body = await read_json(request)
    room_id = _room_id(body.get("room_id"))
    access_token = _text(body.get("access_token"), "access_token", MAX_TOKEN_CHARS)
    server_name = _text(body.get("matrix_server_name"), "matrix_server_name", MAX_SERVER_NAME_CHARS)
    user_id = await pane.openid.user_of(access_token, server_name)
    await pane.desk.may_see(user_id, room_id)
    session = pane.sessions.issue(user_id, room_id)
    return web.json_response(
        {
            "session": pane.sessions.token(session),
            "user_id": user_id,
            "room_id": room_id,
            "expires_at": session.expires_at,
        },
        headers={"Cache-Control": "no-store"},
    )


@routes.get(BASE + "/rooms/{room_id}")
async def room_view(request: web.Request) -> web.Response:
    seen = await _seen(request)
    view = await request.app[PANE].desk.view(seen)
    return web.json_response(view, headers={"Cache-Control": "no-store"})


@routes.post(BASE + "/rooms/{room_id}/templates/{name}")
async def send_template(request: web.Request) -> web.Response:
    seen = await _seen(request)
    name = _text(request.match_info["name"], "name", MAX_TEMPLATE_NAME_CHARS)
    body = await read_json(request) if request.can_read_body else {}
    client_id = body.get("client_id")
    if client_id is not None:
        client_id = _text(client_id, "client_id", MAX_CLIENT_ID_CHARS)
    await request.app[PANE].desk.send_template(seen, name, client_id)
    return web.json_response({"sent": name})


def pane_routes(app: web.Application, pane: PaneContext) -> None:
    app[PANE] = pane
    app.add_routes(routes)
