"""Translation benchmark: what a cached translation adds to a buyer message's way to the seller.

One embedded Synapse (temp dir, free loopback port) carries two appservice registrations
and two in-process bridges at once, alike but for `translation`:

* **with**: `provider: libre` against `tests/support/libretranslate.py`'s FakeLibreTranslate
  (a loopback server speaking LibreTranslate's HTTP API; deep-translator reaches it from the
  bridge's worker thread), `timeout_seconds: 5`;
* **without**: `provider: none`, with its own appservice id, bot and ghost prefix.

Each has the same seller (language `en`, one member: a local Matrix user) and a buyer whose
token says `lang: ru`, with one conversation started through the widget API. The seller's
member joins both rooms and runs one /sync loop. The Russian template is sent once on each
bridge (the first fills the translation cache), then a few more as warm-up.

Then M messages per bridge, one at a time, in interleaved rounds (with first in odd rounds,
without first in even ones). Each is timed from just before the buyer's
`POST /widget/v1/conversations/{id}/messages` until the seller's /sync returns the
`m.room.message` carrying its `io.bazaar.message_id` (the homeserver decides, not the
bridge). The fake's `/translate` calls and the bridge's cache counters are read around the
measured phase: a cached run makes no call. It prints figures, judges nothing.

    python bench/translation.py [--messages 60] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from stage import (
    DOMAIN,
    HTTP_TIMEOUT,
    SELLER_ID,
    SITE,
    BenchError,
    Homeserver,
    Marketplace,
    SyncDetector,
    bazaar_message_id,
    bridge_settings,
    join_all,
    percentile,
    progress,
    quiet_logging,
    resolve_database,
    run_bench,
)

from bridge.app import Bridge, Tuning
from bridge.config import Config, TranslationConfig, parse_config
from bridge.core.ids import BuyerID, SiteID
from bridge.core.limits import Rate
from bridge.core.models import Buyer
from bridge.demo.synapse import EmbeddedSynapse, SynapseSettings, free_port
from bridge.matrix.registration import registration
from bridge.widget.tokens import issue_buyer_token

logger = logging.getLogger("bench.translation")

REPO = Path(__file__).resolve().parent.parent
# From the fake's phrasebook, so the seller reads a real English sentence.
TEMPLATE = "Здравствуйте, этот товар есть в наличии?"
BUYER_ID = "ru-buyer"
TOKEN_TTL = 3600
PATHS = ("with", "without")
# One buyer sends every message; the default limits (20 at once, then one a second) would
# throttle the rounds, and throttling is not what is measured.
UNTHROTTLED = {
    kind: Rate(burst=10_000, per_second=1000.0)
    for kind in ("message", "conversation", "typing", "read")
}
TRANSLATION_KEY = "io.bazaar.translation"


def fake_libretranslate() -> Any:
    """The tests' LibreTranslate stand-in, which lives with the tests, not the package."""
    if str(REPO) not in sys.path:
        sys.path.append(str(REPO))
    from tests.support.libretranslate import FakeLibreTranslate

    return FakeLibreTranslate()


@dataclass(frozen=True)
class Options:
    messages: int
    rounds: int
    warmup: int
    gap: float
    timeout: float


@dataclass
class Lane:
    """One bridge and the buyer's conversation on it."""

    name: str
    bridge: Bridge
    token: str
    conversation_id: str = ""
    room_id: str = ""


@dataclass
class Timing:
    answered_ms: list[float] = dataclasses.field(default_factory=list)
    seen_ms: list[float] = dataclasses.field(default_factory=list)
    message_ids: list[str] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class Counts:
    """The fake's /translate calls and the translating bridge's own counters."""

    libre_calls: int
    provider_calls: int
    cache_hits: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.libre_calls - other.libre_calls,
            self.provider_calls - other.provider_calls,
            self.cache_hits - other.cache_hits,
        )


class StepTimes:
    """Times two public steps of the translating bridge's courier, on that instance only:
    `translations.render` (the cache lookup) and `repository.set_rendering` (the
    translation stored with the message, and the buyer's stream frame for it)."""

    STEPS = ("render", "set_rendering")

    def __init__(self, bridge: Bridge) -> None:
        self.ms: dict[str, list[float]] = {step: [] for step in self.STEPS}
        self._wrap(bridge.translations, "render")
        self._wrap(bridge.repository, "set_rendering")

    def _wrap(self, owner: Any, name: str) -> None:
        original = getattr(owner, name)
        times = self.ms[name]

        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                times.append((time.perf_counter() - started) * 1000)

        setattr(owner, name, timed)

    def reset(self) -> None:
        for times in self.ms.values():
            times.clear()


@dataclass(frozen=True)
class Outcome:
    version: str
    timings: dict[str, Timing]
    warmup_calls: int
    spent: Counts
    translated: dict[str, int]
    """Measured messages per bridge that reached the seller with a translation."""
    steps: dict[str, list[float]]


# --- set-up -----------------------------------------------------------------------------------


def _settings(synapse_port: int, database: str, workdir: Path, name: str) -> dict[str, Any]:
    settings = bridge_settings(synapse_port, database, workdir / name)
    return settings


def configs(synapse_port: int, workdir: Path, libre_url: str) -> dict[str, Config]:
    """The two bridges' configs: everything their own, on the same homeserver."""
    with_settings = _settings(
        synapse_port, resolve_database("sqlite", workdir / "with"), workdir, "with"
    )
    without_settings = _settings(
        synapse_port, resolve_database("sqlite", workdir / "without"), workdir, "without"
    )
    # A second appservice needs its own id, bot and user namespace.
    without_settings["appservice"] |= {
        "id": "bazaar-plain",
        "bot_username": "plainbot",
        "ghost_prefix": "plain_",
    }
    with_config = parse_config(with_settings, environ={})
    with_config = dataclasses.replace(
        with_config,
        translation=TranslationConfig(provider="libre", url=libre_url, timeout_seconds=5),
    )
    without_config = parse_config(without_settings, environ={})
    without_config = dataclasses.replace(without_config, translation=TranslationConfig("none"))
    return {"with": with_config, "without": without_config}


def synapse_for(workdir: Path, port: int, bridges: Sequence[Config]) -> EmbeddedSynapse:
    paths = []
    for config in bridges:
        path = workdir / f"registration-{config.appservice.id}.yaml"
        path.write_text(yaml.safe_dump(registration(config)), encoding="utf-8")
        paths.append(path)
    return EmbeddedSynapse(
        SynapseSettings(
            workdir=workdir / "synapse",
            server_name=DOMAIN,
            port=port,
            appservice_registrations=tuple(paths),
        )
    )


async def run(options: Options) -> None:
    libre = fake_libretranslate()
    await libre.start()
    try:
        with tempfile.TemporaryDirectory(prefix="bazaar-bench-translation-") as temp:
            workdir = Path(temp)
            for name in PATHS:
                (workdir / name).mkdir()
            synapse_port = free_port()
            bridge_configs = configs(synapse_port, workdir, libre.url)
            synapse = synapse_for(workdir, synapse_port, list(bridge_configs.values()))
            progress("Starting Synapse, the fake LibreTranslate and both bridges")
            async with synapse:
                bridges = {
                    name: Bridge(c, Tuning(buyer_rates=UNTHROTTLED))
                    for name, c in bridge_configs.items()
                }
                started: list[Bridge] = []
                try:
                    for bridge in bridges.values():
                        await bridge.start()
                        started.append(bridge)
                    outcome = await bench(options, synapse, bridges, libre)
                finally:
                    for bridge in started:
                        await bridge.stop()
    finally:
        await libre.close()
    report(options, outcome)


async def bench(
    options: Options,
    synapse: EmbeddedSynapse,
    bridges: dict[str, Bridge],
    libre: Any,
) -> Outcome:
    async with (
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
        aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as sync_session,
    ):
        homeserver = Homeserver(session, synapse.address)
        version = await homeserver.version()
        progress("Setting up the seller (en), the buyer (ru) and a conversation on each bridge")
        password = secrets.token_urlsafe(16)
        owner = await synapse.register_user(
            f"seller-{uuid.uuid4().hex[:8]}", password, displayname="Bench Seller"
        )
        seller_token = await homeserver.login(owner, password)
        paths = {
            name: await open_path(session, name, bridge, owner) for name, bridge in bridges.items()
        }
        await join_all(homeserver, seller_token, [p.room_id for p in paths.values()])

        translated: set[str] = set()

        def tag(event: dict[str, Any]) -> str | None:
            message_id = bazaar_message_id(event)
            if message_id is not None and isinstance(event["content"].get(TRANSLATION_KEY), dict):
                translated.add(message_id)
            return message_id

        detector = SyncDetector(Homeserver(sync_session, synapse.address), seller_token, tag)
        steps = StepTimes(bridges["with"])
        detector.start()
        try:
            start = counts(bridges["with"], libre)
            progress(f"Warming up: the template once on each bridge, then {options.warmup} more")
            for _ in range(1 + options.warmup):
                for path in paths.values():
                    await send(session, path, detector, options, Timing())
            if not any(m in translated for m in detector.arrivals):
                raise BenchError("the translating bridge's warm-up arrived untranslated")

            before = counts(bridges["with"], libre)
            steps.reset()
            timings = {name: Timing() for name in PATHS}
            per_round = _split(options.messages, options.rounds)
            for round_number, count in enumerate(per_round, start=1):
                order = PATHS if round_number % 2 else PATHS[::-1]
                progress(f"Round {round_number}/{options.rounds}: {count} messages per bridge")
                for name in order:
                    for _ in range(count):
                        await send(session, paths[name], detector, options, timings[name])
            spent = counts(bridges["with"], libre) - before
        finally:
            await detector.stop()
    arrived_translated = {
        name: sum(m in translated for m in timing.message_ids) for name, timing in timings.items()
    }
    return Outcome(
        version,
        timings,
        (before - start).libre_calls,
        spent,
        arrived_translated,
        {step: list(times) for step, times in steps.ms.items()},
    )


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if k < total % parts else 0) for k in range(parts)]


def counts(bridge: Bridge, libre: Any) -> Counts:
    return Counts(
        len(libre.calls), bridge.translations.provider_calls, bridge.translations.cache_hits
    )


async def open_path(session: aiohttp.ClientSession, name: str, bridge: Bridge, owner: str) -> Lane:
    config = bridge.config
    site = config.sites[0]
    marketplace = Marketplace(session, config.web.public_url, site.api_token)
    await marketplace.call(
        "PUT",
        f"/sellers/{SELLER_ID}",
        {
            "name": "Bench Seller",
            "language": "en",
            "members": [{"user_id": owner, "role": "owner"}],
        },
    )
    token, _ = issue_buyer_token(
        site.widget_secret, Buyer(SiteID(SITE), BuyerID(BUYER_ID), "Анна", "ru"), TOKEN_TTL
    )
    path = Lane(name, bridge, token)
    async with session.post(
        f"{config.web.public_url}/widget/v1/conversations",
        json={
            "seller_id": SELLER_ID,
            "context": {"type": "product", "id": "kettle-1", "title": "Electric kettle"},
        },
        headers={"Authorization": f"Bearer {token}"},
    ) as response:
        if response.status not in (200, 201):
            raise BenchError(f"POST /widget/v1/conversations: HTTP {response.status}")
        path.conversation_id = str((await response.json())["conversation_id"])
    answer = await marketplace.call("GET", f"/conversations/{path.conversation_id}", {})
    room_id = answer.get("room_id")
    if not isinstance(room_id, str):
        raise BenchError(f"conversation {path.conversation_id} came without a room")
    path.room_id = room_id
    return path


async def send(
    session: aiohttp.ClientSession,
    path: Lane,
    detector: SyncDetector,
    options: Options,
    timing: Timing,
) -> None:
    """One buyer message, timed until the seller's client has it."""
    url = (
        f"{path.bridge.config.web.public_url}/widget/v1/conversations/"
        f"{path.conversation_id}/messages"
    )
    body = {"text": TEMPLATE, "client_id": f"{path.name}-{uuid.uuid4().hex}"}
    started = time.perf_counter()
    async with session.post(
        url, json=body, headers={"Authorization": f"Bearer {path.token}"}
    ) as response:
        text = await response.text()
        answered = time.perf_counter()
        if response.status != 201:
            raise BenchError(
                f"POST …/messages on the {path.name} bridge: HTTP {response.status} {text[:300]}"
            )
        message_id = str((await response.json())["message_id"])
    seen = await detector.wait_for([message_id], options.timeout)
    timing.answered_ms.append((answered - started) * 1000)
    timing.seen_ms.append((seen - started) * 1000)
    timing.message_ids.append(message_id)
    await asyncio.sleep(options.gap)


# --- the report -------------------------------------------------------------------------------


def _spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):>8.1f} {percentile(values, 90):>8.1f} {max(values):>8.1f}"


def report(options: Options, outcome: Outcome) -> None:
    timings, spent, translated = outcome.timings, outcome.spent, outcome.translated
    with_seen, without_seen = timings["with"].seen_ms, timings["without"].seen_ms
    n = len(with_seen)
    print()
    print("Bazaar Bridge translation benchmark")
    print(f"  homeserver    {outcome.version} (embedded, loopback)")
    print("  database      SQLite, a file per bridge in the temp dir")
    print(f"  text          {TEMPLATE!r}, ru → en, the fake LibreTranslate on loopback")
    print(
        f"  order         {n} messages per bridge, one at a time, {options.gap * 1000:g} ms"
        f" apart, in {options.rounds} interleaved rounds, after {1 + options.warmup} warm-up"
    )
    print()
    print(f"  {'ms from just before the POST':<44} {'median':>8} {'p90':>8} {'max':>8}")
    rows = (
        ("POST answered, with translation", timings["with"].answered_ms),
        ("POST answered, without", timings["without"].answered_ms),
        ("in the seller's /sync, with translation", with_seen),
        ("in the seller's /sync, without", without_seen),
    )
    for label, values in rows:
        print(f"  {label:<44} {_spread(values)}")
    added = statistics.median(with_seen) - statistics.median(without_seen)
    added_p90 = percentile(with_seen, 90) - percentile(without_seen, 90)
    ratio = statistics.median(with_seen) / statistics.median(without_seen)
    ratio_p90 = percentile(with_seen, 90) / percentile(without_seen, 90)
    print(f"  {'added by the cached translation':<44} {added:>8.1f} {added_p90:>8.1f}")
    print(f"  {'ratio with / without':<44} {ratio:>8.2f} {ratio_p90:>8.2f}")
    print("  the translating courier's steps, per message")
    labels = {
        "render": "translations.render (the cache lookup)",
        "set_rendering": "set_rendering (store it, the stream frame)",
    }
    for step, label in labels.items():
        times = outcome.steps.get(step, [])
        if times:
            print(f"    {label:<42} {_spread(times)}")
    print()
    print(
        f"  arrived translated            {translated['with']}/{n} with,"
        f" {translated['without']}/{len(without_seen)} without"
    )
    print(
        f"  LibreTranslate calls          {outcome.warmup_calls} in the warm-up,"
        f" {spent.libre_calls} in the measured messages ({spent.cache_hits} cache hits,"
        f" {spent.provider_calls} provider calls)"
    )
    print()
    print(
        f"Summary: a {'cached' if not spent.libre_calls else 'NOT (all) cached'} ru → en"
        f" translation adds {added:.1f} ms to the median way of a"
        f" buyer message to the seller's client ({ratio:.2f}× without translation; p90"
        f" {added_p90:+.1f} ms)."
    )
    problems = []
    if spent.libre_calls:
        problems.append(
            f"NOT A CACHED RUN: LibreTranslate was called {spent.libre_calls} times while the"
            " messages were measured"
        )
    if translated["with"] != n:
        problems.append(
            f"only {translated['with']} of {n} messages arrived translated with a provider"
        )
    if translated["without"]:
        problems.append(f"{translated['without']} messages arrived translated without a provider")
    for problem in problems:
        print(f"!!! {problem} !!!")
        print(f"!!! {problem} !!!", file=sys.stderr)


def parse_options(argv: Sequence[str] | None = None) -> tuple[Options, bool]:
    parser = argparse.ArgumentParser(
        description="What a cached translation adds to a buyer message's way to the seller."
    )
    parser.add_argument(
        "--messages", "-n", type=int, default=60, help="measured messages per bridge (default 60)"
    )
    parser.add_argument(
        "--rounds", type=int, default=6, help="interleaved rounds they are split into (default 6)"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=5,
        help="untimed messages per bridge after the first (default 5)",
    )
    parser.add_argument(
        "--gap",
        type=float,
        default=0.05,
        help="seconds between a message's arrival and the next send (default 0.05)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30, help="seconds a message may take (default 30)"
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="log at INFO level")
    args = parser.parse_args(argv)
    if min(args.messages, args.rounds) < 1 or args.warmup < 0 or args.gap < 0:
        parser.error("--messages and --rounds must be at least 1, --warmup and --gap not negative")
    if args.rounds > args.messages:
        parser.error("--rounds must not exceed --messages")
    options = Options(
        messages=args.messages,
        rounds=args.rounds,
        warmup=args.warmup,
        gap=args.gap,
        timeout=args.timeout,
    )
    return options, bool(args.verbose)


def main(argv: Sequence[str] | None = None) -> int:
    options, verbose = parse_options(argv)
    quiet_logging(verbose)
    return run_bench("translation", run(options))


if __name__ == "__main__":
    sys.exit(main())
