"""Following a job's ``events.jsonl`` from a byte offset: only what was appended is read."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["EventTail"]

MAX_READ = 4 * 1024 * 1024
"""Most bytes one call reads, so a huge backlog is sent in pieces."""


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
