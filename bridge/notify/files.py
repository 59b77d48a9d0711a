"""The files of a buyer's digest, as links: `GET /mail/v1/files/{token}/{attachment_id}`.

The mail's token (the one its Reply-To and unsubscribe link carry, one per buyer and
conversation) stands in for the widget's buyer token, which a mail can't hold: it opens the
files of that one conversation, served as the widget serves them (type checked by the
bytes, images inline, the rest as downloads, no referrer, no cache)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from bridge.core.attachments import AttachmentFiles, Download
from bridge.core.seller_storage import ReplyTokens
from bridge.core.storage import ConversationRecords
from bridge.errors import NotFound
from bridge.http import file_response

BASE = "/mail/v1/files"


class MailedFilesStore(ReplyTokens, ConversationRecords, Protocol):
    """The store as the digest's file links use it."""


class MailedFiles:
    def __init__(self, store: MailedFilesStore, files: AttachmentFiles) -> None:
        self._store = store
        self._files = files

    async def download(self, token: str, attachment_id: str, *, thumbnail: bool) -> Download:
        named = await self._store.by_reply_token(token) if token.isalnum() else None
        conversation = (
            await self._store.get_conversation(named[0], named[2]) if named is not None else None
        )
        # A token of another conversation, or none, looks like an unknown file.
        if named is None or conversation is None or conversation.buyer_id != named[1]:
            raise NotFound("Unknown file link", "BAZAAR_UNKNOWN_ATTACHMENT")
        return await self._files.download(conversation, attachment_id, thumbnail=thumbnail)


def file_link(public_url: str, token: str, attachment_id: str) -> str:
    return f"{public_url}{BASE}/{token}/{attachment_id}"


MAILED_FILES = web.AppKey("mailed_files", MailedFiles)
routes = web.RouteTableDef()


@routes.get(BASE + "/{token}/{attachment_id}")
async def mailed_file(request: web.Request) -> web.Response:
    download = await request.app[MAILED_FILES].download(
        request.match_info["token"],
        request.match_info["attachment_id"],
        thumbnail=request.query.get("thumbnail") in ("1", "true"),
    )
    response = file_response(download)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def mailed_file_routes(app: web.Application, files: MailedFiles) -> None:
    app[MAILED_FILES] = files
    app.add_routes(routes)
