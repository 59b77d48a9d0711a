"""A seller's hours and time zone through the marketplace API: bad ones are refused with a
named error and the stored seller stays as it was."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import BridgeRunner
from tests.support.marketplace import MarketplaceClient

pytestmark = pytest.mark.synapse

GOOD = {
    "name": "ACME",
    "timezone": "Europe/Vilnius",
    "hours": {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "sat": [["10:00", "14:00"]]},
    "away_message": "Back on Monday.",
    "greeting": "Hello {buyer}!",
}


@pytest.mark.parametrize(
    ("change", "errcode"),
    [
        ({"hours": {"mon": [["09:00", "13:00"], ["12:30", "18:00"]]}}, "BAZAAR_BAD_HOURS"),
        ({"hours": {"mon": [["9:00", "13:00"]]}}, "BAZAAR_BAD_HOURS"),
        ({"hours": {"mon": [["09:00", "25:00"]]}}, "BAZAAR_BAD_HOURS"),
        ({"hours": {"mon": [["18:00", "09:00"]]}}, "BAZAAR_BAD_HOURS"),
        ({"hours": {"funday": [["09:00", "13:00"]]}}, "BAZAAR_BAD_HOURS"),
        (
            {"hours": {"mon": [[f"{h:02d}:00", f"{h:02d}:30"] for h in range(7)]}},
            "BAZAAR_BAD_HOURS",
        ),
        ({"hours": "always"}, "BAZAAR_BAD_HOURS"),
        ({"timezone": "Mars/Olympus"}, "BAZAAR_BAD_TIMEZONE"),
        ({"timezone": "../../etc/passwd"}, "BAZAAR_BAD_TIMEZONE"),
        ({"timezone": 3}, "BAZAAR_BAD_TIMEZONE"),
    ],
)
async def test_bad_hours_or_zone_are_refused_and_the_seller_stays_as_it_was(
    runner: BridgeRunner, marketplace: MarketplaceClient, change: dict[str, Any], errcode: str
) -> None:
    await runner.start()
    stored = await marketplace.ok("PUT", "/sellers/acme", GOOD)
    assert (stored["timezone"], stored["hours"]) == (GOOD["timezone"], GOOD["hours"])

    status, error = await marketplace.call(
        "PUT", "/sellers/acme", {**GOOD, "name": "Renamed", "away_message": "Other", **change}
    )

    assert (status, error["errcode"]) == (400, errcode), error
    assert error["error"]
    assert await marketplace.ok("GET", "/sellers/acme") == stored
