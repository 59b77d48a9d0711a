"""The media store on a real directory: blobs named by their hash, written whole or not at all."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from bridge.media import blobs
from bridge.media.blobs import MediaStore
from tests.support import files


def files_under(directory: Path) -> list[Path]:
    return sorted(path for path in directory.rglob("*") if path.is_file())


async def test_a_blob_is_kept_under_its_sha256_and_read_back(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = files.pdf()

    sha256 = await store.put(data)

    assert sha256 == hashlib.sha256(data).hexdigest()
    assert store.path(sha256) == tmp_path / sha256[:2] / sha256[2:]
    assert await store.read(sha256) == data
    assert files_under(tmp_path) == [tmp_path / sha256[:2] / sha256[2:]]


async def test_the_directory_is_created_when_missing(tmp_path: Path) -> None:
    directory = tmp_path / "not" / "yet"

    store = MediaStore(directory)
    sha256 = await store.put(b"hello")

    assert (directory / sha256[:2] / sha256[2:]).read_bytes() == b"hello"


async def test_putting_the_same_bytes_again_changes_nothing(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    first = await store.put(b"same bytes")
    path = store.path(first)
    assert path is not None
    written = path.stat()

    again = await asyncio.gather(*(store.put(b"same bytes") for _ in range(5)))

    assert again == [first] * 5
    assert files_under(tmp_path) == [path]
    assert path.stat().st_ino == written.st_ino
    assert path.stat().st_mtime_ns == written.st_mtime_ns


async def test_concurrent_puts_of_new_bytes_leave_one_whole_file(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    data = os.urandom(256 * 1024)

    ids = await asyncio.gather(*(store.put(data) for _ in range(8)))

    assert set(ids) == {hashlib.sha256(data).hexdigest()}
    assert [path.read_bytes() for path in files_under(tmp_path)] == [data]


async def test_a_write_that_fails_leaves_neither_a_blob_nor_a_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = MediaStore(tmp_path)

    def crash(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(blobs.os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        await store.put(b"half a file")
    monkeypatch.undo()

    sha256 = hashlib.sha256(b"half a file").hexdigest()
    assert store.path(sha256) is None
    assert await store.read(sha256) is None
    assert files_under(tmp_path) == []
    assert await store.put(b"half a file") == sha256
    assert await store.read(sha256) == b"half a file"


async def test_a_missing_blob_is_none(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    missing = hashlib.sha256(b"never stored").hexdigest()

    assert store.path(missing) is None
    assert await store.read(missing) is None


@pytest.mark.parametrize(
    "sha256",
    [
        "../../../../etc/passwd",
        "ab/../../secret",
        "/etc/passwd",
        "",
        "A" * 64,
        "a" * 63,
        "a" * 65,
        "a" * 64 + "\n",
        "g" * 64,
        "ab/" + "c" * 61,
    ],
)
async def test_anything_but_a_lower_case_sha256_is_refused(tmp_path: Path, sha256: str) -> None:
    store = MediaStore(tmp_path / "media")
    secret = tmp_path / "secret"
    secret.write_text("not for buyers")

    with pytest.raises(ValueError, match="SHA-256"):
        store.path(sha256)
    with pytest.raises(ValueError, match="SHA-256"):
        await store.read(sha256)
