"""The bridge's own copy of checked attachments: a directory of blobs named by their SHA-256.

`ab/cdef…` fans the blobs out over 256 folders. A blob is written to a temporary file beside
its final place and renamed into it, so a crash never leaves half a file under a real name.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path

_SHA256 = re.compile(r"[0-9a-f]{64}")
_TEMPORARY_PREFIX = ".incoming-"


class MediaStore:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    async def put(self, data: bytes) -> str:
        """Keep `data` and return its SHA-256 (hex); the same bytes twice are kept once."""
        return await asyncio.to_thread(self._put, data)

    def path(self, sha256: str) -> Path | None:
        """Where the blob lives, or None when it isn't here.

        ValueError for anything but 64 lower-case hex digits, so no id reaches outside
        the directory."""
        target = self._target(sha256)
        return target if target.is_file() else None

    async def read(self, sha256: str) -> bytes | None:
        """The blob's bytes, or None when it isn't here; ValueError as for `path`."""
        target = self._target(sha256)
        try:
            return await asyncio.to_thread(target.read_bytes)
        except FileNotFoundError:
            return None

    async def forget(self, sha256: str) -> None:
        """Delete the blob (an erased buyer's file); one already gone is fine."""
        target = self._target(sha256)
        await asyncio.to_thread(target.unlink, missing_ok=True)

    def _target(self, sha256: str) -> Path:
        if not _SHA256.fullmatch(sha256):
            raise ValueError(f"not a SHA-256 in lower-case hex: {sha256[:80]!r}")
        return self._directory / sha256[:2] / sha256[2:]

    def _put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self._target(sha256)
        if target.is_file():
            return sha256
        target.parent.mkdir(exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=_TEMPORARY_PREFIX)
        try:
            with os.fdopen(descriptor, "wb") as stream:
                stream.write(data)
                stream.flush()
                os.fsync(stream.fileno())
            # Atomic on POSIX and Windows; two puts of the same bytes race harmlessly.
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        _sync_directory(target.parent)
        return sha256


def _sync_directory(directory: Path) -> None:
    """Make the rename itself durable, where the platform allows opening a directory."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
