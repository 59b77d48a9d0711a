"""What every HTTP server of the bridge shares: JSON errors, body parsing, access logging."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bridge.errors import BadRequest, BridgeError, TooLarge

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: BridgeError) -> web.Response:
    return web.json_response(error.to_json(), status=error.status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every failure into `{"errcode", "error"}`; log the unexpected with a traceback."""
    try:
        return await handler(request)
    except BridgeError as error:
        return error_response(error)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        errcode = {404: "M_NOT_FOUND", 405: "M_UNRECOGNIZED", 413: "M_TOO_LARGE"}.get(
            error.status, "M_UNKNOWN"
        )
        return web.json_response({"errcode": errcode, "error": error.reason}, status=error.status)
    except Exception:
        logger.exception("Unexpected error in %s %s", request.method, request.path)
        return web.json_response(
            {"errcode": "BAZAAR_INTERNAL", "error": "Internal error; the bridge logged it"},
            status=500,
        )


async def read_json(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise TooLarge(f"The body is larger than {MAX_JSON_BYTES} bytes")
    raw = await request.content.read(MAX_JSON_BYTES + 1)
    if len(raw) > MAX_JSON_BYTES:
        raise TooLarge(f"The body is larger than {MAX_JSON_BYTES} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON", "M_NOT_JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object", "M_BAD_JSON")
    return body


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
