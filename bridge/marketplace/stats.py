"""The marketplace's API for response times: `GET /api/v1/sites/{site}/sellers/{id}/stats`
and `GET /api/v1/sites/{site}/stats` (every seller, to rank them), `?days=30` (1–365)."""

from __future__ import annotations

from aiohttp import web

from bridge.core.figures import ResponseFiguresView, SiteFigures
from bridge.core.ids import SellerID
from bridge.core.stats import ResponseStats
from bridge.marketplace.api import BASE, MARKETPLACE, authenticated_site
from bridge.marketplace.bodies import StatsQuery

STATS = web.AppKey("stats", ResponseStats)

routes = web.RouteTableDef()


@routes.get(BASE + "/sellers/{seller_id}/stats")
@MARKETPLACE.operation(
    "A seller's response times over the last days",
    query=StatsQuery,
    answers={200: ResponseFiguresView},
)
async def seller_stats(request: web.Request, query: StatsQuery) -> web.Response:
    site = authenticated_site(request)
    days = query.days
    figures = await request.app[STATS].seller_figures(
        site, SellerID(request.match_info["seller_id"]), days
    )
    return web.json_response(figures.to_json())


@routes.get(BASE + "/stats")
@MARKETPLACE.operation(
    "Every seller's response times, to rank them", query=StatsQuery, answers={200: SiteFigures}
)
async def site_stats(request: web.Request, query: StatsQuery) -> web.Response:
    site = authenticated_site(request)
    days = query.days
    found = await request.app[STATS].site_figures(site, days)
    return web.json_response({"days": days, "sellers": [figures.to_json() for figures in found]})


def stats_routes(app: web.Application, stats: ResponseStats) -> None:
    app[STATS] = stats
    app.add_routes(routes)
