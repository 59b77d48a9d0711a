"""Erasing and exporting a buyer through a real bridge and Synapse: the export holds their
words and files; after the erasure the seller's client shows their events redacted, the
marketplace API their messages gone and the seller's reply kept, the media store their file
gone, and the SQLite files themselves no trace of their name, e-mail, address or words."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

import nio
import pytest

from bridge.demo.synapse import free_port
from tests.conftest import SITE, BridgeRunner, Sites, product
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import with_seller
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]

# ASCII only, so a match in the database file can't hide behind a JSON escape.
NAME = "Zofia Quillberry"
EMAIL = "zofia.quillberry@example.org"
ADDRESS = "17 Marigold Lane, Pinewick"
WORD = "xylophonequartz"
BUYER_TEXT = f"Please wrap the {WORD} nicely"
SELLER_REPLY = "Of course, it ships on Monday"
PROFILE = {
    "name": NAME,
    "email": EMAIL,
    "phone": "+48 600 700 800",
    "summary": {"address": ADDRESS},
}


def database_path(runner: BridgeRunner) -> Path:
    return Path(runner.config.database.removeprefix("sqlite+aiosqlite:///"))


def erasure_finished(runner: BridgeRunner) -> bool:
    with closing(sqlite3.connect(database_path(runner))) as database:
        row = database.execute(
            "SELECT finished_at FROM buyer_erasures WHERE buyer_id = 'zofia'"
        ).fetchone()
    return row is not None and row[0] is not None


def database_bytes(runner: BridgeRunner) -> bytes:
    """The SQLite database file and its write-ahead log, as they are on disk."""
    path = database_path(runner)
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def media_blobs(runner: BridgeRunner) -> list[bytes]:
    return [
        path.read_bytes()
        for path in runner.config.media.directory.rglob("*")
        if path.is_file() and not path.name.startswith(".")
    ]


async def event_source(owner: SellerClient, room_id: str, event_id: str) -> dict[str, Any]:
    response = await owner.client.room_get_event(room_id, event_id)
    assert isinstance(response, nio.RoomGetEventResponse), response
    source: dict[str, Any] = response.event.source
    return source


async def conversation_with_words(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, owner: SellerClient
) -> tuple[dict[str, Any], bytes, str]:
    """Zofia's text and photo in a room the owner joined, and the owner's reply; the photo's
    bytes as the bridge keeps them, and the reply's event."""
    await with_seller(marketplace, owner)
    await marketplace.ok("PUT", "/buyers/zofia", PROFILE)
    conversation = await marketplace.ok(
        "POST", "/conversations", {"seller_id": "acme", "buyer_id": "zofia", "context": product()}
    )
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    await owner.wait_until(lambda: room_id in owner.invites, what="the invite")
    await owner.accept_invite(room_id)
    await marketplace.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        {"text": BUYER_TEXT, "client_id": "text-1"},
    )
    zofia = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "zofia", name=NAME)
    )
    try:
        status, photo = await zofia.upload(conversation_id, files.png(), "IMG_7.png", "photo-1")
        assert status == 201, photo
    finally:
        await zofia.close()
    # The widget's sign-in keeps only the name, language and e-mail of the profile: the
    # marketplace sends the rest again.
    await marketplace.ok("PUT", "/buyers/zofia", PROFILE)
    await owner.wait_until(
        lambda: (
            BUYER_TEXT in owner.conversation(room_id)
            and any(m["content"].get("msgtype") == "m.image" for m in owner.messages(room_id))
        ),
        what="the buyer's text and photo",
    )
    reply_event = await owner.send_text(room_id, SELLER_REPLY)

    async def reply_listed() -> bool:
        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        return SELLER_REPLY in [m["text"] for m in listed["messages"]]

    await eventually(reply_listed, what="the seller's reply in the marketplace API")
    [attachment] = photo["attachments"]
    kept = await marketplace.session.get(
        f"{marketplace.base}/conversations/{conversation_id}/attachments/"
        f"{attachment['attachment_id']}",
        headers={"Authorization": f"Bearer {marketplace.token}"},
    )
    assert kept.status == 200
    return conversation, await kept.read(), reply_event


async def test_an_export_holds_the_buyers_profile_words_and_files(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation, photo, _ = await conversation_with_words(runner, sites, marketplace, owner)

    response = await marketplace.session.get(
        f"{marketplace.base}/buyers/zofia/export",
        headers={"Authorization": f"Bearer {marketplace.token}"},
    )
    assert response.status == 200
    assert response.content_type == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(await response.read()))
    names = archive.namelist()
    profile = json.loads(archive.read("buyer.json"))
    assert (profile["name"], profile["email"]) == (NAME, EMAIL)
    assert profile["summary"] == {"address": ADDRESS}
    document = json.loads(archive.read(f"conversations/{conversation['conversation_id']}.json"))
    said = [(m["sender"], m["text"]) for m in document["messages"]]
    assert ("buyer", BUYER_TEXT) in said
    assert ("seller", SELLER_REPLY) in said
    [file_name] = [name for name in names if name.startswith("files/")]
    assert file_name.endswith("IMG_7.png")
    assert archive.read(file_name) == photo

    status, answer = await marketplace.call("GET", "/buyers/nobody/export")
    assert (status, answer["errcode"]) == (404, "BAZAAR_UNKNOWN_BUYER")


async def test_an_erased_buyer_leaves_no_trace_but_the_counts(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation, photo, reply = await conversation_with_words(runner, sites, marketplace, owner)
    conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
    assert photo in media_blobs(runner)
    ghost_events = [
        m["event_id"]
        for m in owner.messages(room_id)
        if m["sender"].startswith("@bazaar_") and "io.bazaar.card" not in m["content"]
    ]
    [card] = [m["event_id"] for m in owner.messages(room_id) if "io.bazaar.card" in m["content"]]
    assert len(ghost_events) == 2
    # Before: the files hold every trace (else their absence later would prove nothing).
    for trace in (NAME, EMAIL, ADDRESS, WORD):
        assert trace.encode() in database_bytes(runner), trace

    status, answer = await marketplace.call("DELETE", "/buyers/zofia")
    assert status == 200, answer

    # The database part is done when the answer comes.
    listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
    assert [(m["sender"], m["text"]) for m in listed["messages"]] == [("seller", SELLER_REPLY)]
    profile = await marketplace.ok("GET", "/conversations", params={"buyer_id": "zofia"})
    assert len(profile["conversations"]) == 1
    assert photo not in media_blobs(runner)

    # The seller's client: the buyer's events and the card redacted, the reply kept.
    async def all_redacted() -> bool:
        for event_id in [*ghost_events, card]:
            source = await event_source(owner, room_id, event_id)
            if source.get("content") or "redacted_because" not in source.get("unsigned", {}):
                return False
        return True

    await eventually(all_redacted, what="the buyer's events redacted", within=60)
    kept = await event_source(owner, room_id, reply)
    assert kept["content"]["body"] == SELLER_REPLY
    [ghost] = {m["sender"] for m in owner.messages(room_id) if m["sender"].startswith("@bazaar_")}

    async def erased_profile_shown() -> bool:
        state = await owner.state(room_id, "io.bazaar.buyer")
        shown = state.get("name") == "Erased buyer" and "summary" not in state
        return shown and await owner.display_name(ghost) == "Erased buyer"

    await eventually(erased_profile_shown, what="the erased profile in the room")

    # Again: the same answer; an unknown buyer and another site's token are refused.
    status, answer = await marketplace.call("DELETE", "/buyers/zofia")
    assert status == 200, answer
    status, answer = await marketplace.call("DELETE", "/buyers/nobody")
    assert (status, answer["errcode"]) == (404, "BAZAAR_UNKNOWN_BUYER")
    status, answer = await marketplace.call("DELETE", "/buyers/zofia", token=sites.other_api_token)
    assert status == 403, answer
    status, answer = await marketplace.call("DELETE", "/buyers/zofia", token="not-a-token")
    assert status == 401, answer

    async def finished() -> bool:
        return erasure_finished(runner)

    await eventually(finished, what="the erasure finished in Matrix", within=60)
    await runner.stop_all()

    path = database_path(runner)
    stored = database_bytes(runner)
    for trace in (NAME, EMAIL, ADDRESS, WORD):
        assert trace.encode() not in stored, trace
    # The counts stay: the conversation and both messages' rows.
    with closing(sqlite3.connect(path)) as database:
        (count,) = database.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
    assert count >= 3


async def test_an_erasure_made_while_the_homeserver_is_away_is_finished_after_a_restart(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    bridge = await runner.start()
    owner = await new_seller("owner")
    conversation, photo, _ = await conversation_with_words(runner, sites, marketplace, owner)
    room_id = conversation["room_id"]
    [text_event] = [
        m["event_id"] for m in owner.messages(room_id) if m["content"].get("body") == BUYER_TEXT
    ]
    await runner.stop(bridge)

    # The same bridge, with the homeserver out of reach (nothing listens at that port).
    config = runner.config
    away = BridgeRunner(
        replace(
            config,
            homeserver=replace(config.homeserver, address=f"http://127.0.0.1:{free_port()}"),
        ),
        runner.tuning,
    )
    await away.start()
    try:
        status, answer = await marketplace.call("DELETE", "/buyers/zofia")
        assert status == 200, answer
        listed = await marketplace.ok(
            "GET", f"/conversations/{conversation['conversation_id']}/messages"
        )
        assert BUYER_TEXT not in [m["text"] for m in listed["messages"]]
        assert photo not in media_blobs(runner)
    finally:
        await away.stop_all()
    assert not erasure_finished(runner)
    source = await event_source(owner, room_id, text_event)
    assert source["content"]["body"] == BUYER_TEXT

    await runner.start()

    async def redacted() -> bool:
        source = await event_source(owner, room_id, text_event)
        return not source.get("content") and "redacted_because" in source.get("unsigned", {})

    await eventually(redacted, what="the buyer's text redacted after the restart", within=60)

    async def finished() -> bool:
        return erasure_finished(runner)

    await eventually(finished, what="the erasure recorded as finished", within=60)


async def test_a_file_another_buyer_sent_too_stays_after_the_erasure(
    runner_on_each_database: BridgeRunner, sites: Sites, new_seller: NewSeller
) -> None:
    """On both databases: the erasure's SQL, and a blob shared by two buyers' messages."""
    runner = runner_on_each_database
    await runner.start()
    marketplace = MarketplaceClient(runner.config.web.public_url, SITE, sites.api_token)
    owner = await new_seller("owner")
    olga: BuyerClient | None = None
    try:
        _, photo, _ = await conversation_with_words(runner, sites, marketplace, owner)
        await marketplace.ok("PUT", "/buyers/olga", {"name": "Olga"})
        other = await marketplace.ok(
            "POST",
            "/conversations",
            {"seller_id": "acme", "buyer_id": "olga", "context": product()},
        )
        olga = BuyerClient(
            runner.config.web.public_url,
            buyer_token(sites.widget_secret, SITE, "olga", name="Olga"),
        )
        # The same picture, so the same bytes once cleaned: one blob for both messages.
        status, sent = await olga.upload(
            other["conversation_id"], files.png(), "same.png", "photo-olga"
        )
        assert status == 201, sent
        assert media_blobs(runner).count(photo) == 1

        status, answer = await marketplace.call("DELETE", "/buyers/zofia")
        assert status == 200, answer
        status, answer = await marketplace.call("DELETE", "/buyers/zofia")
        assert status == 200, answer

        assert photo in media_blobs(runner)
        [attachment] = sent["attachments"]
        status, _, data = await olga.fetch(other["conversation_id"], attachment["attachment_id"])
        assert (status, data) == (200, photo)
        profile = await marketplace.ok("GET", "/conversations", params={"buyer_id": "zofia"})
        [erased] = profile["conversations"]
        listed = await marketplace.ok("GET", f"/conversations/{erased['conversation_id']}/messages")
        assert [m["text"] for m in listed["messages"]] == [SELLER_REPLY]
    finally:
        if olga is not None:
            await olga.close()
        await marketplace.close()
