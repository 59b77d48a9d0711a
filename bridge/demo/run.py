"""`python -m bridge demo`: an embedded Synapse, the bridge, a demo site and a seller to log in as.

Everything lives in one work folder (default `.demo/`), so a second run keeps the
accounts, tokens and conversations of the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bridge.app import Bridge
from bridge.config import Config, load_config, new_secret
from bridge.demo.shop import DemoShop
from bridge.demo.synapse import EmbeddedSynapse, SynapseSettings, free_port
from bridge.matrix.registration import registration

SITE = "demo"
SELLER = "demo-shop"
OWNER = "seller"


def _port(preferred: int) -> int:
    """The preferred port when it is free, so URLs stay the same from run to run."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _demo_state(workdir: Path) -> dict[str, Any]:
    path = workdir / "demo.json"
    if path.exists():
        state: dict[str, Any] = json.loads(path.read_text())
        if "shop_port" not in state:  # a work folder from before the demo had a shop
            state["shop_port"] = _port(29333)
            path.write_text(json.dumps(state, indent=2))
        return state
    state = {
        "synapse_port": _port(8008),
        "appservice_port": _port(29331),
        "web_port": _port(29332),
        "shop_port": _port(29333),
        "as_token": new_secret(),
        "hs_token": new_secret(),
        "api_token": new_secret(),
        "widget_secret": new_secret(),
        "owner_password": secrets.token_urlsafe(12),
    }
    path.write_text(json.dumps(state, indent=2))
    return state


def _write_config(workdir: Path, state: dict[str, Any]) -> Path:
    config = {
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
                "name": "Demo Shop",
                "language": "en",
                "api_token": state["api_token"],
                "widget_secret": state["widget_secret"],
                # The demo shop's pages call the widget API from the browser.
                "allowed_origins": [
                    f"http://127.0.0.1:{state['shop_port']}",
                    f"http://localhost:{state['shop_port']}",
                ],
            }
        ],
    }
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


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


def prepare_demo(workdir: Path) -> tuple[Config, dict[str, Any], Path]:
    workdir.mkdir(parents=True, exist_ok=True)
    state = _demo_state(workdir)
    config = load_config(_write_config(workdir, state))
    registration_path = workdir / "registration.yaml"
    registration_path.write_text(yaml.safe_dump(registration(config), sort_keys=False))
    return config, state, registration_path


async def run_demo(workdir: Path) -> None:
    config, state, registration_path = prepare_demo(workdir)

    synapse = EmbeddedSynapse(
        SynapseSettings(
            workdir=workdir / "synapse",
            port=state["synapse_port"],
            appservice_registrations=(registration_path,),
            auto_accept_invites=True,
        )
    )
    await synapse.start()
    bridge = Bridge(config)
    shop = DemoShop(
        site=SITE,
        seller=SELLER,
        widget_secret=state["widget_secret"],
        bridge_url=config.web.public_url,
        port=state["shop_port"],
    )
    try:
        owner = await synapse.register_user(
            OWNER, state["owner_password"], displayname="Demo Shop owner"
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
                    "name": "Demo Shop",
                    "language": "en",
                    "members": [{"user_id": owner, "role": "owner"}],
                },
            )
            await _call(
                session,
                "PUT",
                f"{api}/buyers/anna",
                state["api_token"],
                {"name": "Anna", "language": "en"},
            )
        await shop.start()
        _print_welcome(synapse.address, owner, state, api, shop.url)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
    finally:
        await shop.stop()
        with contextlib.suppress(Exception):
            await bridge.stop()
        await synapse.stop()


def _print_welcome(homeserver: str, owner: str, state: dict[str, Any], api: str, shop: str) -> None:
    token = state["api_token"]
    conversation = json.dumps(
        {
            "seller_id": SELLER,
            "buyer_id": "anna",
            "context": {
                "type": "product",
                "id": "kettle-1",
                "title": "Electric kettle 1.7 l",
                "url": "https://shop.example/kettle-1",
            },
        }
    )
    print(
        f"""
Bazaar Bridge demo is running.

  Shop              {shop}/p/kettle-1
  Homeserver        {homeserver}   (server name: localhost)
  Seller's account  {owner}
  Password          {state["owner_password"]}
  Marketplace API   {api}
  API token         {token}

Log in with Element or any Matrix client (homeserver {homeserver}) as the seller.

Then open the shop in a browser, sign in with any name and press "Ask a question" on a
product page: the question arrives in the seller's client, and the reply in the page.

Or, without a browser, start a conversation as the buyer "anna" and send a message:

  curl -s -X POST {api}/conversations \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{conversation}'

  curl -s -X POST {api}/conversations/CONVERSATION_ID/messages \\
    -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\
    -d '{{"text": "Hello! Is this kettle in stock?", "client_id": "q1"}}'

The room appears in the seller's client; replies show up in
  curl -s {api}/conversations/CONVERSATION_ID/messages -H 'Authorization: Bearer {token}'

Press Ctrl+C to stop. Everything is kept in the work folder for the next run.
""",
        file=sys.stdout,
        flush=True,
    )
