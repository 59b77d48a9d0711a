"""The marketplace's API for a buyer's data rights: `DELETE /api/v1/sites/{site}/buyers/{id}`
erases the buyer, `GET …/buyers/{id}/export` gives everything about them as a zip."""

from __future__ import annotations

from aiohttp import web

from bridge.core.erasure import BuyerErasure, BuyerExport
from bridge.core.ids import BuyerID
from bridge.core.validation import require_id
from bridge.core.views import ErasedBuyer
from bridge.marketplace.api import BASE, MARKETPLACE, authenticated_site
from bridge.openapi import File

ERASURE = web.AppKey("erasure", BuyerErasure)
EXPORT = web.AppKey("export", BuyerExport)

routes = web.RouteTableDef()


@routes.delete(BASE + "/buyers/{buyer_id}")
@MARKETPLACE.operation(
    "Erase a buyer",
    answers={200: ErasedBuyer},
    description="200 once the database holds nothing of the buyer; the redactions in Matrix "
    "follow in the background. Again for an erased buyer: 200 again.",
)
async def erase_buyer(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    buyer_id = BuyerID(require_id(request.match_info["buyer_id"], "buyer_id"))
    await request.app[ERASURE].erase(site, buyer_id)
    return web.json_response({"buyer_id": buyer_id, "erased": True})


@routes.get(BASE + "/buyers/{buyer_id}/export")
@MARKETPLACE.operation(
    "Everything about a buyer, as a zip of JSON and files", answers={200: File("application/zip")}
)
async def export_buyer(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    buyer_id = BuyerID(require_id(request.match_info["buyer_id"], "buyer_id"))
    archive = await request.app[EXPORT].export(site, buyer_id)
    return web.Response(
        body=archive,
        content_type="application/zip",
        headers={
            "Content-Disposition": 'attachment; filename="buyer-export.zip"',
            "Cache-Control": "no-store",
        },
    )


def erasure_routes(app: web.Application, erasure: BuyerErasure, export: BuyerExport) -> None:
    app[ERASURE] = erasure
    app[EXPORT] = export
    app.add_routes(routes)
