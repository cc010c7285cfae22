"""``IndexChange``: what one ingest or sync committed, for whoever watches the index.

The service fires it after each write (``IndexService.on_change``); the MCP server turns it
into resource notifications, and knows nothing else of how indexing works.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from llm_engineering.index_store.ingest.report import IngestReport

__all__ = ["ChangeObservers", "IndexChange"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IndexChange:
    """Absolute paths, each in at most one list."""

    added: tuple[str, ...] = ()
    """Indexed for the first time (or again after failing)."""
    updated: tuple[str, ...] = ()
    """Indexed again with new content."""
    failed: tuple[str, ...] = ()
    """Could not be indexed (their text is no longer served)."""
    removed: tuple[str, ...] = ()
    """Forgotten: deleted, moved away, or under a folder that went."""

    @classmethod
    def of(cls, report: IngestReport) -> IndexChange:
        return cls(
            tuple(report.added_paths),
            tuple(report.updated_paths),
            tuple(f.path for f in report.failed),
            tuple(report.removed_paths),
        )

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.failed or self.removed)

    @property
    def changed(self) -> tuple[str, ...]:
        """Paths whose served text changed: updated or failed."""
        return self.updated + self.failed

    @property
    def listing_changed(self) -> bool:
        """Whether the set of indexed documents may have changed (a failed file leaves it)."""
        return bool(self.added or self.failed or self.removed)


class ChangeObservers:
    """Callbacks told of each :class:`IndexChange`, on the thread that wrote it."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[[IndexChange], None]] = []
        self._lock = threading.Lock()

    def add(self, callback: Callable[[IndexChange], None]) -> Callable[[], None]:
        """Register ``callback``; returns a function that unregisters it."""
        with self._lock:
            self._callbacks.append(callback)

        def remove() -> None:
            with self._lock:
                if callback in self._callbacks:
                    self._callbacks.remove(callback)

        return remove

    def fire(self, change: IndexChange) -> None:
        if not change:
            return
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(change)
            except Exception:  # an observer's bug must not fail the write that was committed
                log.exception("an index change observer failed")
