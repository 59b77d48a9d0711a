"""The APIs' OpenAPI documents against a live bridge: schemathesis generates requests from
each document, valid and not, with the site's token, the buyer's and a wrong one, and
checks every answer against the document: no server error, only documented statuses,
bodies that match their schemas."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.buyer import buyer_token
from tests.support.journeys import open_conversation
from tests.support.marketplace import MarketplaceClient
from tests.support.seller import SellerClient

pytestmark = pytest.mark.synapse

# `ignored_auth` sends each call again without the token, and with a wrong one: it must fail.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,ignored_auth"
)
# Enough to reach every operation with good and bad bodies; CI stays short.
EXAMPLES = 15
SCHEMATHESIS = Path(sys.executable).with_name("st")


async def schemathesis(
    schema_url: str, token: str, parameters: dict[str, str], workdir: Path, *, examples: int
) -> dict[str, Any]:
    """Run `st run` on the document; its JSON report, with the exit code and the output."""
    config = workdir / "schemathesis.toml"
    config.write_text(
        "[parameters]\n" + "".join(f'"{name}" = "{value}"\n' for name, value in parameters.items())
    )
    report = workdir / "report.json"
    process = await asyncio.create_subprocess_exec(
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "run",
        schema_url,
        "--checks",
        CHECKS,
        "--max-examples",
        str(examples),
        "--seed",
        "14",
        "--workers",
        "1",
        "--header",
        f"Authorization: Bearer {token}",
        "--report",
        "json",
        "--report-json-path",
        str(report),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=workdir,  # its cache goes there, not into the checkout
    )
    output, _ = await process.communicate()
    text = output.decode(errors="replace")
    (workdir / "output.txt").write_text(text)
    assert report.exists(), text
    found = json.loads(report.read_text())
    found["exit_code"] = process.returncode
    found["output"] = text
    return found


async def seeded(marketplace: MarketplaceClient, owner: SellerClient) -> dict[str, str]:
    """A seller, a buyer and their conversation with a message and a template, so that the
    generated calls reach stored records and not only 404s."""
    conversation = await open_conversation(marketplace, owner, seller_id="s1", buyer_id="b1")
    conversation_id = conversation["conversation_id"]
    await marketplace.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        {"text": "Is it in stock?", "client_id": "q1"},
    )
    await marketplace.ok("PUT", "/sellers/s1/templates/delivery", {"text": "Two days."})
    return {
        "site": SITE,
        "seller_id": "s1",
        "buyer_id": "b1",
        "conversation_id": conversation_id,
        "name": "delivery",
    }


async def test_both_documents_hold_every_route_and_are_served_without_a_token(
    runner: BridgeRunner,
) -> None:
    await runner.start()
    base = runner.config.web.public_url
    documents: dict[str, dict[str, Any]] = {}
    async with aiohttp.ClientSession() as session:
        for path, prefix in (
            ("/api/v1/openapi.json", "/api/v1/sites/"),
            ("/widget/v1/openapi.json", "/widget/v1/"),
        ):
            async with session.get(base + path) as response:
                assert response.status == 200
                document = documents[path] = await response.json()
            assert document["openapi"] == "3.1.0"
            assert document["paths"], path
            assert all(p.startswith(prefix) for p in document["paths"]), document["paths"]
            for item in document["paths"].values():
                for operation in item.values():
                    assert "400" in operation["responses"], operation["operationId"]
    marketplace_paths = set(document_paths(documents["/api/v1/openapi.json"]))
    assert "put /api/v1/sites/{site}/sellers/{seller_id}" in marketplace_paths
    assert "delete /api/v1/sites/{site}/buyers/{buyer_id}" in marketplace_paths
    widget_paths = set(document_paths(documents["/widget/v1/openapi.json"]))
    assert "post /widget/v1/conversations/{conversation_id}/messages" in widget_paths


def document_paths(document: dict[str, Any]) -> list[str]:
    return [f"{method} {path}" for path, item in document["paths"].items() for method in item]


def assert_clean(report: dict[str, Any]) -> None:
    """Every operation tested, every case passed every check, nothing errored."""
    output = report["output"]
    summary = output[output.find("FAILURES") :][:6000] if "FAILURES" in output else output[-3000:]
    assert (report["failures"], report["errors"], report["exit_code"]) == ([], [], 0), summary
    assert report["operations"]["tested"] == report["operations"]["total"] > 0, summary
    cases = report["test_cases"]
    assert cases["generated"] > 0 and cases["with_failures"] == 0, summary


async def fuzz(
    url: str, token: str, wrong_token: str, parameters: dict[str, str], workdir: Path
) -> None:
    """Both runs clean: with the right token, and (fewer examples) with a wrong one."""
    assert_clean(await schemathesis(url, token, parameters, workdir, examples=EXAMPLES))
    (workdir / "wrong").mkdir()
    assert_clean(await schemathesis(url, wrong_token, parameters, workdir / "wrong", examples=3))


async def test_the_marketplace_api_answers_as_its_document_says(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: Any,
    sites: Sites,
    tmp_path: Path,
) -> None:
    await runner.start()
    parameters = await seeded(marketplace, await new_seller("owner"))
    url = runner.config.web.public_url + "/api/v1/openapi.json"

    await fuzz(url, sites.api_token, "not-a-token", parameters, tmp_path)


async def test_the_widget_api_answers_as_its_document_says(
    runner: BridgeRunner,
    marketplace: MarketplaceClient,
    new_seller: Any,
    sites: Sites,
    tmp_path: Path,
) -> None:
    await runner.start()
    parameters = await seeded(marketplace, await new_seller("owner"))
    url = runner.config.web.public_url + "/widget/v1/openapi.json"
    token = buyer_token(sites.widget_secret, SITE, "b1", name="Anna K.")

    forged = buyer_token("not-the-secret-of-this-site-at-all", SITE, "b1")
    await fuzz(url, token, forged, parameters, tmp_path)
