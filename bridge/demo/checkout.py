"""The demo shop's checkout: it answers each `offer.created` webhook with a checkout page of
its own, and that page places an order the conversation then follows (placed → paid →
shipped → delivered), so a person sees an offer's whole round trip.

The answer to a webhook runs as a background task with a few retries: a marketplace must
acknowledge the webhook first and call the bridge afterwards, never inside the delivery.
Every form carries a token bound to its page, so another site can't post it for a buyer.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
from aiohttp import web

from bridge.core.ids import ConversationID
from bridge.core.tasks import TaskKeeper
from bridge.demo.marketplace import MarketplaceAPI, MarketplaceRefused

# Tries and the pause before each retry when the bridge can't take the shop's answer yet.
ANSWER_PAUSES = (0.5, 1.5, 4.0)
FIRST_ORDER = 1001
ORDER_PREFIX = "D-"
# The order statuses a shop's buttons move through, each to the next.
NEXT_STATUS = {"placed": "paid", "paid": "shipped", "shipped": "delivered"}
BUTTONS = (("paid", "Mark paid"), ("shipped", "Mark shipped"), ("delivered", "Mark delivered"))
_ID = re.compile(r"^[A-Za-z0-9_:-][A-Za-z0-9_.:-]{0,127}$")

Page = Callable[[web.Request, str, str], web.Response]
Say = Callable[[str], None]


@dataclass(frozen=True)
class ShopOrder:
    """What the shop keeps of an order it placed: where it lives and what was bought."""

    order_id: str
    conversation_id: str
    offer_id: str
    title: str
    quantity: int
    price: str
    total: str
    currency: str


def _valid_id(text: str) -> bool:
    return bool(_ID.match(text))


def _offer_line(offer: Mapping[str, Any]) -> str:
    return (
        f"{offer.get('quantity')} × {offer.get('title')}, {offer.get('total')} "
        f"{offer.get('currency')}"
    )


class Checkout:
    """The shop's offer answerer and its checkout and order pages (`routes`)."""

    def __init__(
        self,
        *,
        shop_url: str,
        api: MarketplaceAPI,
        page: Page,
        say: Say,
        image_url: Callable[[str], str | None],
        orders_file: Path | None = None,
    ) -> None:
        self.shop_url = shop_url.rstrip("/")
        self._api = api
        self._page = page
        self._say = say
        self._image_url = image_url
        self._orders_file = orders_file
        self._form_secret = secrets.token_bytes(32)
        self._tasks = TaskKeeper()
        self._placing = asyncio.Lock()
        self._orders: dict[str, ShopOrder] = self._load_orders()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/checkout/{conversation_id}/{offer_id}", self.checkout_page)
        app.router.add_post("/checkout/{conversation_id}/{offer_id}", self.place_order)
        app.router.add_get("/orders/{order_id}", self.order_page)
        app.router.add_post("/orders/{order_id}", self.move_order)

    async def close(self) -> None:
        await self._tasks.close()

    # ------------------------------------------------------------------ offers

    def checkout_url(self, conversation_id: str, offer_id: str) -> str:
        return (
            f"{self.shop_url}/checkout/{quote(conversation_id, safe='')}/{quote(offer_id, safe='')}"
        )

    def offer_created(self, event: Mapping[str, Any]) -> None:
        """Called by the webhook receiver for a checked, new `offer.created`: the answer
        goes out after the webhook has been acknowledged."""
        offer = event.get("offer")
        if not isinstance(offer, dict):
            return
        conversation_id = offer.get("conversation_id") or event.get("conversation_id")
        offer_id = offer.get("offer_id")
        if not (isinstance(conversation_id, str) and isinstance(offer_id, str)):
            return
        if not (_valid_id(conversation_id) and _valid_id(offer_id)):
            return
        self._tasks.spawn(self._open(offer, conversation_id, offer_id), f"open offer {offer_id}")

    async def _open(self, offer: Mapping[str, Any], conversation_id: str, offer_id: str) -> None:
        answer: dict[str, Any] = {
            "status": "open",
            "checkout_url": self.checkout_url(conversation_id, offer_id),
        }
        product_id = offer.get("product_id")
        if not offer.get("image_url") and isinstance(product_id, str):
            image = self._image_url(product_id)
            if image is not None:
                answer["image_url"] = image
        for attempt, pause in enumerate((0.0, *ANSWER_PAUSES)):
            await asyncio.sleep(pause)
            try:
                await self._api.answer_offer(ConversationID(conversation_id), offer_id, answer)
            except MarketplaceRefused as refused:
                if refused.status < 500:
                    self._say(f"shop ✗ offer {offer_id}: the bridge refused it ({refused})")
                    return
                problem = str(refused)
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = f"{type(error).__name__}: {error}"
            else:
                self._say(
                    f"shop ✓ opened offer {offer_id} ({_offer_line(offer)}): "
                    f"the buyer's Buy button opens {answer['checkout_url']}"
                )
                return
            if attempt == len(ANSWER_PAUSES):
                self._say(f"shop ✗ offer {offer_id}: gave up after {attempt + 1} tries ({problem})")

    # ------------------------------------------------------------------ pages

    def form_token(self, path: str) -> str:
        """The token a form on `path` carries: only the shop's own page can know it."""
        return hmac.new(self._form_secret, path.encode(), hashlib.sha256).hexdigest()

    async def _form_is_ours(self, request: web.Request) -> tuple[bool, Mapping[str, str]]:
        form = await request.post()
        token = form.get("token")
        origin = request.headers.get("Origin")
        same_origin = origin is None or urlsplit(origin).netloc == request.host
        fields = {key: value for key, value in form.items() if isinstance(value, str)}
        if not (isinstance(token, str) and same_origin):
            return False, fields
        return hmac.compare_digest(token, self.form_token(request.path)), fields

    def _problem(
        self, request: web.Request, status: int, title: str, text: str, more: str = ""
    ) -> web.Response:
        """A page that says plainly what went wrong; `more` is HTML already escaped."""
        body = f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{more}"
        response = self._page(request, title, body)
        response.set_status(status)
        return response

    def _form(self, path: str, label: str, fields: Mapping[str, str], *, enabled: bool) -> str:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in {"token": self.form_token(path), **fields}.items()
        )
        disabled = "" if enabled else " disabled"
        return (
            f'<form method="post" action="{html.escape(path)}">{hidden}'
            f'<button type="submit"{disabled}>{html.escape(label)}</button></form>'
        )

    async def _offer(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The offer a checkout URL names, or the page that says why there is none."""
        conversation_id = request.match_info["conversation_id"]
        offer_id = request.match_info["offer_id"]
        missing = self._problem(
            request, 404, "No such offer", "This shop knows no offer at this address."
        )
        if not (_valid_id(conversation_id) and _valid_id(offer_id)):
            return None, missing
        try:
            offers = await self._api.offers(ConversationID(conversation_id))
        except MarketplaceRefused as refused:
            if refused.status == 404:
                return None, missing
            return None, self._unreachable(request, str(refused))
        except (aiohttp.ClientError, TimeoutError) as error:
            return None, self._unreachable(request, type(error).__name__)
        for offer in offers:
            if offer.get("offer_id") == offer_id:
                if offer.get("status") != "open":
                    return None, self._ended(request, offer)
                return offer, None
        return None, missing

    def _unreachable(self, request: web.Request, why: str) -> web.Response:
        return self._problem(
            request, 502, "Try again", f"The shop could not reach the chat bridge ({why})."
        )

    def _ended(self, request: web.Request, offer: Mapping[str, Any]) -> web.Response:
        status = str(offer.get("status"))
        placed = self._order_for_offer(str(offer.get("offer_id")))
        text = f"This offer is {status}: it can't be bought any more."
        more = ""
        if placed is not None:
            url = html.escape(self._order_url(placed.order_id))
            more = f'<p><a href="{url}">See order {html.escape(placed.order_id)}</a></p>'
        return self._problem(request, 409, "This offer has ended", text, more)

    async def checkout_page(self, request: web.Request) -> web.Response:
        offer, problem = await self._offer(request)
        if offer is None:
            assert problem is not None
            return problem
        title = str(offer.get("title"))
        currency = html.escape(str(offer.get("currency")))
        body = f"""
<h1>Checkout</h1>
<table class="offer">
  <tr><th scope="row">Product</th><td>{html.escape(title)}</td></tr>
  <tr><th scope="row">Quantity</th><td>{html.escape(str(offer.get("quantity")))}</td></tr>
  <tr><th scope="row">Price</th><td>{html.escape(str(offer.get("price")))} {currency}</td></tr>
  <tr><th scope="row">Total</th><td>{html.escape(str(offer.get("total")))} {currency}</td></tr>
</table>
{self._form(request.path, "Place order", {}, enabled=True)}"""
        return self._page(request, f"Checkout: {title}", body)

    async def place_order(self, request: web.Request) -> web.Response:
        ours, _fields = await self._form_is_ours(request)
        if not ours:
            return self._refused(request)
        offer, problem = await self._offer(request)
        if offer is None:
            assert problem is not None
            return problem
        conversation_id = ConversationID(request.match_info["conversation_id"])
        offer_id = str(offer["offer_id"])
        async with self._placing:
            placed = self._order_for_offer(offer_id)
            if placed is None:
                placed = ShopOrder(
                    order_id=self._next_order_id(),
                    conversation_id=conversation_id,
                    offer_id=offer_id,
                    title=str(offer.get("title")),
                    quantity=int(offer.get("quantity") or 1),
                    price=str(offer.get("price")),
                    total=str(offer.get("total")),
                    currency=str(offer.get("currency")),
                )
            try:
                await self._api.answer_offer(conversation_id, offer_id, {"status": "accepted"})
                await self._api.put_order(conversation_id, placed.order_id, self._body(placed))
            except MarketplaceRefused as refused:
                if refused.status == 409:
                    return self._problem(
                        request, 409, "This offer has ended", "It can't be bought any more."
                    )
                return self._unreachable(request, str(refused))
            except (aiohttp.ClientError, TimeoutError) as error:
                return self._unreachable(request, type(error).__name__)
            self._keep(placed)
        self._say(f"shop ✓ order {placed.order_id} placed for offer {offer_id}")
        url = self._order_url(placed.order_id)
        body = (
            f"<h1>Thank you!</h1><p>Order {html.escape(placed.order_id)} is placed: "
            f"{placed.quantity} × {html.escape(placed.title)}, {html.escape(placed.total)} "
            f"{html.escape(placed.currency)}.</p>"
            f'<p><a href="{html.escape(url)}">See order {html.escape(placed.order_id)}</a></p>'
        )
        return self._page(request, f"Order {placed.order_id}", body)

    def _refused(self, request: web.Request) -> web.Response:
        return self._problem(
            request,
            403,
            "Not sent from this shop",
            "This form did not come from the shop's own page, so nothing was done.",
        )

    async def order_page(self, request: web.Request) -> web.Response:
        order, problem = await self._order(request)
        if order is None:
            assert problem is not None
            return problem
        status = str(order.get("status"))
        items = "".join(
            f"<li>{html.escape(str(item.get('quantity')))} × {html.escape(str(item.get('title')))}"
            f" at {html.escape(str(item.get('price')))}</li>"
            for item in order.get("items", [])
            if isinstance(item, dict)
        )
        buttons = "".join(
            self._form(
                request.path,
                label,
                {"status": next_status},
                enabled=NEXT_STATUS.get(status) == next_status,
            )
            for next_status, label in BUTTONS
        )
        order_id = html.escape(request.match_info["order_id"])
        body = f"""
<h1>Order {order_id}</h1>
<p>Status: <strong class="status">{html.escape(status)}</strong></p>
<ul>{items}</ul>
<p>Total: {html.escape(str(order.get("total")))} {html.escape(str(order.get("currency")))}</p>
<div class="actions">{buttons}</div>"""
        return self._page(request, f"Order {request.match_info['order_id']}", body)

    async def move_order(self, request: web.Request) -> web.Response:
        ours, fields = await self._form_is_ours(request)
        if not ours:
            return self._refused(request)
        order, problem = await self._order(request)
        if order is None:
            assert problem is not None
            return problem
        placed = self._orders[request.match_info["order_id"]]
        wanted = fields.get("status", "")
        if NEXT_STATUS.get(str(order.get("status"))) != wanted:
            return self._problem(
                request,
                409,
                "Already moved on",
                f"Order {placed.order_id} is {order.get('status')}: it can't become {wanted}.",
            )
        try:
            await self._api.put_order(
                ConversationID(placed.conversation_id), placed.order_id, self._body(placed, wanted)
            )
        except MarketplaceRefused as refused:
            if refused.status == 409:
                return self._problem(request, 409, "Already moved on", refused.error)
            return self._unreachable(request, str(refused))
        except (aiohttp.ClientError, TimeoutError) as error:
            return self._unreachable(request, type(error).__name__)
        self._say(f"shop ✓ order {placed.order_id} marked {wanted}")
        raise web.HTTPSeeOther(self._order_url(placed.order_id))

    async def _order(
        self, request: web.Request
    ) -> tuple[dict[str, Any] | None, web.Response | None]:
        """The order as the bridge has it now, or the page that says why there is none."""
        placed = self._orders.get(request.match_info["order_id"])
        if placed is None:
            return None, self._problem(
                request, 404, "No such order", "This shop has no order with this number."
            )
        try:
            orders = await self._api.orders(ConversationID(placed.conversation_id))
        except MarketplaceRefused as refused:
            return None, self._unreachable(request, str(refused))
        except (aiohttp.ClientError, TimeoutError) as error:
            return None, self._unreachable(request, type(error).__name__)
        for order in orders:
            if order.get("order_id") == placed.order_id:
                return order, None
        return None, self._problem(
            request, 404, "No such order", "The chat bridge knows no order with this number."
        )

    # ------------------------------------------------------------------ orders kept

    def _order_url(self, order_id: str) -> str:
        return f"{self.shop_url}/orders/{quote(order_id, safe='')}"

    def _body(self, order: ShopOrder, status: str = "placed") -> dict[str, Any]:
        return {
            "status": status,
            "total": order.total,
            "currency": order.currency,
            "url": self._order_url(order.order_id),
            "items": [{"title": order.title, "quantity": order.quantity, "price": order.price}],
        }

    def _order_for_offer(self, offer_id: str) -> ShopOrder | None:
        return next((o for o in self._orders.values() if o.offer_id == offer_id), None)

    def _next_order_id(self) -> str:
        numbers = [int(o.order_id.removeprefix(ORDER_PREFIX)) for o in self._orders.values()]
        return f"{ORDER_PREFIX}{max(numbers, default=FIRST_ORDER - 1) + 1}"

    def _keep(self, order: ShopOrder) -> None:
        self._orders[order.order_id] = order
        if self._orders_file is not None:
            rows = [asdict(o) for o in self._orders.values()]
            self._orders_file.write_text(json.dumps(rows, indent=2))

    def _load_orders(self) -> dict[str, ShopOrder]:
        """The orders an earlier run placed, so numbers keep counting up in a work folder."""
        if self._orders_file is None or not self._orders_file.exists():
            return {}
        rows = json.loads(self._orders_file.read_text())
        return {row["order_id"]: ShopOrder(**row) for row in rows}
