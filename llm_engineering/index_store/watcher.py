"""The folder watcher: watchdog events in, debounced and coalesced paths out.

Editors and copy tools produce bursts: several writes to one file, a temp file renamed
over the original (an "atomic save"), a folder of 200 files at once. Every event only
marks a path dirty; a path is handed on once it has been quiet for ``debounce`` seconds
(a burst on one file becomes one re-index), or ``settle`` seconds after a write was
closed or a rename landed, which is when a file is known to be complete. What is
handed on is a set of paths, each either present (index it) or gone (forget it), so a
save through a temp file is a single update of the target, never a delete then an add.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from llm_engineering.index_store.scanning import is_ignored_name, is_supported

__all__ = ["ChangeQueue", "FolderWatcher"]

log = logging.getLogger(__name__)


class ChangeQueue:
    """Dirty paths, coalesced per path, released after a quiet period.

    Args:
        debounce: Quiet time after an ordinary event (a write still in progress).
        settle: Quiet time after a closed write or a completed rename.
        max_wait: A path that never goes quiet (a log being appended to) is released anyway
            this long after its first event.
        clock: Where "now" comes from; tests pass a manual clock so no assertion depends on
            how fast the machine happens to be.
    """

    def __init__(
        self,
        debounce: float = 0.5,
        settle: float = 0.1,
        max_wait: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.debounce = debounce
        self.settle = settle
        self.max_wait = max_wait
        self._clock = clock
        self._due: dict[Path, float] = {}
        self._first: dict[Path, float] = {}
        self._cond = threading.Condition()

    def __len__(self) -> int:
        with self._cond:
            return len(self._due)

    def paths(self) -> list[Path]:
        """The paths waiting now (a snapshot)."""
        with self._cond:
            return list(self._due)

    def add(self, path: Path, complete: bool = False) -> None:
        now = self._clock()
        with self._cond:
            first = self._first.setdefault(path, now)
            due = now + (self.settle if complete else self.debounce)
            self._due[path] = min(due, first + self.max_wait)
            self._cond.notify()

    def take_due(self, timeout: float) -> list[Path]:
        """Wait up to ``timeout`` seconds for paths whose quiet period is over; return them."""
        deadline = self._clock() + timeout
        with self._cond:
            while True:
                now = self._clock()
                ready = [path for path, due in self._due.items() if due <= now]
                if ready:
                    for path in ready:
                        del self._due[path]
                        del self._first[path]
                    return ready
                if now >= deadline:
                    return []
                wake = min([deadline, *self._due.values()])
                self._cond.wait(max(0.0, wake - now))

    def take_gone(self) -> list[Path]:
        """Due paths that no longer exist on disk, taken now: a deletion need not wait for
        the re-indexing queued before it (the others stay for :meth:`take_due`)."""
        now = self._clock()
        with self._cond:
            gone = [
                path for path, due in self._due.items() if due <= now and not os.path.lexists(path)
            ]
            for path in gone:
                del self._due[path]
                del self._first[path]
            return gone

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def _relevant(path: Path, root: Path, is_directory: bool, exclude: Path | None) -> bool:
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    if any(is_ignored_name(part) for part in parts):
        return False
    if exclude is not None and (path == exclude or exclude in path.parents):
        return False
    return is_directory or is_supported(path)


class _Handler:
    """A watchdog event handler for one watched folder."""

    def __init__(self, root: Path, queue: ChangeQueue, exclude: Path | None):
        self._root = root
        self._queue = queue
        self._exclude = exclude

    def dispatch(self, event: Any) -> None:
        kind = event.event_type
        if kind in ("opened", "closed_no_write") or (event.is_directory and kind == "modified"):
            return
        complete = kind in ("closed", "moved")
        paths = [event.src_path]
        if kind == "moved":
            paths.append(event.dest_path)
        for raw in paths:
            path = Path(raw.decode() if isinstance(raw, bytes) else raw)
            if _relevant(path, self._root, event.is_directory, self._exclude):
                self._queue.add(path, complete=complete)


class FolderWatcher:
    """Watches folders recursively with watchdog (inotify, FSEvents, ...; polling as a fallback)."""

    def __init__(self, folders: Iterable[Path], queue: ChangeQueue, exclude: Path | None = None):
        self.folders = [Path(f) for f in folders]
        self.queue = queue
        self._exclude = exclude
        self._observer: Any = None
        self.polling = False

    def start(self) -> None:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        try:
            self._observer = self._schedule(Observer())
        except OSError as exc:  # e.g. the inotify watch limit on a huge tree
            log.warning("native file watching failed (%s); polling every 2 s instead", exc)
            self._observer = self._schedule(PollingObserver(timeout=2))
            self.polling = True

    def _schedule(self, observer: Any) -> Any:
        for folder in self.folders:
            if folder.is_dir():
                observer.schedule(
                    _Handler(folder, self.queue, self._exclude), str(folder), recursive=True
                )
            else:
                log.error("cannot watch %s: not a folder", folder)
        observer.start()
        return observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
