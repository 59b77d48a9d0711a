"""The demo as a person uses it: start it, log in as the seller, ask as the buyer, answer."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.synapse


def field(printed: str, label: str) -> str:
    match = re.search(rf"^\s+{label}\s+(\S+)", printed, re.MULTILINE)
    assert match, f"the demo did not print {label!r}:\n{printed}"
    return match.group(1)


async def test_demo_lets_a_seller_answer_a_buyer(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "demo",
        "--workdir",
        str(tmp_path / "demo"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    printed = ""
    seller: SellerClient | None = None
    marketplace: MarketplaceClient | None = None
    try:
        async with asyncio.timeout(90):
            while "Press Ctrl+C" not in printed:
                line = await process.stdout.readline()
                assert line, f"the demo stopped early:\n{printed}"
                printed += line.decode()
        homeserver = field(printed, "Homeserver")
        api = field(printed, "Marketplace API")
        base, site = api.split("/api/v1/sites/")
        marketplace = MarketplaceClient(base, site, field(printed, "API token"))
        seller = SellerClient(
            homeserver, field(printed, "Seller's account"), field(printed, "Password")
        )
        await seller.login()

        # The shop's product page embeds the widget, which the bridge serves.
        page = field(printed, "Shop")
        async with aiohttp.ClientSession() as session:
            async with session.get(page) as response:
                html = await response.text()
                assert response.status == 200 and "<bazaar-chat" in html
            async with session.get(f"{base}/widget/widget.js") as response:
                assert response.status == 200
                assert "customElements.define" in await response.text()

        conversation = await marketplace.ok(
            "POST",
            "/conversations",
            {
                "seller_id": "demo-shop",
                "buyer_id": "anna",
                "context": {"type": "product", "id": "kettle-1", "title": "Electric kettle"},
            },
        )
        room_id = conversation["room_id"]
        await marketplace.ok(
            "POST",
            f"/conversations/{conversation['conversation_id']}/messages",
            {"text": "Hello! Is this kettle in stock?", "client_id": "q1"},
        )
        # The demo's Synapse accepts invites for the seller, so the room is simply there.
        question = await seller.wait_until(
            lambda: [
                m
                for m in seller.messages(room_id)
                if m["content"].get("body", "").startswith("Hello!")
            ],
            within=60,
            what="the buyer's question in an auto-joined room",
        )
        assert question[0]["sender"].startswith("@bazaar_demo_anna:")
        await seller.send_text(room_id, "Yes, two left.")

        async def answers() -> list[str]:
            assert marketplace is not None
            listed = await marketplace.ok(
                "GET", f"/conversations/{conversation['conversation_id']}/messages"
            )
            return [m["text"] for m in listed["messages"] if m["sender"] == "seller"]

        assert await eventually(answers, what="the seller's answer in the API") == [
            "Yes, two left."
        ]

        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if seller is not None:
            await seller.close()
        if marketplace is not None:
            await marketplace.close()
        if process.returncode is None:
            process.kill()
            await process.wait()
