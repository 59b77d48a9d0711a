"""What the bridge counts about its own work, as the domain sees it.

Core and the adapters report through `Meter`; `bridge/operations/metrics.py` turns the
reports into Prometheus metrics. The default, `NO_METER`, drops them, so a service built
without a meter (most tests) works unchanged and core never imports a metrics library.
"""

from __future__ import annotations

import enum
from typing import Protocol


class Direction(enum.StrEnum):
    """Which way a message travels."""

    BUYER_TO_SELLER = "buyer_to_seller"
    SELLER_TO_BUYER = "seller_to_buyer"


class Meter(Protocol):
    """The counting points; each call must be cheap, it runs once per message or event."""

    def message_sent(self, direction: Direction, seconds: float) -> None:
        """A message reached its side (the room, or the buyer's store), `seconds` after
        the bridge took it."""

    def message_failed(self, direction: Direction) -> None:
        """A message will never reach its side."""

    def transaction_received(self, events: int) -> None:
        """The homeserver pushed an appservice transaction of `events` events."""

    def events_recovered(self, events: int) -> None:
        """`events` events the homeserver never pushed were found in the rooms' timelines."""

    def translation_asked(self) -> None:
        """The translation provider was called."""

    def translation_failed(self) -> None:
        """The translation provider let a message down."""

    def translation_cached(self) -> None:
        """A translation came from the cache, sparing a provider call."""

    def webhook_posted(self, delivered: bool) -> None:
        """A webhook POST ended: a 2xx (`delivered`) or a failure that will be retried."""


class NoMeter:
    """A meter that counts nothing."""

    def message_sent(self, direction: Direction, seconds: float) -> None:
        pass

    def message_failed(self, direction: Direction) -> None:
        pass

    def transaction_received(self, events: int) -> None:
        pass

    def events_recovered(self, events: int) -> None:
        pass

    def translation_asked(self) -> None:
        pass

    def translation_failed(self) -> None:
        pass

    def translation_cached(self) -> None:
        pass

    def webhook_posted(self, delivered: bool) -> None:
        pass


NO_METER: Meter = NoMeter()
