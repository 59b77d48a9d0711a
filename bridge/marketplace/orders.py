"""The marketplace's API for a conversation's orders:
`PUT /api/v1/sites/{site}/conversations/{id}/orders/{order_id}` and `GET .../orders`."""

from __future__ import annotations

from aiohttp import web

from bridge.core.ids import ConversationID
from bridge.core.orders import OrderDesk, OrderList, OrderView, order_json
from bridge.marketplace.api import BASE, MARKETPLACE, authenticated_site
from bridge.marketplace.bodies import OrderBody

ORDERS = web.AppKey("orders", OrderDesk)

routes = web.RouteTableDef()


@routes.put(BASE + "/conversations/{conversation_id}/orders/{order_id}")
@MARKETPLACE.operation(
    "Attach an order to the conversation or change it",
    body=OrderBody,
    answers={200: OrderView, 201: OrderView},
    errors=(409,),
    description="201 when the order is new, 200 when it changed or was already so; a status "
    "that moves backwards is 409.",
)
async def put_order(request: web.Request, body: OrderBody) -> web.Response:
    site = authenticated_site(request)
    order, created = await request.app[ORDERS].put(
        site,
        ConversationID(request.match_info["conversation_id"]),
        request.match_info["order_id"],
        body.fields(),
    )
    return web.json_response(order_json(order), status=201 if created else 200)


@routes.get(BASE + "/conversations/{conversation_id}/orders")
@MARKETPLACE.operation("A conversation's orders", answers={200: OrderList})
async def get_orders(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    orders = await request.app[ORDERS].orders(
        site, ConversationID(request.match_info["conversation_id"])
    )
    return web.json_response({"orders": [order_json(order) for order in orders]})


def order_routes(app: web.Application, orders: OrderDesk) -> None:
    app[ORDERS] = orders
    app.add_routes(routes)
