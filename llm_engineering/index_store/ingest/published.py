"""The writer's indexing progress, published for reader processes (``llm-eng dashboard``).

Only the process that indexes knows how many files are pending, which one it is on, and
whether a full disk paused it (:class:`RunProgress` keeps that). It writes them to
``progress.json`` in the data folder (atomically, at most every ``INTERVAL`` seconds, and
at once when a run ends); a reader shows them while the file names the process that holds
the writer lock, so a dead writer's last progress is never shown.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from llm_engineering.errors import DiskFullError
from llm_engineering.index_store.ingest.report import FailedFile
from llm_engineering.storage import write_whole

__all__ = ["INTERVAL", "Progress", "ProgressFile", "RunProgress"]

INTERVAL = 0.25
"""Seconds between two writes of the progress while a run goes on."""


@dataclass(frozen=True)
class Progress:
    pending: int
    indexing: str | None
    paused: str | None = None
    """Why the writer's indexing waits (a full disk), if it does."""
    building: bool = False
    """A run is under way (it may still be scanning the folders, with nothing pending yet)."""


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

    def publish(
        self, pending: int, indexing: str | None, paused: str | None = None, building: bool = False
    ) -> None:
        """Record the writer's progress; skipped when the last write is under ``interval``
        seconds old, unless no file is being indexed (a run starting, ending or paused)."""
        progress = Progress(pending, indexing, paused, building)
        now = time.monotonic()
        if progress == self._last or (indexing and now - self._written_at < self.interval):
            return
        record = {
            "pid": os.getpid(),
            "pending": pending,
            "indexing": indexing,
            "paused": paused,
            "building": building,
        }
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
        paused = record.get("paused")
        return Progress(
            pending if isinstance(pending, int) and pending > 0 else 0,
            indexing if isinstance(indexing, str) else None,
            paused if isinstance(paused, str) else None,
            record.get("building") is True,
        )


class RunProgress:
    """The writing process's run: files pending, the file being indexed, and, while a full
    disk pauses the writing, why and which files it stopped (kept here: the ledger cannot
    record them then). Each change is published to ``file``."""

    def __init__(self, file: ProgressFile):
        self.file = file
        self.pending = 0
        self.current: str | None = None
        self.paused: str | None = None
        self.stalled: list[FailedFile] = []
        """Files being written when the disk filled, each with that reason."""
        self.building = False

    @contextlib.contextmanager
    def running(
        self, progress: Callable[[int, int, str], None] | None = None
    ) -> Iterator[Callable[[int, int, str], None]]:
        """One run, from before its folders are scanned to its end; yields its ``track``,
        which also calls ``progress``."""

        def track(done: int, total: int, message: str) -> None:
            self.track(done, total, message)
            if progress is not None:
                progress(done, total, message)

        self.building = True
        self.file.publish(self.pending, None, self.paused, True)
        try:
            yield track
        finally:
            self.building = False
            self.ended()

    def track(self, done: int, total: int, message: str) -> None:
        self.pending = total - done
        self.current = (message or None) if done < total else None
        self.file.publish(self.pending, self.current, self.paused, self.building)

    def ended(self) -> None:
        """The run is over (or paused: what it had not settled stays pending)."""
        if self.paused is None:
            self.pending = 0
        self.current = None
        self.file.publish(self.pending, None, self.paused, self.building)

    def pause(self, error: DiskFullError) -> None:
        """A write failed for want of space; the files it was writing count as failed."""
        self.paused = str(error)
        if error.paths:
            self.stalled = [FailedFile(path, str(error)) for path in dict.fromkeys(error.paths)]
            self.pending = max(0, self.pending - len(self.stalled))
        self.file.publish(self.pending, None, self.paused, self.building)

    def resumed(self) -> None:
        self.paused, self.stalled, self.pending, self.current = None, [], 0, None
        self.file.publish(0, None)
