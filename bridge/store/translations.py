"""The translation cache: one provider's translation of one text into one language."""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bridge.store.base import Sessions
from bridge.store.records import utc_now
from bridge.store.schema import TranslationRow


def text_key(text: str) -> str:
    """Texts are found by their SHA-256, so a long message costs an index entry of 64 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class TranslationStore(Sessions):
    async def cached_translation(
        self, provider: str, source: str, target: str, text: str
    ) -> str | None:
        async with self._reads() as session:
            translated: str | None = await session.scalar(
                select(TranslationRow.translated).where(
                    TranslationRow.provider == provider,
                    TranslationRow.source_lang == source,
                    TranslationRow.target_lang == target,
                    TranslationRow.text_sha256 == text_key(text),
                )
            )
            return translated

    async def keep_translation(
        self, provider: str, source: str, target: str, text: str, translated: str
    ) -> None:
        """Remember a translation; when it is already kept (two messages with the same text
        translated at once), the first one stays."""
        key = text_key(text)
        try:
            async with self._writes.begin() as session:
                kept = await session.scalar(
                    select(TranslationRow.seq).where(
                        TranslationRow.provider == provider,
                        TranslationRow.source_lang == source,
                        TranslationRow.target_lang == target,
                        TranslationRow.text_sha256 == key,
                    )
                )
                if kept is not None:
                    return
                session.add(
                    TranslationRow(
                        provider=provider,
                        source_lang=source,
                        target_lang=target,
                        text_sha256=key,
                        translated=translated,
                        created_at=utc_now(),
                    )
                )
        except IntegrityError:
            # PostgreSQL: another connection kept the same translation between our check
            # and our insert. (SQLite has one writer, so the check is enough there.)
            return
