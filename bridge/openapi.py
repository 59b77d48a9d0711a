"""An API's operations, declared once beside their handlers: the pydantic models that check
what a caller sends, the shapes of the answers, and the OpenAPI 3.1 document built from those
same models and the app's own routes, so the document can't drift from the behaviour.

    MARKETPLACE = Api("Bazaar marketplace API", prefix="/api/v1/", security=...)

    @routes.put(BASE + "/sellers/{seller_id}")
    @MARKETPLACE.operation("Create or change a seller", body=SellerBody, answers={200: Seller})
    async def put_seller(request: web.Request, body: SellerBody) -> web.Response: ...

A `body` or `query` model is validated before the handler runs, once the API's `guard` has
let the caller in (a bad token is 401 whatever the body); its refusal is a BadRequest (400,
or 413 for text over its length) that names the field. A handler that must look at the
request first (a file refused before its bytes are read) declares `json=` or `form=` and
calls `validated` itself with that model. A route under the prefix without an operation
makes the document refuse to build, so nothing goes unlisted.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, NotRequired, TypeVar, overload

from aiohttp import web
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic.json_schema import JsonSchemaMode
from pydantic_core import ErrorDetails
from typing_extensions import TypedDict

from bridge.core.validation import PATTERN_REFUSALS, Refusal
from bridge.errors import BadRequest, BridgeError, TooLarge
from bridge.http import read_json

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Model = TypeVar("Model", bound=BaseModel)
ModelHandler = Callable[[web.Request, Model], Awaitable[web.StreamResponse]]

OPENAPI_VERSION: Final = "3.1.0"
_OPERATION_ATTRIBUTE: Final = "__bazaar_operation__"


@dataclass(frozen=True)
class File:
    """An answer that is a file's bytes, not JSON."""

    media_type: str = "application/octet-stream"


Answer = type | File | None


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    json: type[BaseModel] | None
    form: type[BaseModel] | None
    answers: Mapping[int, Answer]
    errors: frozenset[int]
    description: str | None


class ErrorAnswer(TypedDict):
    """Every refusal: a Matrix-style code and a sentence for the developer."""

    errcode: str
    error: str
    retry_after_ms: NotRequired[int]


@dataclass
class Api:
    """One API: its operations, found on the handlers, and its document."""

    title: str
    version: str
    prefix: str
    security_scheme: Mapping[str, Any]
    description: str = ""
    # Checks the caller before any body is read: raises Unauthorized, Forbidden, NotFound.
    guard: Callable[[web.Request], Awaitable[object]] | None = None
    # Statuses any operation may answer: bad input, a bad token, an unknown id, a body
    # too large or too slow, too many calls, the homeserver away.
    errors: frozenset[int] = frozenset({400, 401, 403, 404, 408, 413, 429, 503})
    _document: dict[str, Any] | None = field(default=None, repr=False)
    _served_at: set[str] = field(default_factory=set, repr=False)

    @overload
    def operation(
        self,
        summary: str,
        *,
        body: type[Model],
        answers: Mapping[int, Answer],
        errors: Iterable[int] = (),
        description: str | None = None,
    ) -> Callable[[ModelHandler[Model]], Handler]: ...

    @overload
    def operation(
        self,
        summary: str,
        *,
        query: type[Model],
        answers: Mapping[int, Answer],
        errors: Iterable[int] = (),
        description: str | None = None,
    ) -> Callable[[ModelHandler[Model]], Handler]: ...

    @overload
    def operation(
        self,
        summary: str,
        *,
        answers: Mapping[int, Answer],
        errors: Iterable[int] = (),
        json: type[BaseModel] | None = None,
        form: type[BaseModel] | None = None,
        description: str | None = None,
    ) -> Callable[[Handler], Handler]: ...

    def operation(
        self,
        summary: str,
        *,
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        answers: Mapping[int, Answer],
        errors: Iterable[int] = (),
        json: type[BaseModel] | None = None,
        form: type[BaseModel] | None = None,
        description: str | None = None,
    ) -> Callable[[Any], Handler]:
        declared = Operation(
            summary,
            body,
            query,
            json,
            form,
            answers,
            frozenset(errors) | self.errors,
            description,
        )
        guard = self.guard

        def decorate(handler: Any) -> Handler:
            model = body or query
            if model is None:
                wrapped: Handler = handler
            else:

                @functools.wraps(handler)
                async def with_input(request: web.Request) -> web.StreamResponse:
                    if guard is not None:
                        await guard(request)
                    given = await read_json(request) if body is not None else dict(request.query)
                    answer: web.StreamResponse = await handler(request, validated(model, given))
                    return answer

                wrapped = with_input
            setattr(wrapped, _OPERATION_ATTRIBUTE, declared)
            return wrapped

        return decorate

    def document(self, app: web.Application) -> dict[str, Any]:
        """The OpenAPI 3.1 document of this API's routes in `app`; built once."""
        if self._document is None:
            self._document = _build(self, _operations(self, app))
        return self._document

    def serve(self, app: web.Application, path: str) -> None:
        """Serve the document at `path` (no token: it holds no data)."""

        async def openapi_json(request: web.Request) -> web.Response:
            return web.json_response(self.document(request.app))

        self._served_at.add(path)
        app.router.add_get(path, openapi_json)


def validated(model: type[Model], data: Any) -> Model:
    """`data` as `model`, or the refusal that names the first field that is wrong."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise refusal(model, error.errors(include_url=False)[0]) from None


def refusal(model: type[BaseModel], detail: ErrorDetails) -> BridgeError:
    where = _dotted(detail["loc"])
    kind = detail["type"]
    context = detail.get("ctx") or {}
    errcode = _errcode(model, detail["loc"])
    if kind == "missing":
        return BadRequest(f"'{where}' is required", errcode or "M_MISSING_PARAM")
    if kind == "string_too_long":
        limit = context.get("max_length")
        return TooLarge(f"'{where}' is longer than {limit} characters", errcode)
    if kind == "too_long":
        return BadRequest(f"'{where}' holds at most {context.get('max_length')} items", errcode)
    if kind == "value_error":
        return BadRequest(f"'{where}' {context.get('error')}", errcode)
    if kind == "string_pattern_mismatch" and context.get("pattern") in PATTERN_REFUSALS:
        return BadRequest(f"'{where}' {PATTERN_REFUSALS[context['pattern']]}", errcode)
    message = detail["msg"][:1].lower() + detail["msg"][1:]
    return BadRequest(f"'{where}': {message}", errcode)


def _errcode(model: type[BaseModel], location: tuple[int | str, ...]) -> str | None:
    """The Refusal's errcode on the top-level field at fault, if it carries one."""
    found = model.model_fields.get(str(location[0])) if location else None
    if found is None:
        return None
    return next((m.errcode for m in found.metadata if isinstance(m, Refusal)), None)


def _dotted(location: tuple[int | str, ...]) -> str:
    text = ""
    for part in location:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "body"


# aiohttp's `{name}` and `{name:regex}` placeholders; OpenAPI takes the bare `{name}`.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[^{}]*)?\}")


def _operations(api: Api, app: web.Application) -> list[tuple[str, str, Operation]]:
    found: list[tuple[str, str, Operation]] = []
    unlisted: list[str] = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if (
            not path.startswith(api.prefix)
            or path in api._served_at
            or route.method in ("HEAD", "OPTIONS", "*")
        ):
            continue
        operation = getattr(route.handler, _OPERATION_ATTRIBUTE, None)
        if operation is None:
            unlisted.append(f"{route.method} {path}")
            continue
        found.append((route.method.lower(), _PLACEHOLDER.sub(r"{\1}", path), operation))
    if unlisted:
        raise RuntimeError(f"Routes of {api.title} without an operation: {', '.join(unlisted)}")
    return found


def _build(api: Api, operations: list[tuple[str, str, Operation]]) -> dict[str, Any]:
    shapes = _Shapes()
    paths: dict[str, dict[str, Any]] = {}
    for method, path, operation in sorted(operations, key=lambda found: (found[1], found[0])):
        paths.setdefault(path, {})[method] = _operation(method, path, operation, shapes)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": api.title, "version": api.version, "description": api.description},
        "paths": paths,
        "components": {
            "schemas": shapes.definitions(),
            "securitySchemes": {"token": dict(api.security_scheme)},
        },
        "security": [{"token": []}],
    }


def _operation(method: str, path: str, operation: Operation, shapes: _Shapes) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PLACEHOLDER.findall(path)
    ]
    if operation.query is not None:
        query = operation.query.model_json_schema(ref_template="#/components/schemas/{model}")
        required = set(query.get("required", ()))
        for name, schema in query["properties"].items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": schema}
            )
    described: dict[str, Any] = {
        "operationId": f"{method}{_camel(path)}",
        "summary": operation.summary,
        "parameters": parameters,
        "responses": _responses(operation, shapes),
    }
    if operation.description:
        described["description"] = operation.description
    content: dict[str, Any] = {}
    for model in (operation.body, operation.json):
        if model is not None:
            content["application/json"] = {"schema": shapes.request(model)}
    if operation.form is not None:
        form = shapes.request(operation.form)
        content["multipart/form-data"] = {
            "schema": {
                "allOf": [
                    form,
                    {
                        "type": "object",
                        "properties": {"file": {"contentMediaType": "application/octet-stream"}},
                        "required": ["file"],
                    },
                ]
            }
        }
    if content:
        described["requestBody"] = {"required": True, "content": content}
    return described


def _responses(operation: Operation, shapes: _Shapes) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, answer in sorted(operation.answers.items()):
        if answer is None:
            responses[str(status)] = {"description": "Done; no body"}
        elif isinstance(answer, File):
            responses[str(status)] = {
                "description": "The file's bytes",
                "content": {answer.media_type: {}},
            }
        else:
            responses[str(status)] = {
                "description": answer.__doc__.strip().splitlines()[0]
                if answer.__doc__
                else answer.__name__,
                "content": {"application/json": {"schema": shapes.answer(answer)}},
            }
    error = {"application/json": {"schema": shapes.answer(ErrorAnswer)}}
    for status in sorted(operation.errors):
        responses[str(status)] = {"description": _ERROR_MEANINGS[status], "content": error}
    return responses


_ERROR_MEANINGS: Final = {
    400: "The request is malformed or a field is wrong",
    401: "No token, or one the bridge does not know",
    403: "The token may not do this",
    404: "No such site, seller, buyer, conversation or file",
    408: "The body did not arrive in time",
    409: "The request conflicts with what is stored",
    413: "The body or a field is too large",
    429: "Too many requests; retry after retry_after_ms",
    503: "The homeserver or the store is away; try again",
}


def _camel(path: str) -> str:
    words = re.findall(r"[A-Za-z0-9]+", _PLACEHOLDER.sub(r"by_\1", path))
    return "".join(word[:1].upper() + word[1:] for word in words)


class _Shapes:
    """The schemas of the document's models, each once under components/schemas.

    A reference handed out is filled in when the definitions are made, since pydantic
    names a model only once it has seen them all (`Seller-Input` beside `Seller-Output`
    where the two differ)."""

    def __init__(self) -> None:
        self._wanted: dict[tuple[Any, JsonSchemaMode], TypeAdapter[Any]] = {}
        self._references: list[tuple[tuple[Any, JsonSchemaMode], dict[str, Any]]] = []

    def request(self, model: type) -> dict[str, Any]:
        return self._reference(model, "validation")

    def answer(self, shape: type) -> dict[str, Any]:
        return self._reference(shape, "serialization")

    def _reference(self, shape: type, mode: JsonSchemaMode) -> dict[str, Any]:
        self._wanted.setdefault((shape, mode), TypeAdapter(shape))
        reference: dict[str, Any] = {}
        self._references.append(((shape, mode), reference))
        return reference

    def definitions(self) -> dict[str, Any]:
        inputs = [(key, key[1], adapter) for key, adapter in self._wanted.items()]
        schemas, definitions = TypeAdapter.json_schemas(
            inputs, ref_template="#/components/schemas/{model}"
        )
        for key, reference in self._references:
            reference.update(schemas[key, key[1]])
        return dict(sorted(definitions.get("$defs", {}).items()))
