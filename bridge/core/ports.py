"""The ports through which the domain talks to Matrix, the media store and translation,
and the failures they report.

`matrix/` implements `MatrixPort`, `media/` `MediaPort`, `translation/` the provider and
detector; the store's ports are in `core/storage.py`. The domain never sees an HTTP
response or a nio type.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Protocol

from bridge.core.ids import EventID, MessageID, RoomID, UserID
from bridge.core.models import Attachment, Buyer, Conversation, Member, Message, Seller


class HomeserverUnavailable(Exception):
    """The homeserver could not be reached or answered with a server error: try again later.

    `maybe_done` says the request may have been carried out all the same: it reached the
    homeserver and the answer was lost (a cut connection, a timeout, a server error). It is
    False only when the request surely did nothing (no connection, or rate limited)."""

    def __init__(self, message: str, *, maybe_done: bool = True) -> None:
        super().__init__(message)
        self.maybe_done = maybe_done


class MatrixRejected(Exception):
    """The homeserver refused a request: retrying the same request now won't help.

    `permanent` says no later try can help either: the request itself is what Matrix
    refuses (a malformed or too long name, a body over a limit). Otherwise the refusal is
    about the server's state (a membership, a token), which may change."""

    def __init__(self, errcode: str, error: str, *, permanent: bool = False) -> None:
        super().__init__(f"{errcode}: {error}")
        self.errcode = errcode
        self.error = error
        self.permanent = permanent


class TranslationUnavailable(Exception):
    """The translation provider failed or did not answer in time."""


class TranslationProvider(Protocol):
    """One translation service (Google, DeepL, LibreTranslate, …)."""

    @property
    def name(self) -> str: ...

    async def translate(self, text: str, source: str, target: str) -> str:
        """`text` from `source` into `target` (ISO 639-1 codes); raises
        TranslationUnavailable on any failure, including a timeout."""


class LanguageDetector(Protocol):
    def detect(self, text: str) -> str | None:
        """The ISO 639-1 code of the text's language, or None when unsure."""


class MediaPort(Protocol):
    """Attachments' bytes: checked and cleaned on the way in, kept by their sha256."""

    max_bytes: int

    async def accept_upload(self, data: bytes, name: str | None) -> Attachment:
        """Check a buyer's file (real type, size, allow-list), strip an image's metadata and
        make its thumbnail, keep the bytes; raises BadRequest/TooLarge on bad input. The
        attachment id is left empty for the caller to set."""

    async def keep(self, data: bytes) -> str:
        """Keep bytes as they are (a seller's file fetched from Matrix); their sha256."""

    async def read(self, sha256: str) -> bytes | None: ...

    async def checked_type(self, data: bytes) -> str | None:
        """The type the bytes really are, when it is one the bridge lets through. Looking
        through a big office file takes seconds, so it runs off the event loop."""


class MatrixPort(Protocol):
    async def create_conversation_room(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> RoomID: ...

    async def send_buyer_message(
        self, conversation: Conversation, buyer: Buyer, message: Message
    ) -> EventID: ...

    async def find_buyer_messages(
        self,
        conversation: Conversation,
        buyer: Buyer,
        message_ids: Collection[MessageID],
        since: datetime,
    ) -> dict[MessageID, EventID]:
        """Which of these buyer messages are in the room already, and as which event, looking
        back to `since` (the oldest one's creation): after a send whose answer was lost."""

    async def update_context(self, conversation: Conversation, buyer: Buyer) -> None: ...

    async def upload_as_buyer(self, buyer: Buyer, data: bytes, content_type: str, name: str) -> str:
        """Put a buyer's file in the homeserver's media repository as the buyer's ghost;
        returns the mxc:// URI."""

    async def download(self, mxc: str, max_bytes: int) -> bytes:
        """The bytes behind an mxc:// URI (a seller's file)."""

    async def sync_members(
        self,
        conversation: Conversation,
        seller: Seller,
        buyer: Buyer,
        members: Sequence[Member],
        site_name: str,
    ) -> None:
        """Invite missing members, remove anyone else, and set the power levels (and the
        conversation's state) to match the roles and the conversation's blocks."""

    async def send_notice(self, room_id: RoomID, text: str, key: str | None = None) -> None:
        """The bot says something in a room; the same `key` is said only once."""

    async def send_bot_file(self, room_id: RoomID, attachment: Attachment, data: bytes) -> None:
        """The bot posts a file in a room (uploaded as the bot)."""

    async def tell_seller(
        self,
        seller: Seller,
        members: Sequence[Member],
        site_name: str,
        text: str,
        key: str | None = None,
    ) -> None:
        """The bot says something in the seller's management room (the seller's Space is
        made when missing); the same `key` is said only once."""

    async def marketplace_room(
        self, seller: Seller, members: Sequence[Member], site_name: str
    ) -> RoomID:
        """The room the seller's members share with the site's admins (made when missing)."""

    async def display_name(self, user_id: UserID) -> str | None: ...

    async def send_read_receipt(
        self, conversation: Conversation, buyer: Buyer, event_id: EventID
    ) -> None: ...

    async def set_typing(self, conversation: Conversation, buyer: Buyer, typing: bool) -> None: ...
