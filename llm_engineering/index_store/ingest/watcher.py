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

import contextlib
import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from llm_engineering.index_store.read.scanning import is_ignored_name, is_supported

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
        self.screen: Callable[[list[Path]], list[Path]] = list
        """Takes out of the paths handed on those not to be indexed one by one now (a
        :class:`FolderWatcher` sets it: paths under a watched folder that is away)."""

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
                    break
                if now >= deadline:
                    return []
                wake = min([deadline, *self._due.values()])
                self._cond.wait(max(0.0, wake - now))
        return self.screen(ready)

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
        return self.screen(gone)

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
    """Watches folders recursively with watchdog (inotify, FSEvents, ...; polling as a fallback).

    watchdog stops following a folder that is deleted (and never sees one made again in its
    place), follows one moved away under its old path, and silently leaves out a subfolder
    it cannot read. :meth:`check`, called about once a second, notices each of these:
    a folder that is gone is reported as not watched (:attr:`problems`), and one that is
    back, new in its place, or whose unreadable subfolder can be read now, is watched
    afresh and returned, for the caller to reconcile (changes meanwhile had no events).
    """

    def __init__(self, folders: Iterable[Path], queue: ChangeQueue, exclude: Path | None = None):
        self.folders = [Path(f) for f in folders]
        self.queue = queue
        self._exclude = exclude
        self._observer: Any = None
        self.polling = False
        # folder -> its watch and the (device, inode) it was watching
        self._watched: dict[Path, tuple[Any, tuple[int, int]]] = {}
        self._unreadable: set[Path] = set()
        self._problems: dict[Path, str] = {}
        self._lock = threading.Lock()
        queue.screen = self.away

    @property
    def watching(self) -> bool:
        """Whether every folder is watched now."""
        with self._lock:
            return self._observer is not None and not set(self._problems) & set(self.folders)

    def problems(self) -> list[str]:
        """Why a folder (or a subfolder) is not watched now, one line each."""
        with self._lock:
            return list(self._problems.values())

    def start(self) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        self._observer.start()
        for folder in self.folders:
            self._attach(folder)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def unreadable(self, folders: Iterable[Path]) -> None:
        """Folders the scan could not list: :meth:`check` watches them again once it can."""
        for folder in folders:
            self._unreadable.add(folder)
            self._problem(
                folder,
                f"{folder} cannot be read, so it is not watched; it is watched and indexed "
                "again once it can be read",
            )

    def away(self, paths: list[Path]) -> list[Path]:
        """``paths`` less those inside a watched folder that is not there now.

        A folder moved away keeps its watch, which names the changes made there by their old
        paths: indexed one by one, they would look deleted. The folder is reconciled as a
        whole once it is back instead (:meth:`check` watches it afresh, whatever its inode).
        """
        missing = {f for f in self.folders if any(f in p.parents for p in paths)}
        missing = {f for f in missing if _identity(f) is None}
        for folder in missing:
            self._attach(folder)  # notes it as gone and drops its watch
        return [p for p in paths if not any(f in p.parents for f in missing)]

    def check(self) -> list[Path]:
        """Watch afresh each folder that is back, new in its place, or no longer followed, and
        each whose unreadable subfolder can be read now; note each that is gone.

        Returns:
            The folders watched afresh: their changes meanwhile had no events.
        """
        fresh: list[Path] = []
        if self._observer is None:
            return fresh
        for folder in self.folders:
            watch, identity = self._watched.get(folder, (None, None))
            current = identity is not None and identity == _identity(folder)
            if not (current and self._following(watch)) and self._attach(folder):
                fresh.append(folder)
        for folder in sorted(self._unreadable):
            try:
                with os.scandir(folder):
                    pass
            except FileNotFoundError:
                pass
            except OSError:
                continue
            else:
                root = next((f for f in self.folders if f == folder or f in folder.parents), None)
                # watchdog adds no watch to a folder when it becomes readable: watch afresh.
                if root is not None and root not in fresh and self._attach(root):
                    fresh.append(root)
            self._unreadable.discard(folder)
            self._problem(folder, None)
        return fresh

    def _problem(self, folder: Path, problem: str | None) -> None:
        with self._lock:
            if problem is None:
                self._problems.pop(folder, None)
            elif self._problems.get(folder) != problem:
                self._problems[folder] = problem
                log.warning("%s", problem)

    def _following(self, watch: Any) -> bool:
        """Whether the emitter of ``watch`` still runs (it stops when its folder is deleted)."""
        return any(e.watch == watch and e.is_alive() for e in self._observer.emitters)

    def _attach(self, folder: Path) -> bool:
        """Watch ``folder`` afresh (the watch it had goes); whether it is watched now."""
        if self._observer is None:  # stopped (the indexer may finish a run after that)
            return False
        self._detach(folder)
        identity = _identity(folder)
        if identity is None:
            self._problem(
                folder,
                f"{folder} does not exist (deleted, or moved away?), so it is not watched; it "
                "is watched and indexed again once it is back",
            )
            return False
        try:
            watch = self._observer.schedule(
                _Handler(folder, self.queue, self._exclude), str(folder), recursive=True
            )
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EMFILE) and not self.polling:
                return self._poll_instead(exc, folder)
            self._problem(
                folder, f"cannot watch {folder} ({exc.strerror or exc}); trying again every second"
            )
            return False
        self._watched[folder] = (watch, identity)
        self._problem(folder, None)
        return True

    def _poll_instead(self, error: OSError, folder: Path) -> bool:
        """Out of inotify watches (a huge tree): poll every folder instead."""
        from watchdog.observers.polling import PollingObserver

        log.warning("native file watching failed (%s); polling every 2 s instead", error)
        self.stop()
        self._watched.clear()
        self._observer = PollingObserver(timeout=2)
        self._observer.start()
        self.polling = True
        for other in self.folders:
            if other != folder:
                self._attach(other)
        return self._attach(folder)

    def _detach(self, folder: Path) -> None:
        watched = self._watched.pop(folder, None)
        if watched is not None:
            with contextlib.suppress(KeyError):  # already gone with its emitter
                self._observer.unschedule(watched[0])


def _identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of ``folder``, or None when it is not a folder now."""
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if stat.S_ISDIR(info.st_mode) else None
