"""Attachments both ways through a real bridge and Synapse: a buyer's photo reaches the
seller's client cleaned of its metadata, a seller's files reach the buyer, bad files are
turned away and leave nothing behind."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from PIL import Image

from bridge.config import MediaConfig
from tests.conftest import SITE, BridgeRunner, Sites
from tests.support import files
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import anna_in, joined_conversation, open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient
from tests.support.waiting import eventually

pytestmark = pytest.mark.synapse

NewSeller = Callable[[str], Awaitable[SellerClient]]
GPS_TAG = 0x8825
MAKE_TAG = 0x010F


def exif_of(data: bytes) -> dict[int, Any]:
    with Image.open(io.BytesIO(data)) as image:
        return dict(image.getexif())


async def test_a_buyers_photo_reaches_the_seller_without_its_gps(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    # Upright, as most phones store them now; the browser test sends one to be turned.
    photo = files.jpeg_with_gps(width=1200, height=800, orientation=1)
    assert GPS_TAG in exif_of(photo) and MAKE_TAG in exif_of(photo)
    anna = await anna_in(runner, sites)
    try:
        status, message = await anna.upload(
            conversation_id, photo, "IMG_0042.JPG", "photo-1", text="The scratch is here"
        )
        assert status == 201, message
        [attachment] = message["attachments"]
        assert attachment["kind"] == "image"
        assert attachment["content_type"] == "image/jpeg"
        assert attachment["thumbnail"] is True
        assert (attachment["width"], attachment["height"]) == (1200, 800)

        await owner.accept_invite(room_id)
        event = await owner.wait_until(
            lambda: next(
                (m for m in owner.messages(room_id) if m["content"].get("msgtype") == "m.image"),
                None,
            ),
            what="the buyer's photo as m.image",
        )
        content = event["content"]
        assert content["body"] == "The scratch is here"
        assert content["filename"] == attachment["name"]
        assert content["io.bazaar.message_id"] == message["message_id"]
        info = content["info"]
        assert (info["mimetype"], info["w"], info["h"]) == (
            "image/jpeg",
            attachment["width"],
            attachment["height"],
        )
        assert info["thumbnail_url"].startswith("mxc://")
        assert max(info["thumbnail_info"]["w"], info["thumbnail_info"]["h"]) <= 320

        status, seen = await owner.download(content["url"])
        assert status == 200
        assert GPS_TAG not in exif_of(seen) and MAKE_TAG not in exif_of(seen)
        with Image.open(io.BytesIO(seen)) as image, Image.open(io.BytesIO(photo)) as taken:
            assert (image.width, image.height) == (info["w"], info["h"]) == (1200, 800)
            # The picture itself is passed on as taken, not encoded again.
            assert image.tobytes() == taken.tobytes()
        status, small = await owner.download(info["thumbnail_url"])
        assert status == 200
        with Image.open(io.BytesIO(small)) as image:
            assert (image.width, image.height) == (
                info["thumbnail_info"]["w"],
                info["thumbnail_info"]["h"],
            )

        # The buyer gets the cleaned photo back from the bridge, as a picture that can't run.
        status, headers, body = await anna.fetch(conversation_id, attachment["attachment_id"])
        assert status == 200
        assert body == seen
        assert headers["Content-Type"] == "image/jpeg"
        assert headers["Content-Disposition"].startswith("inline;")
        assert "sandbox" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
    finally:
        await anna.close()


async def test_a_sellers_image_and_invoice_reach_the_buyer_and_the_marketplace(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    picture, invoice, page = files.png(64, 48), files.pdf(), files.html_named_png()
    picture_url = await owner.upload(picture, "image/png", "detail.png")
    await owner.send(
        room_id,
        {
            "msgtype": "m.image",
            "body": "detail.png",
            "url": picture_url,
            "info": {"mimetype": "image/png", "size": len(picture), "w": 64, "h": 48},
        },
    )
    invoice_url = await owner.upload(invoice, "application/pdf", "invoice 7.pdf")
    await owner.send(
        room_id,
        {
            "msgtype": "m.file",
            "body": "Your invoice",
            "filename": "invoice 7.pdf",
            "url": invoice_url,
            "info": {"mimetype": "application/pdf", "size": len(invoice)},
        },
    )
    # A page that calls itself a PNG: the bridge must not hand it out as one.
    page_url = await owner.upload(page, "image/png", "innocent.png")
    await owner.send(
        room_id,
        {
            "msgtype": "m.image",
            "body": "innocent.png",
            "url": page_url,
            "info": {"mimetype": "image/png", "size": len(page)},
        },
    )

    anna = await anna_in(runner, sites)
    boris = BuyerClient(
        runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "boris")
    )
    try:

        async def three_files() -> list[dict[str, Any]] | None:
            listed = await anna.ok("GET", f"/conversations/{conversation_id}/messages")
            found = [m for m in listed["messages"] if m["attachments"]]
            return found if len(found) == 3 else None

        with_files = await eventually(three_files, what="the seller's three files listed")
        image_message, invoice_message, page_message = with_files
        assert image_message["text"] == ""
        assert image_message["attachments"][0]["kind"] == "image"
        assert invoice_message["text"] == "Your invoice"
        [invoice_file] = invoice_message["attachments"]
        assert (invoice_file["kind"], invoice_file["name"]) == ("file", "invoice 7.pdf")

        status, headers, body = await anna.fetch(
            conversation_id, image_message["attachments"][0]["attachment_id"]
        )
        assert (status, body, headers["Content-Type"]) == (200, picture, "image/png")
        assert headers["Content-Disposition"].startswith("inline;")

        status, headers, body = await anna.fetch(conversation_id, invoice_file["attachment_id"])
        assert (status, body, headers["Content-Type"]) == (200, invoice, "application/pdf")
        assert headers["Content-Disposition"].startswith("attachment;")
        assert "filename*=UTF-8''invoice%207.pdf" in headers["Content-Disposition"]
        assert "sandbox" in headers["Content-Security-Policy"]

        status, headers, body = await anna.fetch(
            conversation_id, page_message["attachments"][0]["attachment_id"]
        )
        assert status == 200
        assert headers["Content-Type"] == "application/octet-stream"
        assert headers["Content-Disposition"].startswith("attachment;")

        # Another buyer learns nothing, not even that the conversation exists.
        status, _, _ = await boris.fetch(conversation_id, invoice_file["attachment_id"])
        assert status == 404
        status, _, _ = await anna.fetch(conversation_id, invoice_file["attachment_id"] + "9")
        assert status == 404

        # The marketplace lists the files and fetches them with its own token.
        listed = await marketplace.ok("GET", f"/conversations/{conversation_id}/messages")
        names = [a["name"] for m in listed["messages"] for a in m["attachments"]]
        assert names == ["detail.png", "invoice 7.pdf", "innocent.png"]
        async with marketplace.session.get(
            f"{marketplace.base}/conversations/{conversation_id}/attachments/"
            f"{invoice_file['attachment_id']}",
            headers={"Authorization": f"Bearer {sites.api_token}"},
        ) as response:
            assert response.status == 200
            assert await response.read() == invoice
        async with marketplace.session.get(
            f"{marketplace.base}/conversations/{conversation_id}/attachments/"
            f"{invoice_file['attachment_id']}",
            headers={"Authorization": f"Bearer {sites.other_api_token}"},
        ) as response:
            assert response.status == 403
    finally:
        await anna.close()
        await boris.close()


async def test_a_sellers_big_photo_reaches_the_buyer_whole(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    """Several megabytes come from the homeserver in many packets; the buyer gets them all."""
    await runner.start()
    owner = await new_seller("owner")
    conversation = await joined_conversation(marketplace, owner)
    room_id, conversation_id = conversation["room_id"], conversation["conversation_id"]
    photo = files.noise_png(1600, 1600)
    assert len(photo) > 5 * 1024 * 1024
    url = await owner.upload(photo, "image/png", "shelf.png")
    await owner.send(
        room_id,
        {
            "msgtype": "m.image",
            "body": "shelf.png",
            "url": url,
            "info": {"mimetype": "image/png", "size": len(photo), "w": 1600, "h": 1600},
        },
    )
    anna = await anna_in(runner, sites)
    try:

        async def the_photo() -> list[dict[str, Any]] | None:
            listed = await anna.ok("GET", f"/conversations/{conversation_id}/messages")
            found = [a for m in listed["messages"] for a in m["attachments"]]
            return found or None

        [attachment] = await eventually(the_photo, what="the seller's photo listed")
        status, headers, body = await anna.fetch(conversation_id, attachment["attachment_id"])
    finally:
        await anna.close()
    assert (status, headers["Content-Type"]) == (200, "image/png")
    assert len(body) == len(photo)
    assert body == photo


async def test_bad_files_are_refused_and_leave_nothing_behind(
    runner: BridgeRunner, sites: Sites, marketplace: MarketplaceClient, new_seller: NewSeller
) -> None:
    runner.config = replace(
        runner.config,
        media=MediaConfig(runner.config.media.directory, max_upload_bytes=1024 * 1024),
    )
    await runner.start()
    owner = await new_seller("owner")
    conversation = await open_conversation(marketplace, owner)
    conversation_id = conversation["conversation_id"]
    media = runner.config.media.directory
    anna = await anna_in(runner, sites)
    cases = [
        (b"", "empty.pdf", 400, "BAZAAR_EMPTY_FILE"),
        (b"%PDF-1.4\n" + b"0" * (1024 * 1024), "big.pdf", 413, "M_TOO_LARGE"),
        (files.html_named_png(), "cat.png", 400, "BAZAAR_FILE_TYPE"),
        (files.svg_with_script(), "logo.png", 400, "BAZAAR_FILE_TYPE"),
        (files.exe_like(), "invoice.pdf", 400, "BAZAAR_FILE_TYPE"),
        (files.zip_not_office(), "report.docx", 400, "BAZAAR_FILE_TYPE"),
        (files.truncated_jpeg(), "photo.jpg", 400, "BAZAAR_BROKEN_IMAGE"),
    ]
    try:
        listed = await anna.ok("GET", "/conversations")
        assert listed["max_upload_bytes"] == 1024 * 1024
        for index, (data, name, status, errcode) in enumerate(cases):
            answer_status, error = await anna.upload(conversation_id, data, name, f"bad-{index}")
            assert (answer_status, error.get("errcode")) == (status, errcode), name
            assert error["error"], name
        await interrupted_upload(runner.config.web.public_url, anna.token, conversation_id)
        crowded = aiohttp.FormData()
        for n in range(20):
            crowded.add_field(f"field{n}", "x")
        crowded.add_field("file", io.BytesIO(files.pdf()), filename="a.pdf")
        async with anna.session.post(
            f"{anna.base}/conversations/{conversation_id}/messages",
            data=crowded,
            headers={"Authorization": f"Bearer {anna.token}"},
        ) as response:
            assert response.status == 400
            assert (await response.json())["errcode"] == "M_INVALID_PARAM"

        assert await anna.ok("GET", f"/conversations/{conversation_id}/messages") == {
            "messages": []
        }
        assert stored_files(media) == []

        # The same buyer's good file still goes through afterwards.
        status, message = await anna.upload(conversation_id, files.pdf(), "spec.pdf", "good")
        assert status == 201, message
        assert message["attachments"][0]["content_type"] == "application/pdf"
        assert len(stored_files(media)) == 1
    finally:
        await anna.close()


def stored_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


async def interrupted_upload(public_url: str, token: str, conversation_id: str) -> None:
    """A browser that goes away halfway through sending a file."""
    address = urlsplit(public_url)
    boundary = "bazaar-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="client_id"\r\n\r\ncut\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n%PDF-1.4\n"
    ).encode()
    request = (
        f"POST /widget/v1/conversations/{conversation_id}/messages HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) + 500_000}\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.setblocking(False)
        await loop.sock_sendall(sock, request + head + b"0" * 100_000)
    # Give the bridge a moment to notice the closed connection and drop what it read.
    await asyncio.sleep(0.5)
