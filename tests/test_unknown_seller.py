"""A wrong seller id is answered as such (404), whatever else the body gets wrong."""

from __future__ import annotations

import pytest

from tests.conftest import SITE, BridgeRunner, Sites
from tests.support.buyer import BuyerClient, buyer_token
from tests.support.marketplace import MarketplaceClient

pytestmark = pytest.mark.synapse

BAD_CONTEXTS = [None, {"type": "wish", "id": "1", "title": "x"}, "not an object"]


@pytest.mark.parametrize("context", BAD_CONTEXTS, ids=["missing", "bad-type", "not-an-object"])
async def test_the_marketplace_hears_of_an_unknown_seller_before_a_bad_context(
    runner: BridgeRunner, marketplace: MarketplaceClient, context: object
) -> None:
    await runner.start()
    await marketplace.ok("PUT", "/buyers/b1", {"name": "Bob"})
    body = {"seller_id": "nobody", "buyer_id": "b1", "context": context}
    status, error = await marketplace.call("POST", "/conversations", body)
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER"), error


@pytest.mark.parametrize("context", BAD_CONTEXTS, ids=["missing", "bad-type", "not-an-object"])
async def test_the_widget_hears_of_an_unknown_seller_before_a_bad_context(
    runner: BridgeRunner, sites: Sites, context: object
) -> None:
    await runner.start()
    buyer = BuyerClient(runner.config.web.public_url, buyer_token(sites.widget_secret, SITE, "b1"))
    try:
        status, error = await buyer.call(
            "POST", "/conversations", {"seller_id": "nobody", "context": context}
        )
    finally:
        await buyer.close()
    assert (status, error["errcode"]) == (404, "BAZAAR_UNKNOWN_SELLER"), error
