"""The writer's indexing progress, published for reader processes (``llm-eng dashboard``).

Only the process that indexes knows how many files are pending and which one it is on. It
writes them to ``progress.json`` in the data folder (atomically, at most every
``INTERVAL`` seconds, and at once when a run ends); a reader shows them while the file
names the process that holds the writer lock, so a dead writer's last progress is never
shown.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from llm_engineering.storage import write_whole

__all__ = ["INTERVAL", "Progress", "ProgressFile"]

INTERVAL = 0.25
"""Seconds between two writes of the progress while a run goes on."""


@dataclass(frozen=True)
class Progress:
    pending: int
    indexing: str | None


class ProgressFile:
    """``progress.json``: written by the writer, read by readers.

    Args:
        path: The file (in the data folder).
    """

    def __init__(self, path: Path, interval: float = INTERVAL):
        self.path = path
        self.interval = interval
        self._written_at = 0.0
        self._last: Progress | None = None

    def publish(self, pending: int, indexing: str | None) -> None:
        """Record the writer's progress; skipped when the last write is under ``interval``
        seconds old, unless the run has ended (nothing pending)."""
        progress = Progress(pending, indexing)
        now = time.monotonic()
        if progress == self._last or (pending and now - self._written_at < self.interval):
            return
        record = {"pid": os.getpid(), "pending": pending, "indexing": indexing}
        try:
            write_whole(self.path, json.dumps(record))
        except OSError:
            return  # progress is a courtesy to readers; indexing goes on without it
        self._written_at, self._last = now, progress

    def read(self, writer_pid: int | None) -> Progress:
        """The progress the writer ``writer_pid`` published; nothing pending when another
        process (a writer that died) wrote it, or it cannot be read."""
        try:
            record = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return Progress(0, None)
        if writer_pid is None or not isinstance(record, dict) or record.get("pid") != writer_pid:
            return Progress(0, None)
        pending, indexing = record.get("pending"), record.get("indexing")
        return Progress(
            pending if isinstance(pending, int) and pending > 0 else 0,
            indexing if isinstance(indexing, str) else None,
        )
