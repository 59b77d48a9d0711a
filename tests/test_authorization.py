"""Every endpoint the bridge serves × every wrong way to call it: no token, a wrong one,
another site's, expired, forged and `alg: none` JWTs, another buyer's, a token of the
homeserver's that isn't ours. Each answers its documented refusal as `{"errcode",
"error"}`, and the database is byte for byte what it was.

The routes come from the running bridge, so a new endpoint joins the matrix by itself;
one whose path no rule below knows fails the test until someone says how it is guarded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest

from tests.conftest import OTHER_SITE, SITE, BridgeRunner, Sites
from tests.support.buyer import buyer_token
from tests.support.journeys import joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.webhooks import WebhookReceiver

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

# Paths that anyone may fetch: the widget's script, the pane's page, health and metrics.
PUBLIC = ("/widget/", "/matrix-widget/v1/pane.", "/health/", "/metrics")
# The APIs' OpenAPI documents hold no data: anyone may read them.
DOCUMENTS = ("/api/v1/openapi.json", "/widget/v1/openapi.json")


def alg_none(claims: dict[str, Any]) -> str:
    def part(raw: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(raw).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@dataclass(frozen=True)
class Attempt:
    name: str
    token: str | None
    # The statuses this attempt may get: 401 for who isn't anyone, 403 for someone in the
    # wrong place, 404 for a conversation that isn't theirs (which they may not learn of).
    statuses: frozenset[int]


def database_dump(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            (table, *row)
            for table in sorted(tables)
            for row in db.execute(f'SELECT * FROM "{table}" ORDER BY 1')
        ]


async def settled(path: Path) -> list[tuple[Any, ...]]:
    """The database once the bridge's own follow-ups (statuses, webhooks) are done: the
    same dump twice, a second apart."""
    dump = database_dump(path)
    for _ in range(30):
        await asyncio.sleep(1)
        again = database_dump(path)
        if again == dump:
            return dump
        dump = again
    raise AssertionError("the database never settled")


def filled(path: str, ids: dict[str, str]) -> str:
    for key, value in ids.items():
        path = path.replace("{" + key + "}", value)
    # Any other part of a path (an order, offer, template, attachment): a plausible value.
    while "{" in path:
        start, end = path.index("{"), path.index("}")
        path = path[:start] + "x1" + path[end + 1 :]
    return path


async def test_every_endpoint_refuses_every_wrong_caller_and_changes_nothing(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    webhooks: WebhookReceiver,
    new_seller: NewSeller,
    sites: Sites,
    sqlite_url: str,
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    conversation_id = conversation["conversation_id"]
    await marketplace.ok("PUT", "/buyers/Bob", {"name": "Bob"})
    await marketplace.ok("PUT", "/sellers/acme/templates/hello", {"text": "Hello!"})
    await marketplace.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        {"text": "Is it in stock?", "client_id": "q-1"},
    )
    await owner.wait_until(
        lambda: any(
            m["content"].get("body") == "Is it in stock?"
            for m in owner.messages(conversation["room_id"])
        ),
        what="the buyer's question",
    )
    await webhooks.wait_for("message.status")
    database = Path(sqlite_url.split("///", 1)[1])
    other_secret = next(s.widget_secret for s in runner.config.sites if s.id == OTHER_SITE)
    anna = {"iss": SITE, "sub": "Anna_K", "name": "Anna", "exp": int(time.time()) + 600}

    api = [
        Attempt("no token", None, frozenset({401})),
        Attempt("a wrong token", "not-a-token", frozenset({401})),
        Attempt("another site's token", sites.other_api_token, frozenset({403})),
        Attempt(
            "a buyer's JWT", buyer_token(sites.widget_secret, SITE, "Anna_K"), frozenset({401})
        ),
        Attempt("the homeserver's token", runner.config.appservice.hs_token, frozenset({401})),
    ]
    widget = [
        Attempt("no token", None, frozenset({401})),
        Attempt("not a JWT", "garbage", frozenset({401})),
        Attempt("the site's API token", sites.api_token, frozenset({401})),
        Attempt(
            "expired",
            buyer_token(sites.widget_secret, SITE, "Anna_K", expires_in=-60),
            frozenset({401}),
        ),
        Attempt(
            "forged",
            jwt.encode(anna, "a guess at the secret, long enough to sign", algorithm="HS256"),
            frozenset({401}),
        ),
        Attempt("alg none", alg_none(anna), frozenset({401})),
        Attempt(
            "signed for another site",
            jwt.encode(anna, other_secret, algorithm="HS256"),
            frozenset({401}),
        ),
    ]
    # Signed in, but neither is Anna: her conversation is not theirs to see or touch.
    strangers = [
        Attempt("another buyer", buyer_token(sites.widget_secret, SITE, "Bob"), frozenset({404})),
        Attempt(
            "another site's buyer",
            buyer_token(other_secret, OTHER_SITE, "Anna_K"),
            frozenset({404}),
        ),
    ]
    pane = [
        Attempt("no token", None, frozenset({401})),
        Attempt("a wrong token", "not-a-session", frozenset({401})),
        Attempt(
            "a buyer's JWT", buyer_token(sites.widget_secret, SITE, "Anna_K"), frozenset({401})
        ),
    ]
    appservice = [
        Attempt("no token", None, frozenset({401})),
        Attempt("a wrong token", "not-the-hs-token", frozenset({403})),
        Attempt("the site's API token", sites.api_token, frozenset({403})),
    ]
    question = (await marketplace.ok("GET", f"/conversations/{conversation_id}/messages"))[
        "messages"
    ][-1]
    # Bodies that would be obeyed from the right caller, so a refusal is the token's doing.
    bodies: dict[str, Any] = {
        "/messages": {"text": "Let me in", "client_id": "intruder-1"},
        "/read": {"up_to": question["message_id"]},
        "/typing": {"typing": True},
        # The pane's session: the OpenID token in the body is the credential.
        "/session": {
            "room_id": conversation["room_id"],
            "access_token": "made-up-openid-token",
            "matrix_server_name": "localhost",
        },
    }
    ids = {
        "room_id": conversation["room_id"],
        "site": SITE,
        "conversation_id": conversation_id,
        "seller_id": "acme",
        "buyer_id": "Anna_K",
    }
    async with aiohttp.ClientSession() as session:
        for stranger in strangers:  # signed in once: their own buyer rows exist before
            async with session.get(
                f"{runner.config.web.public_url}/widget/v1/conversations",
                headers={"Authorization": f"Bearer {stranger.token}"},
            ) as response:
                assert response.status == 200, await response.text()
    before = await settled(database)
    web_url = runner.config.web.public_url
    appservice_url = f"http://127.0.0.1:{runner.config.appservice.port}"
    tried: list[str] = []
    wrong: list[str] = []
    async with aiohttp.ClientSession() as session:

        async def attempt(base: str, method: str, path: str, how: Attempt) -> None:
            headers = {} if how.token is None else {"Authorization": f"Bearer {how.token}"}
            body = next((b for end, b in bodies.items() if path.endswith(end)), {})
            async with session.request(
                method,
                base + path,
                json=body if method in ("PUT", "POST") else None,
                headers=headers,
            ) as response:
                tried.append(f"{method} {path}")
                answer: Any = None
                if response.content_type == "application/json":
                    answer = await response.json()
                if response.status not in how.statuses or not (
                    isinstance(answer, dict) and answer.get("errcode") and answer.get("error")
                ):
                    wrong.append(f"{method} {path} with {how.name}: {response.status} {answer}")

        for index, app in enumerate(bridge.served_apps):
            base = appservice_url if index == 0 else web_url
            for route in app.router.routes():
                method, info = route.method, route.resource.get_info() if route.resource else {}
                path = str(info.get("formatter") or info.get("path") or "")
                if method in ("HEAD", "OPTIONS") or not path:
                    continue
                url = filled(path, ids)
                if index == 0:
                    attempts = appservice
                elif path in DOCUMENTS:
                    continue
                elif path.startswith("/api/v1/sites/"):
                    attempts = api
                elif path.startswith("/widget/v1/"):
                    scoped = "{conversation_id}" in path
                    attempts = widget + (strangers if scoped else [])
                elif path == "/matrix-widget/v1/session":
                    attempts = [Attempt("a made-up OpenID token", None, frozenset({401}))]
                elif path.startswith("/matrix-widget/v1/rooms/"):
                    attempts = pane
                elif path.startswith(PUBLIC) or path in ("/matrix-widget/v1/", "/"):
                    continue
                elif path.startswith(("/mail/v1/", "/unsubscribe")):
                    # A mailed link's token is the whole credential: a made-up one finds nothing.
                    attempts = [
                        Attempt("a made-up link token", None, frozenset({400, 401, 403, 404}))
                    ]
                else:
                    wrong.append(f"{method} {path}: no rule says how it is guarded")
                    continue
                for how in attempts:
                    await attempt(base, method, url, how)
    assert wrong == [], "\n".join(wrong)
    assert len(tried) > 150, tried  # the matrix really ran over the bridge's endpoints
    await runner.stop(bridge)
    assert database_dump(database) == before
