"""The demo's shop: a few product pages that embed the buyer widget for the demo seller.

A buyer "signs in" by choosing a name (`/login?name=Anna` sets a cookie); the shop then
mints the widget token itself with the site's `widget_secret`, as a real marketplace's
backend would. The cookie is trusted as it is: this is a demo, not an identity system.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from aiohttp import web

from bridge.core.ids import BuyerID, SiteID
from bridge.core.models import Buyer
from bridge.demo.checkout import Checkout
from bridge.demo.marketplace import MarketplaceAPI
from bridge.widget.tokens import issue_buyer_token

BUYER_COOKIE = "bazaar_demo_buyer"
LANG_COOKIE = "bazaar_demo_lang"
TOKEN_TTL = 24 * 3600
LANGUAGES = ("en", "ru")


@dataclass(frozen=True)
class Product:
    id: str
    title: str
    price: str
    currency: str
    description: str
    colour: tuple[int, int, int]


PRODUCTS: tuple[Product, ...] = (
    Product(
        "kettle-1",
        "Electric kettle 1.7 l",
        "24.90",
        "EUR",
        "Boils a full jug in four minutes; switches itself off.",
        (37, 99, 235),
    ),
    Product(
        "teapot-2",
        "Cast-iron teapot 0.9 l",
        "39.00",
        "EUR",
        "Keeps tea hot for an hour; enamelled inside.",
        (21, 128, 61),
    ),
    Product(
        "mug-3",
        "Stoneware mugs, set of two",
        "18.50",
        "EUR",
        "Hand-glazed, 350 ml each, dishwasher safe.",
        (194, 65, 12),
    ),
    Product(
        "grinder-4",
        "Hand coffee grinder",
        "32.00",
        "EUR",
        "Ceramic burrs with fifteen grind settings.",
        (109, 40, 217),
    ),
)

# The shop's own words; the widget translates itself.
TEXT = {
    "en": {
        "shop": "Demo Market",
        "sold_by": "Sold by {seller}",
        "products": "Products",
        "signed_in": "Signed in as {name}",
        "sign_out": "Sign out",
        "your_name": "Your name",
        "sign_in": "Sign in",
        "sign_in_hint": "Sign in with any name to ask the seller a question.",
        "questions": "Questions about this product?",
        "language": "Language",
    },
    "ru": {
        "shop": "Демо-маркет",
        "sold_by": "Продавец: {seller}",
        "products": "Товары",
        "signed_in": "Вы вошли как {name}",
        "sign_out": "Выйти",
        "your_name": "Ваше имя",
        "sign_in": "Войти",
        "sign_in_hint": "Войдите под любым именем, чтобы задать вопрос продавцу.",
        "questions": "Есть вопросы об этом товаре?",
        "language": "Язык",
    },
}


def buyer_id_for(name: str) -> BuyerID:
    """A stable buyer id for a chosen name: a slug, or a hash for names with no Latin letters."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40]
    return BuyerID(slug or "b" + hashlib.sha256(name.encode()).hexdigest()[:12])


def product_png(colour: tuple[int, int, int], size: int = 240) -> bytes:
    """A product 'photo': a soft background with a round shape in the product's colour."""
    red, green, blue = colour
    centre = size / 2
    radius = size * 0.32
    rows = bytearray()
    for y in range(size):
        rows.append(0)  # PNG filter type: none
        for x in range(size):
            distance = math.hypot(x - centre, y - centre * 1.05)
            if distance <= radius:
                # A little shading, so it reads as an object rather than a flat disc.
                light = 1.15 - 0.35 * (x + y) / (2 * size)
                rows += bytes(min(255, int(c * light)) for c in (red, green, blue))
            else:
                shade = 246 - int(18 * y / size)
                rows += bytes((shade, shade, shade + 4 if shade < 251 else 255))

    def chunk(kind: bytes, data: bytes) -> bytes:
        checksum = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", checksum)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + chunk(b"IEND", b"")
    )


STYLE = """
body{margin:0;font:16px/1.5 system-ui,sans-serif;color:#1f2937;background:#fafaf9}
header,footer{padding:12px 24px;background:#1f2937;color:#f9fafb}
header{display:flex;gap:16px;align-items:center;justify-content:space-between;flex-wrap:wrap}
header a,footer a{color:#f9fafb}
header form{display:flex;gap:6px;align-items:center}
main{max-width:920px;margin:24px auto;padding:0 24px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:16px;padding:0;list-style:none}
.card{display:block;padding:12px;border:1px solid #d6d3d1;border-radius:10px;background:#fff}
.card{color:inherit;text-decoration:none}
.card img,.product img{width:100%;height:auto;border-radius:8px}
.product{display:grid;grid-template-columns:minmax(200px,320px) 1fr;gap:28px}
.price{font-size:24px;font-weight:700}
.ask{margin-top:24px;padding:16px;border:1px solid #d6d3d1;border-radius:10px;background:#fff}
input{font:inherit;padding:4px 8px}
button{font:inherit;padding:4px 12px;cursor:pointer}
"""


class DemoShop:
    """The marketplace's web server, where one seller (`seller_name`) offers every product.
    `bridge_url` is the bridge's public URL (it serves widget.js)."""

    def __init__(
        self,
        *,
        site: str,
        seller: str,
        widget_secret: str,
        bridge_url: str,
        port: int,
        host: str = "127.0.0.1",
        seller_name: str | None = None,
        api: MarketplaceAPI | None = None,
        orders_file: Path | None = None,
    ) -> None:
        self.site = site
        self.seller = seller
        self.seller_name = seller_name or seller
        self.widget_secret = widget_secret
        self.bridge_url = bridge_url.rstrip("/")
        self.host = host
        self.port = port
        self.url = f"http://{host}:{port}"
        self._images = {product.id: product_png(product.colour) for product in PRODUCTS}
        self._runner: web.AppRunner | None = None
        # With the marketplace API, the shop answers offers and sells through its checkout.
        self.checkout = (
            None
            if api is None
            else Checkout(
                shop_url=self.url,
                api=api,
                page=self._page,
                say=lambda line: print(line, flush=True),
                image_url=self.image_url,
                orders_file=orders_file,
            )
        )

    def image_url(self, product_id: str) -> str | None:
        known = any(product.id == product_id for product in PRODUCTS)
        return f"{self.url}/img/{product_id}.png" if known else None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.index)
        app.router.add_get("/p/{product_id}", self.product_page)
        app.router.add_get("/img/{product_id}.png", self.image)
        app.router.add_get("/login", self.login)
        app.router.add_get("/logout", self.logout)
        app.router.add_get("/lang/{lang}", self.set_language)
        if self.checkout is not None:
            self.checkout.routes(app)
        return app

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self.checkout is not None:
            await self.checkout.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ pages

    async def index(self, request: web.Request) -> web.Response:
        lang = _language(request)
        cards = "".join(
            f'<li><a class="card" href="/p/{p.id}"><img src="/img/{p.id}.png" alt="" '
            f'width="240" height="240"><strong>{html.escape(p.title)}</strong><br>'
            f"{p.price} {p.currency}</a></li>"
            for p in PRODUCTS
        )
        body = f'<h1>{TEXT[lang]["products"]}</h1><ul class="grid">{cards}</ul>'
        return self._page(request, TEXT[lang]["shop"], body)

    async def product_page(self, request: web.Request) -> web.Response:
        product = _product(request.match_info["product_id"])
        lang = _language(request)
        words = TEXT[lang]
        image_url = f"{self.url}/img/{product.id}.png"
        context = {
            "type": "product",
            "id": product.id,
            "title": product.title,
            "url": f"{self.url}/p/{product.id}",
            "image_url": image_url,
            "price": product.price,
            "currency": product.currency,
        }
        name = request.cookies.get(BUYER_COOKIE)
        token = self.token_for(name, lang) if name else ""
        widget = (
            f'<bazaar-chat site="{html.escape(self.site)}" seller="{html.escape(self.seller)}" '
            f'token="{html.escape(token)}" context="{html.escape(json.dumps(context))}">'
            f'<a slot="signin" href="#name">{words["sign_in"]}</a></bazaar-chat>'
        )
        body = f"""
<div class="product">
  <img src="/img/{product.id}.png" alt="{html.escape(product.title)}" width="240" height="240">
  <div>
    <h1>{html.escape(product.title)}</h1>
    <p class="price">{product.price} {product.currency}</p>
    <p class="seller">{html.escape(words["sold_by"].format(seller=self.seller_name))}</p>
    <p>{html.escape(product.description)}</p>
    <section class="ask" aria-labelledby="ask-title">
      <h2 id="ask-title">{words["questions"]}</h2>
      {"" if name else f"<p>{words['sign_in_hint']}</p>"}
      {widget}
    </section>
  </div>
</div>"""
        return self._page(request, product.title, body)

    def token_for(self, name: str, lang: str) -> str:
        buyer = Buyer(SiteID(self.site), buyer_id_for(name), name, lang)
        token, _expires_at = issue_buyer_token(self.widget_secret, buyer, TOKEN_TTL)
        return token

    def _page(self, request: web.Request, title: str, body: str) -> web.Response:
        lang = _language(request)
        words = TEXT[lang]
        name = request.cookies.get(BUYER_COOKIE)
        here = quote(request.path_qs)
        if name:
            account = (
                f"<span>{words['signed_in'].format(name=html.escape(name))}</span> "
                f'<a href="/logout?next={here}">{words["sign_out"]}</a>'
            )
        else:
            account = (
                f'<form action="/login"><label for="name">{words["your_name"]}</label>'
                f'<input id="name" name="name" required maxlength="60">'
                f'<input type="hidden" name="next" value="{html.escape(request.path_qs)}">'
                f'<button type="submit">{words["sign_in"]}</button></form>'
            )
        switch = " · ".join(
            f'<a href="/lang/{code}?next={here}" lang="{code}">{label}</a>'
            for code, label in (("en", "English"), ("ru", "Русский"))
        )
        page = f"""<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{html.escape(title)} · {words["shop"]}</title>
<style>{STYLE}</style>
<script src="{self.bridge_url}/widget/widget.js" defer></script>
</head>
<body>
<header><a href="/"><strong>{words["shop"]}</strong></a>{account}</header>
<main>{body}</main>
<footer><nav aria-label="{words["language"]}">{switch}</nav></footer>
</body>
</html>"""
        return web.Response(text=page, content_type="text/html")

    # ------------------------------------------------------------------ actions

    async def image(self, request: web.Request) -> web.Response:
        product = _product(request.match_info["product_id"])
        return web.Response(
            body=self._images[product.id],
            content_type="image/png",
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def login(self, request: web.Request) -> web.Response:
        name = request.query.get("name", "").strip()[:60]
        response = web.HTTPFound(_local(request.query.get("next", "/")))
        if name:
            response.set_cookie(BUYER_COOKIE, name, max_age=TOKEN_TTL, samesite="Lax")
        raise response

    async def logout(self, request: web.Request) -> web.Response:
        response = web.HTTPFound(_local(request.query.get("next", "/")))
        response.del_cookie(BUYER_COOKIE)
        raise response

    async def set_language(self, request: web.Request) -> web.Response:
        lang = request.match_info["lang"]
        response = web.HTTPFound(_local(request.query.get("next", "/")))
        if lang in LANGUAGES:
            response.set_cookie(LANG_COOKIE, lang, samesite="Lax")
        raise response


def _product(product_id: str) -> Product:
    for product in PRODUCTS:
        if product.id == product_id:
            return product
    raise web.HTTPNotFound()


def _language(request: web.Request) -> str:
    lang = request.cookies.get(LANG_COOKIE, "en")
    return lang if lang in LANGUAGES else "en"


def _local(target: str) -> str:
    """Only redirect within the shop, so `next` can't send a buyer elsewhere."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return "/"
    return target
