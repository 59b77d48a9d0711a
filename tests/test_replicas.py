"""Three replicas of the bridge on one PostgreSQL cluster of the test's own, behind round-robin
proxies for the web API and the appservice API, each replica its own `python -m bridge run`
process: any replica answers any call; a buyer's stream on one replica gets what another
applied; when the replica holding the duties is SIGKILLed in a burst, the others take them
over and nothing is lost, doubled or reordered."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import nio
import pytest
import pytest_asyncio

from bridge.core.duties import DELIVERY_DUTIES, delivery_duty
from bridge.demo.synapse import free_port
from bridge.store.replicas import LOCK_SPACE, asyncpg_dsn, duties_application_name, lock_key
from tests.conftest import SITE, Homeserver, Sites, bridge_settings, product
from tests.support import pgcluster
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.journeys import joined_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.pgcluster import PgCluster
from tests.support.replicas import ReplicaSet, RoundRobinProxy
from tests.support.seller import SellerClient
from tests.support.timeline import buyer_message_ids
from tests.support.waiting import eventually
from tests.support.webhooks import WebhookReceiver

pytestmark = [
    pytest.mark.synapse,
    pytest.mark.faults,
    # In CI (CI=true) a missing PostgreSQL is a failure, not a skip.
    pytest.mark.skipif(
        not pgcluster.available() and not os.environ.get("CI"),
        reason="needs PostgreSQL's initdb and pg_ctl (apt-get install postgresql)",
    ),
]

NewSeller = Callable[[str], Awaitable[SellerClient]]

# Every duty the test's config makes: one site with webhooks, no mail.
DUTIES = (
    "appservice",
    *DELIVERY_DUTIES,
    f"webhooks/{SITE}",
    "archive",
    "reminders",
    "erasure",
    "admin-rooms",
)
# What the issue asks of a takeover after a kill.
TAKEOVER_SECONDS = 10.0


@dataclass
class Deployment:
    replicas: ReplicaSet
    web: RoundRobinProxy
    appservice: RoundRobinProxy
    database: str
    public_url: str

    async def holders(self) -> dict[str, int]:
        """Each held duty and the pid of the replica holding it, as PostgreSQL sees it."""
        names = {lock_key(duty) & 0xFFFFFFFF: duty for duty in DUTIES}
        connection = await asyncpg.connect(asyncpg_dsn(self.database))
        try:
            rows = await connection.fetch(
                "SELECT l.objid::bigint AS key, a.application_name AS holder"
                " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid = $1 AND l.granted",
                LOCK_SPACE,
            )
        finally:
            await connection.close()
        pids = {
            duties_application_name(process.pid): process.pid
            for process in self.replicas.processes
            if process.pid is not None
        }
        return {
            names[row["key"]]: pids[row["holder"]]
            for row in rows
            if row["key"] in names and row["holder"] in pids
        }

    async def shared_out(self) -> bool:
        """Whether every duty is held and each running replica holds a third of the
        deliveries' shards, give or take one."""
        holders = await self.holders()
        running = {p.pid for p in self.replicas.processes if p.pid is not None}
        shards = Counter(pid for duty, pid in holders.items() if duty in DELIVERY_DUTIES)
        share = -(-len(DELIVERY_DUTIES) // len(running))
        return set(holders) == set(DUTIES) and all(
            share - 1 <= shards[pid] <= share for pid in running
        )

    async def duties_in_metrics(self) -> list[int | None]:
        """Each replica's `bazaar_duties_held` from its /metrics; None for one not running."""
        found: list[int | None] = []
        async with aiohttp.ClientSession() as session:
            for process, base in zip(
                self.replicas.processes, self.replicas.web_upstreams, strict=True
            ):
                if not process.running:
                    found.append(None)
                    continue
                async with session.get(f"{base}/metrics") as response:
                    text = await response.text()
                line = next(x for x in text.splitlines() if x.startswith("bazaar_duties_held "))
                found.append(int(float(line.split()[1])))
        return found

    def index_of(self, pid: int) -> int:
        return next(i for i, process in enumerate(self.replicas.processes) if process.pid == pid)

    def log_tails(self) -> str:
        return "\n".join(
            f"--- replica {index}:\n{process.log_tail(15)}"
            for index, process in enumerate(self.replicas.processes)
        )


@pytest_asyncio.fixture(loop_scope="session")
async def deployment(
    homeserver: Homeserver, sites: Sites, webhooks: WebhookReceiver, tmp_path: Path
) -> AsyncIterator[Deployment]:
    cluster = PgCluster()
    await cluster.start()
    try:
        settings = bridge_settings(
            homeserver, cluster.url, sites, webhooks.url, free_port(), tmp_path / "media"
        )
        replicas = ReplicaSet(settings, cluster.url, 3, tmp_path)
        web, appservice = replicas.web_proxy(), replicas.appservice_proxy()
        await web.start()
        await appservice.start()
        try:
            # The first replica alone first: it migrates the store and takes every duty.
            await replicas.start_all(1)
            await replicas.start_all()
            deployment = Deployment(replicas, web, appservice, cluster.url, replicas.public_url)
            # Then the deliveries are shared out: each replica holds its part of the shards.
            await eventually(deployment.shared_out, what="the deliveries shared out")
            yield deployment
        finally:
            await replicas.stop_all()
            await appservice.stop()
            await web.stop()
    finally:
        await cluster.cleanup()


async def test_a_buyers_stream_on_one_replica_gets_the_reply_another_took_from_the_homeserver(
    deployment: Deployment, new_seller: NewSeller, sites: Sites
) -> None:
    marketplace = MarketplaceClient(deployment.public_url, SITE, sites.api_token)
    owner = await new_seller("owner")
    try:
        conversation = await joined_conversation(marketplace, owner)
        conversation_id, room_id = conversation["conversation_id"], conversation["room_id"]
        holders = await deployment.holders()
        assert set(holders) == set(DUTIES), deployment.log_tails()
        # The stream goes to the replica that neither applies transactions nor delivers
        # this conversation.
        busy = {
            deployment.index_of(holders["appservice"]),
            deployment.index_of(holders[delivery_duty(conversation_id)]),
        }
        elsewhere = next(i for i in range(3) if i not in busy)
        token = buyer_token(sites.widget_secret, SITE, "Anna_K", name="Anna K.")
        buyer = BuyerClient(deployment.replicas.web_upstreams[elsewhere], token)
        stream = await buyer.stream()
        try:
            await owner.send_text(room_id, "Yes, it is in stock")
            frame = await stream.next_of(
                "message.created",
                message__conversation_id=conversation_id,
                message__text="Yes, it is in stock",
            )
            assert frame["message"]["sender"] == "seller"
            # The buyer answers on that replica; the seller reads it from the room, which
            # the replica delivering the conversation posted.
            status, _ = await buyer.call(
                "POST",
                f"/conversations/{conversation_id}/messages",
                {"text": "Great, ordering now", "client_id": "thanks-1"},
            )
            assert status == 201
            await owner.wait_until(
                lambda: "Great, ordering now" in owner.conversation(room_id),
                what="the buyer's answer in the room",
            )
        finally:
            await stream.close()
            await buyer.close()
    finally:
        await marketplace.close()
    # Every replica answered calls, and the homeserver's pushes went to more than one.
    assert all(deployment.web.answered[url] > 0 for url in deployment.replicas.web_upstreams)
    assert (
        sum(
            deployment.appservice.answered[url] > 0
            for url in deployment.replicas.appservice_upstreams
        )
        >= 2
    )


def question(conversation: int, n: int) -> str:
    return f"Question {n} in conversation {conversation}"


def answer(conversation: int, n: int) -> str:
    return f"Answer {n} in conversation {conversation}"


async def post_until_taken(
    marketplace: MarketplaceClient, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST as a marketplace does: again, with the same client_id, until a 2xx."""
    while True:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            status, answered = await marketplace.call("POST", path, body)
            if status in (200, 201):
                return dict(answered)
            assert status >= 500, (status, answered)
        await asyncio.sleep(0.2)


async def test_a_burst_loses_nothing_doubles_nothing_and_keeps_order_when_the_holder_is_killed(
    deployment: Deployment, new_seller: NewSeller, sites: Sites
) -> None:
    marketplace = MarketplaceClient(deployment.public_url, SITE, sites.api_token)
    owner = await new_seller("owner")
    conversations = 4
    questions = 25
    answers = 8
    try:
        opened = [await joined_conversation(marketplace, owner)]
        for n in range(1, conversations):
            # One buyer each: the journeys' buyer, other products.
            opened.append(
                await marketplace.ok(
                    "POST",
                    "/conversations",
                    {
                        "seller_id": "acme",
                        "buyer_id": "Anna_K",
                        "context": product(f"item-{n}"),
                    },
                )
            )
        for conversation in opened[1:]:
            await owner.wait_until(
                lambda c=conversation: c["room_id"] in owner.invites, what="the invite"
            )
            await owner.accept_invite(conversation["room_id"])
        holders = await deployment.holders()
        assert set(holders) == set(DUTIES), deployment.log_tails()
        victim = deployment.index_of(holders["appservice"])
        kill_after = questions // 3
        killed = asyncio.Event()

        async def taken_over() -> dict[str, int]:
            now = await deployment.holders()
            return now if set(now) == set(DUTIES) else {}

        async def take_over() -> dict[str, int]:
            # The survivors hold every duty again, within the time the issue allows.
            return await eventually(
                taken_over, within=TAKEOVER_SECONDS, what="every duty held by a live replica"
            )

        takeover: list[asyncio.Task[dict[str, int]]] = []

        async def ask(index: int, conversation: dict[str, Any]) -> None:
            path = f"/conversations/{conversation['conversation_id']}/messages"
            for n in range(1, questions + 1):
                await post_until_taken(
                    marketplace, path, {"text": question(index, n), "client_id": f"q{index}-{n}"}
                )
                if index == 0 and n == kill_after:
                    await deployment.replicas.kill(victim)
                    takeover.append(asyncio.create_task(take_over()))
                    killed.set()

        async def reply(index: int, conversation: dict[str, Any]) -> None:
            for n in range(1, answers + 1):
                if n == answers // 2 + 1:
                    await killed.wait()
                await owner.send_text(conversation["room_id"], answer(index, n))
                await asyncio.sleep(0)

        async with asyncio.TaskGroup() as group:
            for index, conversation in enumerate(opened):
                group.create_task(ask(index, conversation))
                group.create_task(reply(index, conversation))

        after = await takeover[0]
        assert victim not in {deployment.index_of(pid) for pid in after.values()}
        # and share the deliveries between the two of them, as their /metrics say too.
        await eventually(deployment.shared_out, what="the deliveries shared out between two")
        held = await deployment.duties_in_metrics()
        assert held[victim] is None and sum(n for n in held if n is not None) == len(DUTIES)

        # Every question reached the seller's room once, in the order asked.
        for index, conversation in enumerate(opened):
            room_id = conversation["room_id"]
            texts = await eventually(
                lambda room_id=room_id: _complete(owner, room_id, questions),
                within=90,
                what=f"all questions in room {index}",
            )
            assert texts == [question(index, n) for n in range(1, questions + 1)], texts
            ids = await buyer_message_ids(owner, room_id)
            assert len(ids) == len(set(ids)) == questions
        # Every answer reached the buyer's side once, in the order written.
        for index, conversation in enumerate(opened):
            path = f"/conversations/{conversation['conversation_id']}/messages"

            async def seller_texts(path: str = path) -> list[str]:
                listed = await marketplace.ok("GET", path)
                said = [m["text"] for m in listed["messages"] if m["sender"] == "seller"]
                return said if len(said) >= answers else []

            said = await eventually(seller_texts, within=90, what=f"answers of {index}")
            assert said == [answer(index, n) for n in range(1, answers + 1)], said
    finally:
        await marketplace.close()


async def _complete(owner: SellerClient, room_id: str, count: int) -> list[str]:
    """The buyer's questions in the room once there are `count`, as the seller sees them."""
    await owner.sync_once()
    texts = [text for text in owner.conversation(room_id) if text.startswith("Question ")]
    return texts if len(texts) >= count else []


async def test_a_sellers_first_conversations_opened_at_once_on_every_replica_share_one_space(
    deployment: Deployment, new_seller: NewSeller, sites: Sites
) -> None:
    marketplace = MarketplaceClient(deployment.public_url, SITE, sites.api_token)
    owner = await new_seller("owner")
    try:
        await marketplace.ok(
            "PUT",
            "/sellers/acme",
            {"name": "ACME", "members": [{"user_id": owner.user_id, "role": "owner"}]},
        )
        await marketplace.ok("PUT", "/buyers/anna", {"name": "Anna"})
        # Enough conversations that their shards fall to every replica; the rooms are made
        # at once, each by the replica delivering its conversation, and each wants the Space.
        opened = await asyncio.gather(
            *(
                marketplace.ok(
                    "POST",
                    "/conversations",
                    {"seller_id": "acme", "buyer_id": "anna", "context": product(f"p-{n}")},
                )
                for n in range(12)
            )
        )
        holders = await deployment.holders()
        makers = {holders[delivery_duty(c["conversation_id"])] for c in opened}
        assert len(makers) >= 2, "the conversations all fell to one replica's shards"
        parents: set[str] = set()
        for conversation in opened:
            room_id = await eventually(
                lambda c=conversation: _room_of(marketplace, c["conversation_id"]),
                what="the room made",
            )
            await owner.wait_until(lambda r=room_id: r in owner.invites, what="the invite")
            await owner.accept_invite(room_id)
            state = await owner.client.room_get_state(room_id)
            assert isinstance(state, nio.RoomGetStateResponse), state
            parents |= {e["state_key"] for e in state.events if e["type"] == "m.space.parent"}
        assert len(parents) == 1, parents
    finally:
        await marketplace.close()


async def _room_of(marketplace: MarketplaceClient, conversation_id: str) -> str | None:
    conversation = await marketplace.ok("GET", f"/conversations/{conversation_id}")
    room_id = conversation["room_id"]
    return str(room_id) if room_id else None
