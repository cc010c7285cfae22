"""A job's event log: what its worker (and its runner) report, one JSON object per line.

Each line is ``{"t": UNIX_TIME, "event": NAME, ...}`` and is written whole, then flushed, by
the one process that writes the log at a time (the worker while it runs; its runner once it
has gone). Readers skip a line that is not JSON (the last one may be half-written).
:class:`EventTail` follows the log from a byte offset, reading only what was appended.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["EventLog", "EventTail", "read_events"]

MAX_READ = 4 * 1024 * 1024
"""Most bytes one :meth:`EventTail.read` reads, so a huge backlog is sent in pieces."""


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events in ``path``, oldest first ([] while there is no file)."""
    if not path.is_file():
        return []
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


class EventLog:
    """Appends one JSON object per line; each line is written whole, then flushed."""

    def __init__(self, path: Path):
        self._handle = path.open("a", encoding="utf-8")

    def emit(self, event: str, **fields: Any) -> None:
        line = json.dumps({"t": round(time.time(), 3), "event": event, **fields})
        self._handle.write(line + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()


class EventTail:
    """The events appended to ``path`` since ``offset`` (a byte position at a line's start).

    A line still being written (no newline yet) is left for the next call; the offset only
    moves past whole lines, so it can be handed to a browser as an SSE event id and a
    reconnect resumes exactly there.
    """

    def __init__(self, path: Path, offset: int = 0):
        self.path = path
        self.offset = max(0, offset)

    def read(self) -> list[dict[str, Any]]:
        """The new events, oldest first (a line that is not JSON is skipped)."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # the file was replaced: start again
            self.offset = 0
        if size == self.offset:
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            data = handle.read(min(size - self.offset, MAX_READ))
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        events = []
        for line in data[: end + 1].splitlines():
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def read_all(self) -> list[dict[str, Any]]:
        """Every event until the end of the file as it is now."""
        events: list[dict[str, Any]] = []
        while batch := self.read():
            events += batch
        return events
