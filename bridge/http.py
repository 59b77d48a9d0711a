"""What every HTTP server of the bridge shares: JSON errors, body parsing, access logging."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, ClientPayloadError, web

from bridge.core.attachments import Download
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


@dataclass(frozen=True)
class Upload:
    """A multipart form: its short text fields and at most one file."""

    fields: dict[str, str]
    data: bytes | None
    filename: str | None


# Room for the form's text fields and part headers beside the file itself.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FIELD_BYTES = 64 * 1024
MAX_FORM_FIELDS = 8


async def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """Read a multipart/form-data body with one `file` part, refusing it as soon as it
    passes `max_bytes`; nothing is kept from a body that breaks off."""
    if request.content_length is not None and request.content_length > (
        max_bytes + FORM_OVERHEAD_BYTES
    ):
        raise TooLarge(f"The file is larger than {max_bytes // (1024 * 1024)} MB")
    fields: dict[str, str] = {}
    data: bytes | None = None
    filename: str | None = None
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise BadRequest("Nested multipart bodies are not accepted")
            if part.name == "file":
                if data is not None:
                    raise BadRequest("Send one file per message", "BAZAAR_ONE_FILE")
                filename = part.filename
                data = await _read_part(part, max_bytes, "file")
            elif part.name:
                if len(fields) == MAX_FORM_FIELDS:
                    raise BadRequest(f"A form takes at most {MAX_FORM_FIELDS} fields")
                raw = await _read_part(part, MAX_FIELD_BYTES, part.name)
                fields[part.name] = raw.decode("utf-8", errors="replace")
    except (ClientPayloadError, asyncio.IncompleteReadError, ConnectionResetError) as error:
        raise BadRequest("The upload broke off; send it again", "BAZAAR_UPLOAD_INTERRUPTED") from (
            error
        )
    except (AssertionError, ValueError) as error:
        # aiohttp's multipart reader asserts on malformed boundaries and headers.
        raise BadRequest(f"The body is not a valid multipart form: {error}") from None
    return Upload(fields, data, filename)


async def _read_part(part: BodyPartReader, limit: int, name: str) -> bytes:
    chunks = bytearray()
    while chunk := await part.read_chunk(256 * 1024):
        chunks += chunk
        if len(chunks) > limit:
            if name == "file":
                raise TooLarge(f"The file is larger than {limit // (1024 * 1024)} MB")
            raise TooLarge(f"The field '{name}' is too long")
    return bytes(chunks)


# A file served from the bridge's origin must never run as a page there: no scripts, no
# plugins, no framing, sandboxed even when opened directly.
FILE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "sandbox",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, max-age=86400",
}


def file_response(download: Download) -> web.Response:
    """An attachment's bytes: images inline, everything else as a download."""
    disposition = "inline" if download.inline else "attachment"
    ascii_name = download.name.encode("ascii", "ignore").decode() or "file"
    ascii_name = ascii_name.replace('"', "").replace("\\", "")
    return web.Response(
        body=download.data,
        headers={
            **FILE_SECURITY_HEADERS,
            "Content-Type": download.content_type,
            "Content-Disposition": f'{disposition}; filename="{ascii_name}"; '
            f"filename*=UTF-8''{quote(download.name, safe='')}",
        },
    )


def bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None
