"""The marketplace's API for a seller's canned replies:
`/api/v1/sites/{site}/sellers/{seller_id}/templates[/{name}[/file]]`."""

from __future__ import annotations

from aiohttp import web

from bridge.core.ids import SellerID
from bridge.core.template_rules import TemplateList, TemplateView, check_name, template_json
from bridge.core.templates import TemplateDesk
from bridge.errors import BadRequest
from bridge.http import read_upload
from bridge.marketplace.api import BASE, MARKETPLACE, authenticated_site
from bridge.marketplace.bodies import FileForm, TemplateBody

TEMPLATES = web.AppKey("templates", TemplateDesk)
TEMPLATE = BASE + "/sellers/{seller_id}/templates/{name}"

routes = web.RouteTableDef()


def _seller_id(request: web.Request) -> SellerID:
    return SellerID(request.match_info["seller_id"])


@routes.get(BASE + "/sellers/{seller_id}/templates")
@MARKETPLACE.operation("A seller's templates, in order", answers={200: TemplateList})
async def list_templates(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    found = await request.app[TEMPLATES].templates(site, _seller_id(request))
    return web.json_response({"templates": [template_json(t) for t in found]})


@routes.put(TEMPLATE)
@MARKETPLACE.operation(
    "Create or change a template",
    body=TemplateBody,
    answers={200: TemplateView, 201: TemplateView},
)
async def put_template(request: web.Request, body: TemplateBody) -> web.Response:
    site = authenticated_site(request)
    name = check_name(request.match_info["name"])
    template, created = await request.app[TEMPLATES].put(
        site, _seller_id(request), name, body.text, position=body.position, visible=body.visible
    )
    return web.json_response(template_json(template), status=201 if created else 200)


@routes.delete(TEMPLATE)
@MARKETPLACE.operation("Delete a template", answers={204: None})
async def delete_template(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    await request.app[TEMPLATES].delete(site, _seller_id(request), request.match_info["name"])
    return web.Response(status=204)


@routes.put(TEMPLATE + "/file")
@MARKETPLACE.operation(
    "Attach a file to a template (checked like an upload)",
    form=FileForm,
    answers={200: TemplateView},
)
async def put_file(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    desk = request.app[TEMPLATES]
    # An unknown seller or template is refused before the file's bytes are read.
    template = await desk.template(site, _seller_id(request), request.match_info["name"])
    if request.content_type != "multipart/form-data":
        raise BadRequest("Send the file as multipart/form-data with a 'file' part")
    upload = await read_upload(request, desk.max_upload_bytes)
    if upload.data is None:
        raise BadRequest("Attach the file as the form's 'file' part", "M_MISSING_PARAM")
    return web.json_response(
        template_json(await desk.attach(template, upload.data, upload.filename))
    )


@routes.delete(TEMPLATE + "/file")
@MARKETPLACE.operation("Take a template's file off", answers={200: TemplateView})
async def delete_file(request: web.Request) -> web.Response:
    site = authenticated_site(request)
    desk = request.app[TEMPLATES]
    template = await desk.template(site, _seller_id(request), request.match_info["name"])
    return web.json_response(template_json(await desk.detach(template)))


def template_routes(app: web.Application, templates: TemplateDesk) -> None:
    app[TEMPLATES] = templates
    app.add_routes(routes)
