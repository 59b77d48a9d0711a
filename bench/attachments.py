"""Attachments benchmark: a buyer's 10 MB photo through the bridge versus straight into Synapse.

One embedded Synapse (temp dir, free loopback port, the bridge's appservice registration)
and one in-process `Bridge` serve the whole run. A seller with one member, one buyer (a
widget token) and one conversation, started through the widget API as the widget does.
The files are real bytes built in memory: a ~10 MB JPEG (a 4:3 picture of gradients under
heavy sensor-like noise, quality 95, no chroma subsampling, so it stays big) and, unless
`--no-pdf`, a 10 MB PDF (`%PDF-1.4` and padding), which the bridge passes on as it is, to
tell the image's checking and cleaning from the transfer. Every round gets a new variant of each
(a different patch of pixels, different padding), so no store can answer from a copy.

* direct: `POST /_matrix/media/v3/upload?user_id=<the buyer's ghost>` with the appservice
  token, the file as the body; timed until Synapse answers with the mxc:// URI.
* bridge: `POST /widget/v1/conversations/{id}/messages`, multipart/form-data with
  `client_id` and `file`, as the widget sends it; timed until the buyer's stream says the
  message is `sent` (a `message.updated` frame with that status): the courier has put the
  cleaned file and its thumbnail in Synapse's media repository and sent the `m.image`.
  The POST's own answer (the bridge has read, checked, cleaned and kept the file) is timed
  on the way, and a wrapper around this bridge's `gateway.upload` times the courier's uploads.

Paths alternate within a round (direct first in odd rounds, bridge first in even ones),
after an unmeasured warm-up of each. It prints figures, judges nothing. MB are 2^20 bytes.

    python bench/attachments.py [--megabytes 10] [--rounds 5] [--no-pdf]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import math
import random
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image, ImageChops
from stage import (
    HTTP_TIMEOUT,
    SELLER_ID,
    SITE,
    BenchError,
    Homeserver,
    Marketplace,
    StreamWatcher,
    bridge_settings,
    cpu_seconds,
    database_error,
    describe_database,
    embedded_synapse,
    progress,
    quiet_logging,
    resolve_database,
    run_bench,
    synapse_pid,
)

from bridge.app import Bridge, Tuning
from bridge.config import Config, parse_config
from bridge.core.ids import BuyerID, SiteID
from bridge.core.limits import Rate
from bridge.core.models import Buyer
from bridge.demo.synapse import EmbeddedSynapse, free_port
from bridge.media.cleaning import DEFAULT_IMAGE_LIMITS
from bridge.media.uploads import prepare_upload
from bridge.widget.tokens import issue_buyer_token

logger = logging.getLogger("bench.attachments")

MB = 1024 * 1024
BUYER_ID = "photo-buyer"
TOKEN_TTL = 3600
# The picture: noise of this strength over smooth gradients compresses to about one byte a
# pixel at quality 95 with 4:4:4 chroma, as a phone's photo of a dim room does.
NOISE_SIGMA = 10
PHOTO_QUALITY = 95
PROBE_SIDE = 800
ASPECT = 4 / 3
# One buyer sends every file; the default limits (20 at once, then one a second) would
# throttle the rounds, and throttling is not what is measured.
UNTHROTTLED = {
    kind: Rate(burst=10_000, per_second=1000.0)
    for kind in ("message", "conversation", "typing", "read")
}
CLEAN_ALONE_RUNS = 3
SETTLE_TIMEOUT = 30.0
SETTLE_POLL = 0.05


@dataclass(frozen=True)
class Options:
    megabytes: float
    rounds: int
    pdf: bool
    database: str
    timeout: float


@dataclass(frozen=True)
class Sample:
    """One kind of file, with a variant per attempt (warm-up first)."""

    label: str
    filename: str
    content_type: str
    variants: tuple[bytes, ...] = field(repr=False)
    dimensions: tuple[int, int] | None = None

    @property
    def size(self) -> int:
        return len(self.variants[0])


# --- the files --------------------------------------------------------------------------


def _noisy_picture(width: int, height: int) -> Image.Image:
    """Three gradients, one per channel, under gaussian noise."""
    gradients = (
        Image.linear_gradient("L"),
        Image.linear_gradient("L").rotate(90),
        Image.radial_gradient("L"),
    )
    bands = [
        ImageChops.add(
            gradient.resize((width, height)),
            Image.effect_noise((width, height), NOISE_SIGMA),
            1.0,
            -128,
        )
        for gradient in gradients
    ]
    return Image.merge("RGB", bands)


def _jpeg(picture: Image.Image) -> bytes:
    output = io.BytesIO()
    picture.save(output, "JPEG", quality=PHOTO_QUALITY, subsampling=0)
    return output.getvalue()


def build_photo(target_bytes: int, count: int) -> Sample:
    """JPEGs of about `target_bytes`: a small probe gives the bytes per pixel, which sizes
    the real picture; each variant has its own patch of colour in the top-left corner."""
    probe = _jpeg(_noisy_picture(PROBE_SIDE, round(PROBE_SIDE / ASPECT)))
    per_pixel = len(probe) / (PROBE_SIDE * round(PROBE_SIDE / ASPECT))
    pixels = target_bytes / per_pixel
    if pixels > DEFAULT_IMAGE_LIMITS.max_pixels * 0.98:
        raise BenchError(
            f"a {target_bytes / MB:g} MB picture needs about {pixels / 1e6:.0f} megapixels;"
            f" the bridge refuses more than {DEFAULT_IMAGE_LIMITS.max_pixels / 1e6:g}"
        )
    height = round(math.sqrt(pixels / ASPECT))
    width = round(height * ASPECT)
    picture = _noisy_picture(width, height)
    variants = []
    for index in range(count):
        marked = picture.copy()
        colour = ((37 * index) % 256, (91 * index) % 256, (53 * index + 128) % 256)
        marked.paste(colour, (0, 0, 64, 64))
        variants.append(_jpeg(marked))
    return Sample("JPEG", "photo.jpg", "image/jpeg", tuple(variants), (width, height))


def build_document(target_bytes: int, count: int) -> Sample:
    """`%PDF-1.4` and random padding: the bridge's sniffing calls it a PDF and keeps it as is."""
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    tail = b"\n%%EOF\n"
    variants = tuple(
        head + random.Random(index).randbytes(target_bytes - len(head) - len(tail)) + tail
        for index in range(count)
    )
    return Sample("PDF", "manual.pdf", "application/pdf", variants)


# --- watching the bridge ------------------------------------------------------------------


class SentWatcher(StreamWatcher):
    """The buyer's stream: notes when each message's status first becomes `sent`."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        super().__init__(socket)
        self.messages: dict[str, dict[str, Any]] = {}

    def on_frame(self, frame: dict[str, Any], arrived: float) -> bool:
        message = frame.get("message")
        if not isinstance(message, dict):
            return False
        message_id = str(message.get("message_id"))
        status = message.get("status")
        if status == "failed":
            raise BenchError(f"the bridge marked message {message_id} failed")
        if status in ("sent", "read") and message_id not in self.arrivals:
            self.arrivals[message_id] = arrived
            self.messages[message_id] = message
            return True
        return False


@dataclass(frozen=True)
class Upload:
    """One upload the bridge's courier made to Synapse's media repository."""

    size: int
    content_type: str
    started: float
    finished: float


class UploadLog:
    """Times every `upload` of one bridge's gateway (installed on that instance only)."""

    def __init__(self, bridge: Bridge) -> None:
        self.uploads: list[Upload] = []
        original = bridge.gateway.upload

        async def timed(
            data: bytes, content_type: str, filename: str, *, as_user: Any = None
        ) -> str:
            started = time.perf_counter()
            answer = await original(data, content_type, filename, as_user=as_user)
            self.uploads.append(Upload(len(data), content_type, started, time.perf_counter()))
            return answer

        bridge.gateway.upload = timed  # type: ignore[method-assign]

    def take(self) -> list[Upload]:
        taken, self.uploads = self.uploads, []
        return taken


async def settle(bridge: Bridge) -> None:
    """Until the courier and the appservice queue have nothing left (the m.image's echo
    included), so one attempt's tail does not run into the next one's clock."""
    async with asyncio.timeout(SETTLE_TIMEOUT):
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SETTLE_POLL):
                    await bridge.transactions.wait_idle()
                if not bridge.courier.busy:
                    break
            await asyncio.sleep(SETTLE_POLL)
    await asyncio.sleep(4 * SETTLE_POLL)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds one attempt cost: this process (the bridge, its worker threads and the
    benchmark's clients) and Synapse."""

    here: float
    synapse: float | None


class CpuMeter:
    def __init__(self, synapse: int | None) -> None:
        self._synapse_pid = synapse
        self._here = time.process_time()
        self._synapse = cpu_seconds(synapse)

    def read(self) -> Cpu:
        after = cpu_seconds(self._synapse_pid)
        used = None if after is None or self._synapse is None else after - self._synapse
        return Cpu(time.process_time() - self._here, used)


# --- the two paths --------------------------------------------------------------------------


@dataclass(frozen=True)
class Direct:
    seconds: float
    cpu: Cpu


@dataclass(frozen=True)
class Relayed:
    answered: float
    """POST → the bridge's answer: read, checked, cleaned, kept and stored."""
    sent: float
    """POST → the buyer's stream says `sent`."""
    uploads: tuple[Upload, ...]
    started: float
    sent_at: float
    cpu: Cpu
    """Until the bridge had digested the event's echo too."""

    @property
    def picked_up(self) -> float:
        """The answer → the courier's first upload starts."""
        return self.uploads[0].started - self.started - self.answered

    @property
    def after_uploads(self) -> float:
        """The last upload answered → the stream says `sent` (send the event, record)."""
        return self.sent_at - self.uploads[-1].finished


@dataclass
class Stage:
    options: Options
    bridge: Bridge
    session: aiohttp.ClientSession
    synapse_address: str
    as_token: str
    ghost: str
    public_url: str
    buyer_token: str
    conversation_id: str
    watcher: SentWatcher
    upload_log: UploadLog
    synapse_pid: int | None


async def direct(stage: Stage, sample: Sample, data: bytes) -> Direct:
    cpu = CpuMeter(stage.synapse_pid)
    started = time.perf_counter()
    async with stage.session.post(
        f"{stage.synapse_address}/_matrix/media/v3/upload",
        params={"filename": sample.filename, "user_id": stage.ghost},
        data=data,
        headers={
            "Authorization": f"Bearer {stage.as_token}",
            "Content-Type": sample.content_type,
        },
    ) as response:
        text = await response.text()
    seconds = time.perf_counter() - started
    if response.status != 200 or "content_uri" not in text:
        raise BenchError(f"direct upload: HTTP {response.status} {text[:300]}")
    return Direct(seconds, cpu.read())


async def relayed(stage: Stage, sample: Sample, data: bytes) -> Relayed:
    form = aiohttp.FormData()
    form.add_field("client_id", f"upload-{uuid.uuid4().hex}")
    form.add_field(
        "file", io.BytesIO(data), filename=sample.filename, content_type=sample.content_type
    )
    stage.upload_log.take()
    cpu = CpuMeter(stage.synapse_pid)
    started = time.perf_counter()
    async with stage.session.post(
        f"{stage.public_url}/widget/v1/conversations/{stage.conversation_id}/messages",
        data=form,
        headers={"Authorization": f"Bearer {stage.buyer_token}"},
    ) as response:
        text = await response.text()
    answered = time.perf_counter() - started
    if response.status != 201:
        raise BenchError(f"the widget's upload: HTTP {response.status} {text[:300]}")
    message_id = str(json.loads(text)["message_id"])
    sent_at = await stage.watcher.wait_for([message_id], stage.options.timeout)
    uploads = tuple(stage.upload_log.take())
    if not uploads:
        raise BenchError(f"message {message_id} was sent without an upload")
    await settle(stage.bridge)
    return Relayed(answered, sent_at - started, uploads, started, sent_at, cpu.read())


PATHS: dict[str, Callable[[Stage, Sample, bytes], Awaitable[Direct | Relayed]]] = {
    "direct": direct,
    "bridge": relayed,
}


@dataclass
class Results:
    sample: Sample
    direct: list[Direct] = field(default_factory=list)
    bridge: list[Relayed] = field(default_factory=list)


async def measure(stage: Stage, samples: Sequence[Sample]) -> list[Results]:
    results = [Results(sample) for sample in samples]
    progress("Warming up: one file of each kind on each path")
    for sample in samples:
        for path in PATHS.values():
            await path(stage, sample, sample.variants[0])
    for round_number in range(1, stage.options.rounds + 1):
        order = ("direct", "bridge") if round_number % 2 else ("bridge", "direct")
        for result in results:
            progress(f"Round {round_number}/{stage.options.rounds}: {result.sample.label}")
            data = result.sample.variants[round_number]
            for path in order:
                outcome = await PATHS[path](stage, result.sample, data)
                if isinstance(outcome, Relayed):
                    result.bridge.append(outcome)
                else:
                    result.direct.append(outcome)
    return results


async def clean_alone(photo: Sample, max_bytes: int) -> list[float]:
    """The bridge's check and clean by itself: `prepare_upload` in a worker thread, as the
    bridge runs it, without HTTP, storage or database."""
    seconds = []
    for data in photo.variants[1 : CLEAN_ALONE_RUNS + 1]:
        started = time.perf_counter()
        await asyncio.to_thread(prepare_upload, data, photo.filename, max_bytes=max_bytes)
        seconds.append(time.perf_counter() - started)
    return seconds


# --- set-up -----------------------------------------------------------------------------------


def bridge_config(synapse_port: int, database: str, workdir: Path, largest: int) -> Config:
    settings = bridge_settings(synapse_port, database, workdir)
    settings["media"]["max_upload_mb"] = max(20, math.ceil(largest * 1.1 / MB))
    return parse_config(settings, environ={})


async def run(options: Options) -> None:
    target = round(options.megabytes * MB)
    count = options.rounds + 1
    progress(f"Building {count} JPEGs of about {options.megabytes:g} MB")
    samples = [build_photo(target, count)]
    if options.pdf:
        samples.append(build_document(target, count))
    with tempfile.TemporaryDirectory(prefix="bazaar-bench-attachments-") as temp:
        workdir = Path(temp)
        database = resolve_database(options.database, workdir)
        synapse_port = free_port()
        largest = max(len(v) for sample in samples for v in sample.variants)
        config = bridge_config(synapse_port, database, workdir, largest)
        synapse = embedded_synapse(workdir, synapse_port, config)
        progress("Starting Synapse and the bridge")
        async with synapse:
            bridge = Bridge(config, Tuning(buyer_rates=UNTHROTTLED))
            await bridge.start()
            try:
                results, cleaning, version = await bench(options, synapse, bridge, samples)
            finally:
                await bridge.stop()
    report(options, version, describe_database(database), results, cleaning)


async def bench(
    options: Options, synapse: EmbeddedSynapse, bridge: Bridge, samples: Sequence[Sample]
) -> tuple[list[Results], list[float], str]:
    config = bridge.config
    site = config.sites[0]
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=options.timeout)) as session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as setup_session,
    ):
        marketplace = Marketplace(setup_session, config.web.public_url, site.api_token)
        version = await Homeserver(setup_session, synapse.address).version()

        progress("Setting up a seller, a buyer and their conversation")
        owner = await synapse.register_user(
            f"owner-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16), displayname="Owner"
        )
        await marketplace.call(
            "PUT",
            f"/sellers/{SELLER_ID}",
            {"name": "Bench Seller", "members": [{"user_id": owner, "role": "owner"}]},
        )
        token, _ = issue_buyer_token(
            site.widget_secret, Buyer(SiteID(SITE), BuyerID(BUYER_ID), "Anna", "en"), TOKEN_TTL
        )
        async with setup_session.post(
            f"{config.web.public_url}/widget/v1/conversations",
            json={
                "seller_id": SELLER_ID,
                "context": {"type": "product", "id": "camera-1", "title": "Mirrorless camera"},
            },
            headers={"Authorization": f"Bearer {token}"},
        ) as response:
            if response.status not in (200, 201):
                raise BenchError(f"POST /widget/v1/conversations: HTTP {response.status}")
            conversation_id = str((await response.json())["conversation_id"])

        socket = await setup_session.ws_connect(
            f"{config.web.public_url}/widget/v1/stream?access_token={token}", heartbeat=None
        )
        watcher = SentWatcher(socket)
        watcher.start()
        stage = Stage(
            options,
            bridge,
            session,
            synapse.address,
            config.appservice.as_token,
            bridge.names.ghost(SiteID(SITE), BuyerID(BUYER_ID)),
            config.web.public_url,
            token,
            conversation_id,
            watcher,
            UploadLog(bridge),
            synapse_pid(),
        )
        try:
            results = await measure(stage, samples)
        finally:
            await watcher.stop()
    progress("The clean alone: prepare_upload in a thread, no HTTP")
    cleaning = await clean_alone(samples[0], config.media.max_upload_bytes)
    return results, cleaning, version


# --- the report -------------------------------------------------------------------------------


def _mb(size: float) -> str:
    return f"{size / MB:.1f} MB" if size >= MB / 10 else f"{size / 1024:.0f} KB"


def _ms(seconds: float | None, width: int = 8) -> str:
    return f"{'n/a':>{width}}" if seconds is None else f"{seconds * 1000:>{width}.0f}"


def _median_cpu(cpus: Sequence[Cpu]) -> tuple[float, float | None]:
    synapse = [c.synapse for c in cpus if c.synapse is not None]
    return (
        statistics.median(c.here for c in cpus),
        statistics.median(synapse) if synapse else None,
    )


def _row(label: str, seconds: Sequence[float], size: int, cpus: Sequence[Cpu] = ()) -> str:
    median = statistics.median(seconds)
    line = (
        f"  {label:<44} {_ms(median)} {_ms(min(seconds), 7)} {_ms(max(seconds), 7)}"
        f" {size / MB / median:>7.1f}"
    )
    if cpus:
        here, synapse = _median_cpu(cpus)
        line += f" {_ms(here, 10)} {_ms(synapse)}"
    return line


def report(
    options: Options,
    version: str,
    database: str,
    results: Sequence[Results],
    cleaning: Sequence[float],
) -> None:
    print()
    print("Bazaar Bridge attachments benchmark")
    print(f"  homeserver    {version} (embedded, loopback)")
    print(f"  database      {database}")
    print(
        f"  order         {options.rounds} rounds × (direct, bridge) per file, one upload at a"
        " time, after a warm-up"
    )
    for result in results:
        _report_sample(result, cleaning)
    _summary(results)


def _summary(results: Sequence[Results]) -> None:
    print()
    print("Summary")
    for result in results:
        direct_s = statistics.median(d.seconds for d in result.direct)
        sent_s = statistics.median(r.sent for r in result.bridge)
        answered_s = statistics.median(r.answered for r in result.bridge)
        size = result.sample.size / MB
        print(
            f"  {result.sample.label:<5} through the bridge {size / sent_s:.1f} MB/s, direct"
            f" {size / direct_s:.1f} MB/s: {direct_s / sent_s:.2f}× direct. The bridge answers"
            f" the POST after {answered_s * 1000:.0f} ms, the stream says sent after"
            f" {sent_s * 1000:.0f} ms."
        )
    by_label = {
        result.sample.label: _median_cpu([d.cpu for d in result.direct])[1] for result in results
    }
    photo, document = by_label.get("JPEG"), by_label.get("PDF")
    if photo is not None and document is not None:
        print(
            f"  Synapse's CPU per direct upload: {photo * 1000:.0f} ms for the JPEG,"
            f" {document * 1000:.0f} ms for the PDF of the same size. It makes thumbnails of"
            " every image while it stores it, so each image upload, the bridge's too, waits"
            " for that."
        )


def _report_sample(result: Results, cleaning: Sequence[float]) -> None:
    sample, bridge = result.sample, result.bridge
    cleaned = statistics.median(r.uploads[0].size for r in bridge)
    thumbnails = [r.uploads[1].size for r in bridge if len(r.uploads) > 1]
    print()
    what = f"{sample.filename}: {_mb(sample.size)} {sample.label}"
    if sample.dimensions is not None:
        width, height = sample.dimensions
        what += f", {width} × {height} ({width * height / 1e6:.1f} MP)"
    if thumbnails:
        what += (
            f"; the bridge puts {_mb(cleaned)} (its metadata removed) and a"
            f" {_mb(statistics.median(thumbnails))} thumbnail in Synapse"
        )
    else:
        what += f"; the bridge puts {_mb(cleaned)} (the bytes as sent) in Synapse"
    print(what)
    print(
        f"  {'ms':<44} {'median':>8} {'min':>7} {'max':>7} {'MB/s':>7}"
        f" {'CPU: here':>10} {'Synapse':>8}"
    )
    direct_s = [d.seconds for d in result.direct]
    sent_s = [r.sent for r in bridge]
    answered_s = [r.answered for r in bridge]
    print(
        _row(
            "direct: POST /_matrix/media/v3/upload",
            direct_s,
            sample.size,
            [d.cpu for d in result.direct],
        )
    )
    print(_row("bridge: POST answered (check, clean)", answered_s, sample.size))
    print(_row("bridge: until the stream says sent", sent_s, sample.size, [r.cpu for r in bridge]))
    ratio = statistics.median(direct_s) / statistics.median(sent_s)
    print(f"  {'ratio bridge / direct throughput (medians)':<44} {ratio:>8.2f}")
    print("  the bridge's time, medians in ms")
    parts = [
        ("POST: receive, check, clean, keep, store", answered_s),
        ("courier picks it up", [r.picked_up for r in bridge]),
        (
            f"courier uploads {_mb(cleaned)} to Synapse",
            [r.uploads[0].finished - r.uploads[0].started for r in bridge],
        ),
    ]
    if thumbnails:
        parts.append(
            (
                "courier uploads the thumbnail",
                [r.uploads[1].finished - r.uploads[1].started for r in bridge],
            )
        )
    parts.append(("event sent, status recorded, stream frame", [r.after_uploads for r in bridge]))
    for label, values in parts:
        print(f"    {label:<42} {_ms(statistics.median(values))}")
    if sample.dimensions is not None and cleaning:
        print(
            f"    {'(the clean alone, in a thread, no HTTP)':<42}"
            f" {_ms(statistics.median(cleaning))}"
        )


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="A buyer's 10 MB photo through the bridge against uploading it to Synapse."
    )
    parser.add_argument(
        "--megabytes", "-m", type=float, default=10, help="size of each file in MB (default 10)"
    )
    parser.add_argument(
        "--rounds", "-n", type=int, default=5, help="(direct, bridge) pairs per file (default 5)"
    )
    parser.add_argument(
        "--pdf",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also send a PDF of the same size, passed on as it is (default: yes)",
    )
    parser.add_argument(
        "--database",
        default="sqlite",
        help="'sqlite' (a file in the temp dir, the default) or a postgresql+asyncpg:// URL",
    )
    parser.add_argument(
        "--timeout", type=float, default=120, help="seconds one upload may take (default 120)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    if args.rounds < 1 or not 0.1 <= args.megabytes <= 30:
        parser.error("--rounds must be at least 1 and --megabytes between 0.1 and 30")
    problem = database_error(args.database)
    if problem is not None:
        parser.error(problem)
    options = Options(args.megabytes, args.rounds, args.pdf, args.database, args.timeout)
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    return run_bench("attachments", run(options))


if __name__ == "__main__":
    sys.exit(main())
