"""The marketplace's API for offers made in a conversation room:
`PUT /api/v1/sites/{site}/conversations/{id}/offers/{offer_id}` answers one (after the
`offer.created` webhook), `GET .../offers` lists them."""

from __future__ import annotations

from aiohttp import web

from bridge.core.ids import ConversationID
from bridge.core.offers import OfferDesk, OfferList, OfferView, offer_json
from bridge.marketplace.api import BASE, MARKETPLACE, authenticated_site
from bridge.marketplace.bodies import OfferAnswerBody

OFFERS = web.AppKey("offers", OfferDesk)

routes = web.RouteTableDef()


@routes.put(BASE + "/conversations/{conversation_id}/offers/{offer_id}")
@MARKETPLACE.operation(
    "Answer an offer a member made: open it with a checkout link, or end it",
    body=OfferAnswerBody,
    answers={200: OfferView},
    errors=(409,),
)
async def answer_offer(request: web.Request, body: OfferAnswerBody) -> web.Response:
    site = authenticated_site(request)
    offer = await request.app[OFFERS].answer(
        site,
        ConversationID(request.match_info["conversation_id"]),
        request.match_info["offer_id"],
        body.answer(),
    )
    return web.json_response(offer_json(offer))


@routes.get(BASE + "/conversations/{conversation_id}/offers")
@MARKETPLACE.operation("A conversation's offers", answers={200: OfferList})
async def get_offers(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    offers = await request.app[OFFERS].offers(
        site, ConversationID(request.match_info["conversation_id"])
    )
    return web.json_response({"offers": [offer_json(offer) for offer in offers]})


def offer_routes(app: web.Application, offers: OfferDesk) -> None:
    app[OFFERS] = offers
    app.add_routes(routes)
