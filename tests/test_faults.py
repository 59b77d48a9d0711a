"""The fault suite, smaller: nothing is lost, repeated or reordered while the bridge is
SIGKILLed, Synapse and PostgreSQL restart, the webhook receiver fails and the translator
hangs. Counted from the outside, as `bench/faults.py` counts its full-size run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.faults import Scenario, Window, run_scenario
from tests.support import pgcluster

pytestmark = [
    pytest.mark.synapse,
    pytest.mark.faults,
    # In CI (CI=true) a missing PostgreSQL is a failure, not a skip.
    pytest.mark.skipif(
        not pgcluster.available() and not os.environ.get("CI"),
        reason="needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)",
    ),
]

# Its own Synapse, PostgreSQL cluster and bridge process: the faults are done to them.
SCENARIO = Scenario(
    buyer_messages=300,
    conversations=10,
    seller_replies=30,
    sellers=2,
    traffic_seconds=40,
    bridge_kills=(10,),
    synapse_restarts=(20,),
    postgres_restarts=(30,),
    postgres_down_seconds=3,
    webhook_outage=Window(start=6, seconds=10),
    # While the bridge is surely up: before the kill, however slowly the machine runs.
    translation_hang=Window(start=2, seconds=6),
    translation_delay=5,
    settle_timeout=90,
    stall_seconds=45,
)


async def test_every_message_and_webhook_arrives_once_and_in_order_through_the_faults(
    tmp_path: Path,
) -> None:
    outcome = await run_scenario(SCENARIO, tmp_path)
    report = outcome.report()

    # The faults happened while the traffic flowed, and bit.
    happened = [what for _, what in outcome.timeline]
    assert sum(what.startswith("bridge SIGKILLed") for what in happened) == 1, report
    assert sum(what == "Synapse stopped" for what in happened) == 1, report
    assert sum(what.startswith("PostgreSQL stopped") for what in happened) == 1, report
    assert outcome.figures["webhooks answered 500"] > 0, report
    assert outcome.figures["buyer sends repeated (no answer, refused, 5xx)"] > 0, report
    untranslated = sum(value for name, value in outcome.figures.items() if "untranslated" in name)
    assert untranslated > 0, report

    assert outcome.settled, report
    assert {name: row.delivered for name, row in outcome.rows.items()} == {
        "buyer → seller": 300,
        "seller → buyer": 30,
        "webhooks": 2 * 300 + 30,
    }, report
    assert outcome.problems() == {}, report
