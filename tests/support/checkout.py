"""Where the project's own files are, for tests that run its commands or read its samples."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
