"""Command line: `python -m bridge [run|generate-registration|demo] -c config.yaml`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import logging.config
import signal
import sys
from pathlib import Path

import uvloop
import yaml

from bridge.config import (
    Config,
    ConfigError,
    check_appservice_tokens,
    load_config,
    write_missing_tokens,
)

logger = logging.getLogger("bridge")

REGISTRATION_HEADER = (
    "# Appservice registration for Bazaar Bridge, written by\n"
    "# `python -m bridge generate-registration`. Give this file to the homeserver\n"
    "# (Synapse: app_service_config_files). Its tokens must match the bridge's config.\n"
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bridge", description="Bazaar Bridge")
    parser.add_argument("-c", "--config", type=Path, default=Path("config.yaml"))
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("run", help="run the bridge (the default)")
    generate = commands.add_parser(
        "generate-registration", help="write the appservice registration for the homeserver"
    )
    generate.add_argument("-o", "--output", type=Path, default=Path("registration.yaml"))
    generate.add_argument(
        "--example",
        action="store_true",
        help="keep placeholder tokens and leave the config untouched (for the example file)",
    )
    demo = commands.add_parser(
        "demo", help="start an embedded Synapse and the bridge with a demo site and seller"
    )
    demo.add_argument("--workdir", type=Path, default=Path(".demo"))
    for sub in (commands.choices["run"], generate, demo):
        sub.add_argument("-c", "--config", type=Path, default=argparse.SUPPRESS)
    return parser


def _configure_logging(config: Config | None) -> None:
    if config is not None and config.logging:
        logging.config.dictConfig(config.logging)
    else:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def generate_registration(config_path: Path, output: Path, *, example: bool) -> None:
    from bridge.matrix.registration import registration

    # Site secrets may still be placeholders here; the registration needs only the
    # appservice section, whose tokens this command fills in.
    load_config(config_path, require_tokens=False)
    if not example and write_missing_tokens(config_path):
        print(f"Wrote new as_token and hs_token into {config_path}")
    config = load_config(config_path, require_tokens=False)
    if not example:
        check_appservice_tokens(config)
    text = REGISTRATION_HEADER + yaml.safe_dump(
        registration(config), sort_keys=False, allow_unicode=True
    )
    output.write_text(text, encoding="utf-8")
    print(f"Wrote {output}")


async def run_until_stopped(config: Config) -> None:
    from bridge.app import Bridge

    bridge = Bridge(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await bridge.start()
    try:
        await stop.wait()
    finally:
        logger.info("Stopping")
        await bridge.stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = args.command or "run"
    try:
        if command == "generate-registration":
            generate_registration(args.config, args.output, example=args.example)
            return 0
        if command == "demo":
            from bridge.demo.run import run_demo

            _configure_logging(None)
            uvloop.run(run_demo(args.workdir))
            return 0
        config = load_config(args.config)
    except ConfigError as error:
        print(f"Bad configuration: {error}", file=sys.stderr)
        return 2
    _configure_logging(config)
    from bridge.store.database import DatabaseInUse

    try:
        uvloop.run(run_until_stopped(config))
    except DatabaseInUse as error:
        print(error, file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
