"""Content hashes and deterministic chunk ids.

A chunk id depends only on the file's path, the chunk's position and the chunk's text,
so indexing the same file twice writes the same ids (an upsert, never a duplicate), and
an edited file gets new ids exactly where its text changed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["chunk_id", "sha256_bytes", "sha256_file", "text_hash"]

_BLOCK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def text_hash(text: str) -> str:
    """Hash of a chunk's embedding text: equal texts share one vector."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def chunk_id(path: str, ordinal: int, text_digest: str) -> str:
    """Deterministic id of the ``ordinal``-th chunk of ``path`` with text hash ``text_digest``."""
    key = f"{path}\x00{ordinal}\x00{text_digest}".encode()
    return hashlib.sha256(key).hexdigest()[:32]
