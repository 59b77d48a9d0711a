"""The demo marketplace's webhook endpoint: it checks each event's signature and prints a line.

It does what a marketplace's backend must do with every webhook: recompute the HMAC-SHA256
of the raw body with the site's `webhook_secret` before trusting a byte of it, and drop an
event whose `id` it has already seen (delivery is at least once).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

SIGNATURE_HEADER = "X-Bazaar-Signature"
PATH = "/webhooks"
# Event ids remembered to spot a repeat; a demo's worth, not a database.
REMEMBERED = 10_000
TEXT_SHOWN = 60


def _say(line: str) -> None:
    print(line, flush=True)


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.encode(), expected.encode())


def _quoted(text: str) -> str:
    flat = " ".join(text.split())
    if len(flat) > TEXT_SHOWN:
        flat = flat[: TEXT_SHOWN - 1].rstrip() + "…"
    return json.dumps(flat, ensure_ascii=False)


def _message_words(kind: str, message: Mapping[str, Any]) -> list[str]:
    sender = str(message.get("sender", "?"))
    if kind == "message.status":
        status = str(message.get("status", "?"))
        error = message.get("error")
        return [f"{status}: {error}" if error else status]
    if kind == "message.deleted":
        return [sender, "removed a message"]
    words = [sender]
    text = message.get("text")
    if isinstance(text, str) and text:
        words.append(_quoted(text))
    attachments = message.get("attachments")
    if isinstance(attachments, list) and attachments:
        names = ", ".join(str(a.get("name")) for a in attachments if isinstance(a, dict))
        words.append(f"[{names}]")
    original = message.get("original")
    if isinstance(original, dict) and original.get("lang"):
        words.append(f"(translated from {original['lang']}: {_quoted(str(original['text']))})")
    return words


def _conversation_words(kind: str, conversation: Mapping[str, Any]) -> list[str]:
    if kind == "conversation.state":
        return [str(conversation.get("state", "?"))]
    context = conversation.get("context")
    if not isinstance(context, dict):
        return []
    return [str(context.get("type", "?")), _quoted(str(context.get("title") or context.get("id")))]


def describe(event: Mapping[str, Any]) -> str:
    """One line for a checked event: `webhook ✓ message.created conv=… buyer "Hello!"`."""
    kind = str(event.get("type", "?"))
    words = [f"webhook ✓ {kind}", f"conv={event.get('conversation_id')}"]
    message = event.get("message")
    conversation = event.get("conversation")
    if isinstance(message, dict):
        words += _message_words(kind, message)
    elif isinstance(conversation, dict):
        words += _conversation_words(kind, conversation)
    return " ".join(words)


class WebhookPrinter:
    """An aiohttp server on a free loopback port; `url` is known once it has started."""

    def __init__(
        self, secret: str, *, host: str = "127.0.0.1", say: Callable[[str], None] = _say
    ) -> None:
        self.secret = secret
        self.host = host
        self.url = ""
        self._say = say
        self._seen: dict[str, None] = {}
        self._listeners: dict[str, list[Callable[[Mapping[str, Any]], None]]] = {}
        self._runner: web.AppRunner | None = None

    def listen(self, kind: str, listener: Callable[[Mapping[str, Any]], None]) -> None:
        """`listener` gets each checked, new event of `kind`; it must return at once (start
        slow work in the background) so the webhook is acknowledged promptly."""
        self._listeners.setdefault(kind, []).append(listener)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post(PATH, self.receive)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        _host, port = self._runner.addresses[0][:2]
        self.url = f"http://{self.host}:{port}{PATH}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        if not signature_matches(self.secret, body, request.headers.get(SIGNATURE_HEADER, "")):
            self._say(
                f"webhook ✗ BAD SIGNATURE: refused (401) an event whose {SIGNATURE_HEADER} "
                "is not the HMAC-SHA256 of its body with the site's webhook_secret"
            )
            raise web.HTTPUnauthorized(text="bad signature")
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self._say("webhook ✗ signed, but its body is not a JSON object: refused (400)")
            raise web.HTTPBadRequest(text="not a JSON object")
        event_id = str(event.get("id"))
        if event_id in self._seen:
            self._say(f"webhook ✓ {event.get('type')} {event_id} again: a repeat, dropped")
        else:
            self._seen[event_id] = None
            if len(self._seen) > REMEMBERED:
                del self._seen[next(iter(self._seen))]
            self._say(describe(event))
            for listener in self._listeners.get(str(event.get("type")), []):
                listener(event)
        return web.Response(status=204)
