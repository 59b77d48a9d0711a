"""One-click unsubscribe (RFC 8058) at `/mail/v1/unsubscribe/{token}`, the token of the
buyer's reply address. A GET only shows a page with a button (mail scanners follow links);
a POST (the mail client's one-click `List-Unsubscribe=One-Click`, or the button) stops the
bridge's mail to that buyer at once."""

from __future__ import annotations

import html
from typing import Protocol

from aiohttp import web

from bridge.core.models import Buyer
from bridge.core.seller_storage import ReplyTokens, Unsubscribes
from bridge.core.storage import Parties
from bridge.errors import NotFound

BASE = "/mail/v1/unsubscribe"


class UnsubscribeStore(ReplyTokens, Unsubscribes, Parties, Protocol):
    """The store as the unsubscribe page uses it."""


class MailChoices:
    """A buyer's say over the bridge's mail to them, found by their token."""

    def __init__(self, store: UnsubscribeStore) -> None:
        self._store = store

    async def buyer_of(self, token: str) -> Buyer:
        named = await self._store.by_reply_token(token) if token.isalnum() else None
        buyer = await self._store.get_buyer(named[0], named[1]) if named else None
        if buyer is None:
            raise NotFound("Unknown unsubscribe link", "BAZAAR_UNKNOWN_TOKEN")
        return buyer

    async def unsubscribe(self, token: str) -> Buyer:
        buyer = await self.buyer_of(token)
        await self._store.unsubscribe(buyer.site, buyer.buyer_id)
        return buyer


_WORDS = {
    "en": {
        "title": "Stop e-mails",
        "ask": "Stop the e-mails about your conversations with sellers?",
        "button": "Unsubscribe",
        "done": "You are unsubscribed: no more e-mails about your conversations will be sent.",
    },
    "ru": {
        "title": "Отписка от писем",
        "ask": "Больше не присылать письма о ваших переписках с продавцами?",
        "button": "Отписаться",
        "done": "Вы отписались: писем о ваших переписках больше не будет.",
    },
}

# The token is in the address: no referrer, no cache, no index, no scripts.
_PRIVATE = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
}

CHOICES = web.AppKey("mail_choices", MailChoices)
routes = web.RouteTableDef()


def _words(buyer: Buyer) -> dict[str, str]:
    return _WORDS.get((buyer.language or "en").split("-")[0].lower(), _WORDS["en"])


@routes.get(BASE + "/{token}")
async def unsubscribe_page(request: web.Request) -> web.Response:
    buyer = await request.app[CHOICES].buyer_of(request.match_info["token"])
    words = {key: html.escape(value) for key, value in _words(buyer).items()}
    page = (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{words['title']}</title></head>"
        '<body style="font-family: sans-serif; max-width: 32em; margin: 3em auto">'
        f"<p>{words['ask']}</p>"
        '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">{words["button"]}</button></form></body></html>'
    )
    return web.Response(text=page, content_type="text/html", headers=_PRIVATE)


@routes.post(BASE + "/{token}")
async def unsubscribe(request: web.Request) -> web.Response:
    # Any POST counts: RFC 8058's body is `List-Unsubscribe=One-Click`, the page sends the
    # same, and no link scanner POSTs.
    buyer = await request.app[CHOICES].unsubscribe(request.match_info["token"])
    return web.Response(text=_words(buyer)["done"], content_type="text/plain", headers=_PRIVATE)


def unsubscribe_routes(app: web.Application, choices: MailChoices) -> None:
    app[CHOICES] = choices
    app.add_routes(routes)
