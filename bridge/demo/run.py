"""`python -m bridge demo`: an embedded Synapse, the bridge, a demo site and a seller to log in as,
a shop whose pages carry the widget, and a webhook endpoint that prints what it receives.

Everything lives in one work folder (default `.demo/`), so a second run keeps the
accounts, tokens and conversations of the first. `BAZAAR_DEMO_LIBRETRANSLATE` (a
LibreTranslate server's URL) switches translation on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import yaml

from bridge.app import Bridge
from bridge.config import Config, ConfigError, TranslationConfig, load_config, new_secret
from bridge.demo.mail import MailSink
from bridge.demo.marketplace import MarketplaceAPI
from bridge.demo.shop import PRODUCTS, DemoShop
from bridge.demo.synapse import EmbeddedSynapse, SynapseSettings, free_port
from bridge.demo.webhooks import WebhookPrinter
from bridge.matrix.registration import registration

SITE = "demo"
SITE_NAME = "Demo Market"
SELLER = "demo-shop"
SELLER_NAME = "Kettle & Co."
OWNER = "seller"
# The demo seller's address: their mails land in <workdir>/mail/ as .eml files.
SELLER_EMAIL = "owner@kettle.example"
MAIL_FROM = "chat@demo-market.example"
LIBRETRANSLATE_VARIABLE = "BAZAAR_DEMO_LIBRETRANSLATE"
LIBRETRANSLATE_EXAMPLE = "http://127.0.0.1:5000"
# What a work folder from before the site and the seller had names of their own called them.
OLD_NAMES = {"site": "Demo Shop", "seller": "Demo Shop"}


def _port(preferred: int) -> int:
    """The preferred port when it is free, so URLs stay the same from run to run."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _demo_state(workdir: Path) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "demo.json"
    if path.exists():
        state: dict[str, Any] = json.loads(path.read_text())
        # What a work folder from an older demo lacks.
        added: dict[str, Callable[[], Any]] = {
            "shop_port": lambda: _port(29333),
            "webhook_secret": new_secret,
            "named": lambda: dict(OLD_NAMES),
            "mail_port": lambda: _port(2526),
        }
        missing = [key for key in added if key not in state]
        for key in missing:
            state[key] = added[key]()
        if missing:
            path.write_text(json.dumps(state, indent=2))
        return state
    state = {
        "synapse_port": _port(8008),
        "appservice_port": _port(29331),
        "web_port": _port(29332),
        "shop_port": _port(29333),
        "mail_port": _port(2526),
        "as_token": new_secret(),
        "hs_token": new_secret(),
        "api_token": new_secret(),
        "widget_secret": new_secret(),
        "webhook_secret": new_secret(),
        "owner_password": secrets.token_urlsafe(12),
        # The names the Space and rooms are made with; they keep them when names change.
        "named": {"site": SITE_NAME, "seller": SELLER_NAME},
    }
    path.write_text(json.dumps(state, indent=2))
    return state


def libretranslate_url(environ: Mapping[str, str]) -> str | None:
    """The LibreTranslate server `BAZAAR_DEMO_LIBRETRANSLATE` names, if any."""
    url = environ.get(LIBRETRANSLATE_VARIABLE, "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            LIBRETRANSLATE_VARIABLE,
            f"must be a LibreTranslate server's http(s) URL, such as {LIBRETRANSLATE_EXAMPLE}",
        )
    return url


def _write_config(
    workdir: Path, state: dict[str, Any], webhook_url: str, libretranslate: str | None
) -> Path:
    config: dict[str, Any] = {
        "homeserver": {
            "address": f"http://127.0.0.1:{state['synapse_port']}",
            "domain": "localhost",
        },
        "appservice": {
            "port": state["appservice_port"],
            "as_token": state["as_token"],
            "hs_token": state["hs_token"],
        },
        "database": f"sqlite+aiosqlite:///{workdir.resolve() / 'bazaar.db'}",
        "web": {"port": state["web_port"]},
        # The demo shop serves its product images on loopback.
        "media": {"directory": str(workdir.resolve() / "media"), "allow_private_fetch": True},
        "sites": [
            {
                "id": SITE,
                "name": SITE_NAME,
                "language": "en",
                "api_token": state["api_token"],
                "widget_secret": state["widget_secret"],
                # The demo's own receiver, which prints each event it gets.
                "webhook_url": webhook_url,
                "webhook_secret": state["webhook_secret"],
                # The demo shop's pages call the widget API from the browser.
                "allowed_origins": [
                    f"http://127.0.0.1:{state['shop_port']}",
                    f"http://localhost:{state['shop_port']}",
                ],
            }
        ],
    }
    if libretranslate is not None:
        config["translation"] = {"provider": "libre", "url": libretranslate}
    # The demo's own mail sink (bridge/demo/mail.py) stands in for a relay.
    config["email"] = {
        "smtp": {"host": "127.0.0.1", "port": state["mail_port"], "security": "none"},
        "from": MAIL_FROM,
        "buyer_delay_minutes": 1,
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# The seller's desk as a person trying the demo should find it set up: a greeting, working
# hours (outside them the away reply answers) and a few canned replies for `!t`.
DEMO_DESK: dict[str, Any] = {
    "greeting": "Hello {buyer}, thanks for asking about {title}! We usually answer within "
    "the hour.",
    "timezone": "UTC",
    "hours": {day: [["08:00", "20:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    | {"sat": [["10:00", "14:00"]]},
    "away_message": "We are away right now and answer from 08:00 UTC on weekdays.",
}
DEMO_TEMPLATES: dict[str, dict[str, Any]] = {
    "delivery": {
        "text": "{title} ships within 2 working days; delivery takes 3–5 days.",
        "position": 1,
    },
    "warranty": {"text": "{title} comes with a two-year warranty from {seller}.", "position": 2},
    "thanks": {"text": "Thank you, {buyer}! Write any time. — {member}", "position": 3},
}


async def _call(
    session: aiohttp.ClientSession, method: str, url: str, token: str, body: dict[str, Any]
) -> dict[str, Any]:
    async with session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {token}"}
    ) as response:
        answer: dict[str, Any] = await response.json()
        if response.status >= 400:
            raise RuntimeError(f"{method} {url}: {response.status} {answer}")
        return answer


def prepare_demo(
    workdir: Path, state: dict[str, Any], webhook_url: str, libretranslate: str | None
) -> tuple[Config, Path]:
    config = load_config(_write_config(workdir, state, webhook_url, libretranslate))
    registration_path = workdir / "registration.yaml"
    registration_path.write_text(yaml.safe_dump(registration(config), sort_keys=False))
    return config, registration_path


async def run_demo(workdir: Path, environ: Mapping[str, str] | None = None) -> None:
    libretranslate = libretranslate_url(os.environ if environ is None else environ)
    state = _demo_state(workdir)
    webhooks = WebhookPrinter(state["webhook_secret"])
    await webhooks.start()
    try:
        await _run(workdir, state, webhooks, libretranslate)
    finally:
        await webhooks.stop()


async def _run(
    workdir: Path, state: dict[str, Any], webhooks: WebhookPrinter, libretranslate: str | None
) -> None:
    webhook_url = webhooks.url
    config, registration_path = prepare_demo(workdir, state, webhook_url, libretranslate)
    synapse = EmbeddedSynapse(
        SynapseSettings(
            workdir=workdir / "synapse",
            port=state["synapse_port"],
            appservice_registrations=(registration_path,),
            auto_accept_invites=True,
        )
    )
    await synapse.start()
    mail = MailSink(workdir / "mail", state["mail_port"])
    await mail.start()
    bridge = Bridge(config)
    shop = DemoShop(
        site=SITE,
        seller=SELLER,
        seller_name=SELLER_NAME,
        widget_secret=state["widget_secret"],
        bridge_url=config.web.public_url,
        port=state["shop_port"],
        api=MarketplaceAPI(f"{config.web.public_url}/api/v1/sites/{SITE}", state["api_token"]),
        orders_file=workdir / "orders.json",
    )
    try:
        owner = await synapse.register_user(
            OWNER, state["owner_password"], displayname=f"{SELLER_NAME} owner"
        )
        await bridge.start()
        api = f"{config.web.public_url}/api/v1/sites/{SITE}"
        async with aiohttp.ClientSession() as session:
            await _call(
                session,
                "PUT",
                f"{api}/sellers/{SELLER}",
                state["api_token"],
                {
                    "name": SELLER_NAME,
                    "language": "en",
                    "email": SELLER_EMAIL,
                    "email_copies": True,
                    "members": [{"user_id": owner, "role": "owner"}],
                    **DEMO_DESK,
                },
            )
            for name, template in DEMO_TEMPLATES.items():
                await _call(
                    session,
                    "PUT",
                    f"{api}/sellers/{SELLER}/templates/{name}",
                    state["api_token"],
                    template,
                )
            await _call(
                session,
                "PUT",
                f"{api}/buyers/anna",
                state["api_token"],
                {"name": "Anna", "language": "en", "email": "anna@example.org"},
            )
        await shop.start()
        if shop.checkout is not None:
            webhooks.listen("offer.created", shop.checkout.offer_created)
        print(
            welcome(
                Welcome(
                    homeserver=synapse.address,
                    owner=owner,
                    password=state["owner_password"],
                    api=api,
                    api_token=state["api_token"],
                    shop=shop.url,
                    webhooks=webhook_url,
                    translation=config.translation,
                    workdir=workdir,
                    named=state["named"],
                    mail=mail.folder,
                )
            ),
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await shop.stop()
        with contextlib.suppress(Exception):
            await bridge.stop()
        await mail.stop()
        await synapse.stop()


@dataclass(frozen=True)
class Welcome:
    """What the demo tells a person once everything is up."""

    homeserver: str
    owner: str
    password: str
    api: str
    api_token: str
    shop: str
    webhooks: str
    translation: TranslationConfig
    workdir: Path
    named: Mapping[str, str]
    mail: Path


def _features(translation: TranslationConfig) -> str:
    webhooks = """\
  on   webhooks: each event is signed with the site's webhook_secret and sent to the
       receiver above, which checks the signature and prints a line here ("webhook ✓ …")"""
    if translation.provider == "none":
        return f"""{webhooks}
  off  translation. To switch it on, start the demo with a LibreTranslate server:
         {LIBRETRANSLATE_VARIABLE}={LIBRETRANSLATE_EXAMPLE} ./scripts/demo
       then choose Русский in the shop's footer and ask in Russian: the seller reads English."""
    where = f" at {translation.url}" if translation.url else ""
    return f"""{webhooks}
  on   translation through {translation.provider}{where}: choose Русский in the shop's
       footer and ask in Russian; the seller reads English, the buyer the answer in Russian."""


def _conversation_body(shop: str) -> str:
    """The marketplace's request for a conversation about the shop's kettle, laid out to
    read in a terminal (JSON allows the line breaks)."""
    product = PRODUCTS[0]
    context: dict[str, str] = {
        "type": "product",
        "id": product.id,
        "title": product.title,
        "price": product.price,
        "currency": product.currency,
        "url": f"{shop}/p/{product.id}",
        "image_url": f"{shop}/img/{product.id}.png",
    }
    rows = [("type", "id", "title"), ("price", "currency"), ("url",), ("image_url",)]
    fields = [", ".join(f"{json.dumps(k)}: {json.dumps(context[k])}" for k in row) for row in rows]
    parties = f'"seller_id": {json.dumps(SELLER)}, "buyer_id": "anna"'
    return f'{{{parties}, "context": {{\n        ' + ",\n        ".join(fields) + "}}"


def _curl_lines(api: str, api_token: str, shop: str) -> tuple[str, str]:
    """Shell lines that work pasted in order: the first part starts a conversation and
    sends the question, the second (after the seller answered) reads it back."""
    python = "python3" if shutil.which("python3") else shlex.quote(sys.executable)
    question = json.dumps({"text": "Hello! Is this kettle in stock?", "client_id": "q1"})
    keep_id = f"""{python} -c 'import json, sys; print(json.load(sys.stdin)["conversation_id"])'"""
    auth = shlex.quote(f"Authorization: Bearer {api_token}")
    ask = f"""\
  API={shlex.quote(api)}
  AUTH={auth}
  CONVERSATION_ID=$(curl -sS -X POST "$API/conversations" -H "$AUTH" \\
    -H 'Content-Type: application/json' \\
    -d {shlex.quote(_conversation_body(shop))} \\
    | {keep_id})
  curl -sS -w '\\n' -X POST "$API/conversations/$CONVERSATION_ID/messages" -H "$AUTH" \\
    -H 'Content-Type: application/json' \\
    -d {shlex.quote(question)}"""
    read = '  curl -sS -w \'\\n\' "$API/conversations/$CONVERSATION_ID/messages" -H "$AUTH"'
    return ask, read


def welcome(about: Welcome) -> str:
    ask, read = _curl_lines(about.api, about.api_token, about.shop)
    space = f"{SELLER_NAME} · {SITE_NAME}"
    note = ""
    if dict(about.named) != {"site": SITE_NAME, "seller": SELLER_NAME}:
        old = f"{about.named['seller']} · {about.named['site']}"
        note = f"""
Note: this work folder comes from an older demo. A Space or room it made then keeps the
name it was made with ("{old}"); remove {about.workdir}/ to start afresh.
"""
    return f"""
Bazaar Bridge demo is running: the marketplace "{SITE_NAME}" and its seller "{SELLER_NAME}".

  Shop              {about.shop}/p/kettle-1
  Homeserver        {about.homeserver}   (server name: localhost)
  Seller's account  {about.owner}   (the owner of {SELLER_NAME})
  Password          {about.password}
  Marketplace API   {about.api}
  API token         {about.api_token}
  Webhook receiver  {about.webhooks}
  Mail folder       {about.mail}/   (each mail the bridge sends, as an .eml file)

In this demo:
{_features(about.translation)}
  on   e-mail, through a local sink that keeps each mail in the mail folder above: the
       seller ({SELLER_EMAIL}) hears of each new conversation and gets a copy of each
       question; a reply the buyer leaves unread for a minute is mailed to them.

Log in with Element or any Matrix client (homeserver {about.homeserver}) as the seller.
Open the shop in a browser, sign in with any name and press "Ask a question" on a product
page: the question arrives in the seller's client, in a room of the Space
"{space}", and the reply in the page.

The seller's desk is set up: a greeting, working hours (Mon–Fri 08:00–20:00 and Sat
10:00–14:00 UTC; outside them the away reply answers) and canned replies: say !t in the
conversation room to list them, !t 1 or !t delivery to send one, !help for the rest.

To sell: in the seller's room type !offer (or !offer 3 19.90); the shop opens it and the
widget shows a Buy button. Open it, press "Place order", then "Mark paid" and "Mark shipped".

Or, without a browser, be the marketplace's backend: paste these lines into bash or zsh,
in order. They start a conversation for the buyer "anna", keep its id and ask a question:

{ask}

The question appears in the seller's room, and the webhook receiver prints its lines here.
Answer it in the seller's client, then read the conversation as the marketplace sees it:

{read}
{note}
Press Ctrl+C to stop. Everything is kept in the work folder for the next run.
"""
