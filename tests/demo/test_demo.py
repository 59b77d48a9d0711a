"""The demo as a person uses it: start it, read what it prints, paste its commands, log in
as the seller, ask as the buyer, answer, and watch the webhook receiver's lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.libretranslate import FakeLibreTranslate
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.synapse


def field(printed: str, label: str) -> str:
    match = re.search(rf"^\s+{label}\s+(\S+)", printed, re.MULTILINE)
    assert match, f"the demo did not print {label!r}:\n{printed}"
    return match.group(1)


def pasted_commands(printed: str) -> tuple[str, str]:
    """The two blocks of shell lines the demo prints, as a person would copy them: the
    indented lines after "paste these lines", up to the next line of prose each."""
    after = printed.split("paste these lines", 1)
    assert len(after) == 2, f"the demo printed no commands to paste:\n{printed}"
    blocks: list[list[str]] = [[]]
    for line in after[1].splitlines():
        if line.startswith("  "):
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    commands = ["\n".join(block) for block in blocks if block]
    assert len(commands) == 2, f"expected two blocks of commands:\n{printed}"
    return commands[0], commands[1]


class Demo:
    """`python -m bridge demo` in a subprocess: its welcome, and every line it prints after."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.printed = ""
        self.lines: list[str] = []
        self._arrived = asyncio.Condition()
        self._reader: asyncio.Task[None] | None = None

    async def wait_for_welcome(self) -> None:
        assert self.process.stdout is not None
        async with asyncio.timeout(90):
            while "Press Ctrl+C" not in self.printed:
                line = await self.process.stdout.readline()
                assert line, f"the demo stopped early:\n{self.printed}"
                self.printed += line.decode()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            async with self._arrived:
                self.lines.append(line.decode().rstrip("\n"))
                self._arrived.notify_all()

    async def line(self, expected: str, within: float = 60) -> str:
        """The first line printed after the welcome that is exactly `expected`."""
        try:
            async with asyncio.timeout(within), self._arrived:
                await self._arrived.wait_for(lambda: expected in self.lines)
        except TimeoutError:
            lines = "\n".join(self.lines)
            raise AssertionError(
                f"the demo never printed {expected!r}; it printed:\n{lines}"
            ) from None
        return expected

    async def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        async with asyncio.timeout(30):
            code = await self.process.wait()
        if self._reader is not None:
            await self._reader
        return code


@contextlib.asynccontextmanager
async def demo(workdir: Path, **environ: str) -> AsyncIterator[Demo]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "demo",
        "--workdir",
        str(workdir),
        cwd=workdir.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), **environ},
    )
    running = Demo(process)
    try:
        await running.wait_for_welcome()
        yield running
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@contextlib.asynccontextmanager
async def logged_in_seller(printed: str) -> AsyncIterator[SellerClient]:
    seller = SellerClient(
        field(printed, "Homeserver"), field(printed, "Seller's account"), field(printed, "Password")
    )
    try:
        await seller.login()
        yield seller
    finally:
        await seller.close()


@contextlib.asynccontextmanager
async def marketplace_of(printed: str) -> AsyncIterator[MarketplaceClient]:
    base, site = field(printed, "Marketplace API").split("/api/v1/sites/")
    marketplace = MarketplaceClient(base, site, field(printed, "API token"))
    try:
        yield marketplace
    finally:
        await marketplace.close()


class Shell:
    """One bash that a person pastes lines into, one block after another."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, cwd: Path) -> Shell:
        process = await asyncio.create_subprocess_exec(
            "bash",
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        return cls(process)

    async def paste(self, block: str) -> Any:
        """Paste the block and read the one line it answers with, as JSON."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(block.encode() + b"\n")
        await self.process.stdin.drain()
        async with asyncio.timeout(60):
            answer = (await self.process.stdout.readline()).decode()
        try:
            return json.loads(answer)
        except ValueError:
            raise AssertionError(f"the pasted lines answered {answer!r}:\n{block}") from None

    async def close(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


async def test_demo_shows_a_seller_answering_a_buyer_with_webhooks(tmp_path: Path) -> None:
    async with (
        demo(tmp_path / "demo") as running,
        logged_in_seller(running.printed) as seller,
        marketplace_of(running.printed) as marketplace,
    ):
        printed = running.printed
        assert 'the marketplace "Demo Market" and its seller "Kettle & Co."' in printed
        assert "on   webhooks: each event is signed" in printed
        # Translation is off, and the printout says how to switch it on.
        assert "off  translation." in printed
        assert "BAZAAR_DEMO_LIBRETRANSLATE=http://127.0.0.1:5000 ./scripts/demo" in printed
        assert "older demo" not in printed

        # The shop is the marketplace; the seller is someone else, named on the page.
        page = field(printed, "Shop")
        base = field(printed, "Marketplace API").split("/api/v1/sites/")[0]
        async with aiohttp.ClientSession() as session:
            async with session.get(page) as response:
                html = await response.text()
                assert response.status == 200 and "<bazaar-chat" in html
                assert "<strong>Demo Market</strong>" in html
                assert "Sold by Kettle &amp; Co." in html
            async with session.get(f"{base}/widget/widget.js") as response:
                assert response.status == 200
                assert "customElements.define" in await response.text()

        # The printed commands, pasted in order into one shell, start a conversation and ask.
        ask, read = pasted_commands(printed)
        shell = await Shell.start(tmp_path)
        try:
            question = await shell.paste(ask)
            assert question["text"] == "Hello! Is this kettle in stock?"
            assert question["sender"] == "buyer"
            conversation_id = question["conversation_id"]
            await running.line(
                f"webhook ✓ conversation.created conv={conversation_id} "
                'product "Electric kettle 1.7 l"'
            )
            await running.line(
                f"webhook ✓ message.created conv={conversation_id} buyer "
                '"Hello! Is this kettle in stock?"'
            )
            await running.line(f"webhook ✓ message.status conv={conversation_id} sent")

            # The seller's mails land in the printed folder: the new conversation, the copy.
            folder = Path(field(printed, "Mail folder"))
            assert folder == tmp_path / "demo" / "mail"

            def read_subjects() -> list[str]:
                return [
                    str(message_from_bytes(path.read_bytes(), policy=default)["Subject"])
                    for path in folder.glob("*.eml")
                ]

            async def subjects() -> list[str]:
                found = await asyncio.to_thread(read_subjects)
                return found if len(found) >= 2 else []

            assert sorted(await eventually(subjects, what="two .eml files")) == [
                "Anna wrote about Electric kettle 1.7 l",
                "New conversation from Anna: Electric kettle 1.7 l",
            ]

            # The demo's Synapse accepts invites for the seller, so the rooms are simply
            # there, named for the seller and the site apart.
            conversation = await marketplace.ok("GET", f"/conversations/{conversation_id}")
            room_id = conversation["room_id"]
            await seller.wait_until(
                lambda: [
                    m
                    for m in seller.messages(room_id)
                    if m["content"].get("body") == "Hello! Is this kettle in stock?"
                ],
                within=60,
                what="the buyer's question in an auto-joined room",
            )

            def room_names() -> set[str]:
                return {room.name for room in seller.client.rooms.values() if room.name}

            await seller.wait_until(
                lambda: (
                    {"Kettle & Co. · Demo Market", "Kettle & Co. ⇄ Demo Market"} <= room_names()
                ),
                within=60,
                what="the seller's Space and the room shared with the marketplace",
            )
            assert seller.client.rooms[room_id].name == "Anna · Electric kettle 1.7 l"

            await seller.send_text(room_id, "Yes, two left.")
            await running.line(
                f'webhook ✓ message.created conv={conversation_id} seller "Yes, two left."'
            )
            listed = await shell.paste(read)
            assert [(m["sender"], m["text"]) for m in listed["messages"] if not m["automatic"]] == [
                ("buyer", "Hello! Is this kettle in stock?"),
                ("seller", "Yes, two left."),
            ]
            # The demo's seller greets: the buyer's question got the greeting right after it
            # (and, outside the seller's hours, the away reply too).
            automatic = [m["text"] for m in listed["messages"] if m["automatic"]]
            assert automatic[0] == (
                "Hello Anna, thanks for asking about Electric kettle 1.7 l! "
                "We usually answer within the hour."
            )
            assert listed["messages"][1]["automatic"]

            # So are canned replies: !t lists the demo's templates in the room.
            assert "The seller's desk is set up" in printed
            await seller.send_text(room_id, "!t")
            await seller.wait_until(
                lambda: [
                    m
                    for m in seller.messages(room_id)
                    if m["content"].get("msgtype") == "m.notice"
                    and "1. delivery" in m["content"].get("body", "")
                ],
                what="the demo's templates listed by !t",
            )
        finally:
            await shell.close()

        # A request not signed with the site's webhook_secret is refused, loudly.
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                field(printed, "Webhook receiver"),
                data=b'{"id": "forged", "type": "message.created"}',
                headers={"X-Bazaar-Signature": "sha256=" + "0" * 64},
            ) as response,
        ):
            assert response.status == 401
        await running.line(
            "webhook ✗ BAD SIGNATURE: refused (401) an event whose X-Bazaar-Signature is not "
            "the HMAC-SHA256 of its body with the site's webhook_secret"
        )

        assert await running.stop() == 0


async def test_demo_translates_through_the_libretranslate_it_is_given(tmp_path: Path) -> None:
    libre = FakeLibreTranslate()
    await libre.start()
    try:
        async with (
            demo(tmp_path / "demo", BAZAAR_DEMO_LIBRETRANSLATE=libre.url) as running,
            logged_in_seller(running.printed) as seller,
            marketplace_of(running.printed) as marketplace,
        ):
            assert f"on   translation through libre at {libre.base}:" in running.printed
            assert "off  translation" not in running.printed

            await marketplace.ok("PUT", "/buyers/olga", {"name": "Olga", "language": "ru"})
            conversation = await marketplace.ok(
                "POST",
                "/conversations",
                {
                    "seller_id": "demo-shop",
                    "buyer_id": "olga",
                    "context": {"type": "product", "id": "mug-3", "title": "Stoneware mugs"},
                },
            )
            await marketplace.ok(
                "POST",
                f"/conversations/{conversation['conversation_id']}/messages",
                {"text": "Здравствуйте!", "client_id": "r1"},
            )
            # The seller, whose language is English, reads it in English.
            await seller.wait_until(
                lambda: [
                    m
                    for m in seller.messages(conversation["room_id"])
                    if m["content"].get("body") == "Hello!"
                ],
                within=60,
                what="the buyer's Russian question, in English",
            )
            assert await running.stop() == 0
    finally:
        await libre.close()


async def test_demo_refuses_a_libretranslate_address_that_is_no_url(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        "demo",
        "--workdir",
        str(tmp_path / "demo"),
        cwd=tmp_path,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BAZAAR_DEMO_LIBRETRANSLATE": "localhost:5000"},
    )
    try:
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 2
    assert stderr.decode().strip() == (
        "Bad configuration: BAZAAR_DEMO_LIBRETRANSLATE: must be a LibreTranslate server's "
        "http(s) URL, such as http://127.0.0.1:5000"
    )


async def test_demo_carries_on_in_a_work_folder_of_an_older_demo(tmp_path: Path) -> None:
    from bridge.demo.synapse import free_port

    workdir = tmp_path / "demo"
    workdir.mkdir()
    # What the demo kept before the site and the seller had names of their own and a
    # webhook receiver: no webhook_secret, no record of the names.
    (workdir / "demo.json").write_text(
        json.dumps(
            {
                "synapse_port": free_port(),
                "appservice_port": free_port(),
                "web_port": free_port(),
                "shop_port": free_port(),
                "as_token": "a" * 64,
                "hs_token": "h" * 64,
                "api_token": "t" * 64,
                "widget_secret": "w" * 64,
                "owner_password": "older-password",
            }
        )
    )
    async with (
        demo(workdir) as running,
        marketplace_of(running.printed) as marketplace,
    ):
        assert field(running.printed, "Password") == "older-password"
        assert (
            'keeps the\nname it was made with ("Demo Shop · Demo Shop"); '
            f"remove {workdir}/ to start afresh." in running.printed
        )
        seller = await marketplace.ok("GET", "/sellers/demo-shop")
        assert seller["name"] == "Kettle & Co."
        conversation = await marketplace.ok(
            "POST",
            "/conversations",
            {
                "seller_id": "demo-shop",
                "buyer_id": "anna",
                "context": {"type": "product", "id": "teapot-2", "title": "Cast-iron teapot"},
            },
        )
        await running.line(
            f"webhook ✓ conversation.created conv={conversation['conversation_id']} "
            'product "Cast-iron teapot"'
        )
        assert await running.stop() == 0
