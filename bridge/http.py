"""What every HTTP server of the bridge shares: JSON errors, body parsing, access logging."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from bridge.core.attachments import Download
from bridge.errors import BadRequest, BodyTimeout, BridgeError, TooLarge

logger = logging.getLogger(__name__)

MAX_JSON_BYTES = 256 * 1024
DEFAULT_BODY_TIMEOUT = 30.0
# How long a request body may take to arrive whole; each server sets its own.
BODY_TIMEOUT = web.AppKey("body_timeout", float)
# Which failures are a part being away for a while (the store down or out of connections)
# rather than a fault of the bridge: they are answered 503 with a Retry-After, not 500.
OUTAGES: web.AppKey[Callable[[BaseException], bool]] = web.AppKey("outages")
# Seconds a caller is asked to wait after a 503 for an outage.
OUTAGE_RETRY_AFTER = 2

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class _MalformedRequests(logging.Filter):
    """aiohttp logs each request it can't parse (a bad Content-Length, a 100 KB header, a
    raw non-ASCII path) at ERROR with a traceback; it has answered 400 already, so one
    INFO line says enough, and a flood of them costs the log little."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.msg = f"{record.msg}: %s"
            record.args = (*(record.args if isinstance(record.args, tuple) else ()), _short(error))
            record.exc_info = record.exc_text = None
        return True


# The servers' own logger: pass it as the AppRunner's `logger`.
protocol_logger = logging.getLogger("bridge.http.protocol")
protocol_logger.addFilter(_MalformedRequests())


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
    except Exception as error:
        is_outage = request.config_dict.get(OUTAGES)
        if is_outage is not None and is_outage(error):
            logger.warning("%s %s met an outage: %r", request.method, request.path, error)
            return web.json_response(
                {"errcode": "BAZAAR_UNAVAILABLE", "error": "The store is busy or away; try again"},
                status=503,
                headers={"Retry-After": str(OUTAGE_RETRY_AFTER)},
            )
        logger.exception("Unexpected error in %s %s", request.method, request.path)
        return web.json_response(
            {"errcode": "BAZAAR_INTERNAL", "error": "Internal error; the bridge logged it"},
            status=500,
        )


def body_timeout(request: web.Request) -> float:
    return request.config_dict.get(BODY_TIMEOUT, DEFAULT_BODY_TIMEOUT)


@contextlib.asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bound the time a body may take: a caller trickling bytes holds nothing for long."""
    seconds = body_timeout(request)
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise BodyTimeout(f"The body did not arrive within {seconds:g} s") from None


async def read_body(request: web.Request, max_bytes: int) -> bytes:
    """The whole body, however many packets it comes in, refused as soon as it passes
    `max_bytes`; a body that breaks off before its Content-Length is refused, never used."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise TooLarge(f"The body is larger than {max_bytes} bytes")
    body = bytearray()
    try:
        async with body_deadline(request):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > max_bytes:
                    raise TooLarge(f"The body is larger than {max_bytes} bytes")
    except (ClientPayloadError, asyncio.IncompleteReadError, ConnectionResetError) as error:
        raise BadRequest("The body broke off; send it again", "BAZAAR_BODY_INTERRUPTED") from (
            error
        )
    if request.content_length is not None and len(body) != request.content_length:
        raise BadRequest(
            "The body is shorter than its Content-Length; send it again",
            "BAZAAR_BODY_INTERRUPTED",
        )
    return bytes(body)


def parse_json(raw: bytes, *, mend: bool = False) -> Any:
    """JSON text as Python values, or a BadRequest that says what is wrong with it.

    Besides malformed text this refuses nesting deep enough to exhaust the parser, and
    text no database column can hold: NUL, and lone surrogates such as "\\ud800" (UTF-8
    can't carry them). With `mend`, such characters become U+FFFD instead, for senders
    that must not be refused (the homeserver).
    """
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("The body is not valid JSON", "M_NOT_JSON") from None
    except RecursionError:
        raise BadRequest("The body's JSON is nested too deeply", "M_NOT_JSON") from None
    if not _may_hold_unstorable_text(raw):
        return value
    try:
        mended = _mended(value)
    except RecursionError:
        raise BadRequest("The body's JSON is nested too deeply", "M_NOT_JSON") from None
    if mend:
        return mended
    if mended != value:
        raise BadRequest(
            "The body holds text that can't be stored (NUL or a lone surrogate)", "M_NOT_JSON"
        )
    return value


# Such text comes only from a \u0000 or \uD800–\uDFFF escape, or from bytes that start with
# 0xED (json.loads lets them through as surrogates): most bodies hold none of these.
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def _may_hold_unstorable_text(raw: bytes) -> bool:
    return b"\xed" in raw or _UNSTORABLE_ESCAPE.search(raw) is not None


def _mended(value: Any) -> Any:
    if isinstance(value, str):
        return _UNSTORABLE_TEXT.sub("\ufffd", value)
    if isinstance(value, list):
        return [_mended(item) for item in value]
    if isinstance(value, dict):
        return {_mended(key): _mended(item) for key, item in value.items()}
    return value


async def read_json(request: web.Request, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    body = parse_json(await read_body(request, max_bytes))
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
        async with body_deadline(request):
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader):
                    raise BadRequest("Nested multipart bodies are not accepted")
                if part.name == "file":
                    if data is not None:
                        raise BadRequest("Send one file per message", "BAZAAR_ONE_FILE")
                    filename = _printable(part.filename)
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
    except (
        AssertionError,
        ValueError,
        HttpProcessingError,
        BadContentDispositionHeader,
        BadContentDispositionParam,
    ) as error:
        # aiohttp's multipart reader asserts on malformed boundaries and headers, refuses a
        # part header longer than it reads, and warns of a broken Content-Disposition (an
        # error where warnings are errors; elsewhere the part has no name and is refused).
        raise BadRequest(f"The body is not a valid multipart form: {_short(error)}") from None
    return Upload(fields, data, filename)


def _printable(name: str | None) -> str | None:
    """A file name as a person could have typed it: no NUL, CR, LF or other controls."""
    if name is None:
        return None
    return "".join(c for c in name if c.isprintable()).strip()[:255] or None


def _short(error: BaseException) -> str:
    return str(error).replace("\n", " ")[:200]


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
