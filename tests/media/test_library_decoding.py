"""The media library decodes images within the configured shapes, and only a few at a time:
a burst of big uploads (or product images) can't take all the memory, or every worker."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bridge.config import MediaConfig
from bridge.errors import BadRequest
from bridge.media import library
from bridge.media.library import MediaLibrary
from tests.support import files
from tests.support.waiting import eventually

# Long enough for a decode that was let through to have started in its thread.
SETTLE = 0.3


@dataclass
class Gate:
    """Holds every decode in its worker thread until opened, counting those inside."""

    opened: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    entered: list[str] = field(default_factory=list)
    inside: int = 0
    most_inside: int = 0

    def hold(self, kind: str, work: Callable[..., Any]) -> Callable[..., Any]:
        def held(*args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.entered.append(kind)
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
            try:
                assert self.opened.wait(timeout=30), "the gate was never opened"
                return work(*args, **kwargs)
            finally:
                with self.lock:
                    self.inside -= 1

        return held

    async def entered_count(self, count: int) -> None:
        async def reached() -> bool:
            return len(self.entered) >= count

        await eventually(reached, within=10, what=f"{count} decodes started")


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    held = Gate()
    monkeypatch.setattr(library, "prepare_upload", held.hold("upload", library.prepare_upload))
    monkeypatch.setattr(library, "check_image", held.hold("product", library.check_image))
    yield held
    held.opened.set()  # a failed test leaves no thread waiting


def media(tmp_path: Path, **settings: Any) -> MediaLibrary:
    return MediaLibrary(MediaConfig(directory=tmp_path / "media", **settings))


async def test_no_more_images_are_decoded_at_once_than_configured(
    tmp_path: Path, gate: Gate
) -> None:
    photos = media(tmp_path, decodes_at_once=2)
    uploads = [
        asyncio.create_task(photos.accept_upload(files.png(200 + n, 100), f"{n}.png"))
        for n in range(6)
    ]

    await gate.entered_count(2)
    await asyncio.sleep(SETTLE)
    assert len(gate.entered) == 2
    gate.opened.set()
    accepted = await asyncio.gather(*uploads)

    assert sorted(attachment.width for attachment in accepted) == list(range(200, 206))
    assert gate.most_inside == 2


async def test_a_product_image_waits_for_the_same_places_as_uploads(
    tmp_path: Path, gate: Gate
) -> None:
    photos = media(tmp_path, decodes_at_once=1)
    upload = asyncio.create_task(photos.accept_upload(files.png(), "a.png"))
    await gate.entered_count(1)
    product = asyncio.create_task(photos.check_image(files.png(640, 480)))

    await asyncio.sleep(SETTLE)
    assert gate.entered == ["upload"] and not product.done()
    gate.opened.set()

    assert (await product).width == 640
    assert (await upload).width == 64
    assert gate.most_inside == 1


async def test_a_caller_that_stops_waiting_keeps_its_place_until_the_decode_ends(
    tmp_path: Path, gate: Gate
) -> None:
    photos = media(tmp_path, decodes_at_once=1)
    abandoned = asyncio.create_task(photos.accept_upload(files.png(), "a.png"))
    await gate.entered_count(1)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    # The first decode still runs in its thread: the next one waits for it.
    upload = asyncio.create_task(photos.accept_upload(files.png(80, 60), "b.png"))

    await asyncio.sleep(SETTLE)
    assert gate.entered == ["upload"]
    gate.opened.set()

    assert (await upload).width == 80
    assert gate.most_inside == 1


async def test_the_configured_shapes_are_the_ones_refused(tmp_path: Path) -> None:
    photos = media(tmp_path, max_image_side=300, max_image_pixels=60_000, max_aspect_ratio=2)

    assert (await photos.accept_upload(files.png(300, 200), "a.png")).width == 300
    for data, words in [
        (files.png(301, 200), "300 pixels"),
        (files.png(250, 250), "0.06 million"),
        (files.png(250, 100), "2 times"),
    ]:
        with pytest.raises(BadRequest) as refused:
            await photos.accept_upload(data, "a.png")
        assert (refused.value.status, refused.value.errcode) == (400, "BAZAAR_BROKEN_IMAGE")
        assert words in refused.value.error
        with pytest.raises(BadRequest) as refused:
            await photos.check_image(data)
        assert words in refused.value.error


async def test_a_pixel_limit_above_pillows_own_is_honoured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow warns from 89.5 megapixels on (an error under pytest) and refuses from 179. Its
    # guard is process-wide: put back as it was after this test.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    photos = media(tmp_path, max_image_pixels=120_000_000)
    big = files.long_png(10_000, 9_500)

    checked = await photos.check_image(big)

    assert (checked.width, checked.height) == (10_000, 9_500)
    with pytest.raises(BadRequest) as refused:
        await media(tmp_path).check_image(big)
    assert "50 million" in refused.value.error
