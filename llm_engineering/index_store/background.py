"""``IndexRunner``: keeps the index in step with the watched folders, in the background.

One thread does it all, so the server answers from its first second:

1. take the data folder's writer lock, or, when another process holds it, load the
   embedding model for searches (in a thread of its own) while trying again every
   ``takeover_interval`` seconds (it takes over when that one exits, even mid-load);
2. as the writer: start watching, repair what a crash may have left (orphan vectors,
   files whose vectors are missing), reconcile the folders with ``state.sqlite`` (new,
   changed and vanished files; unchanged ones cost a ``stat``, and the model loads only
   when a file needs embedding), then index the paths the watcher reports as they settle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from llm_engineering.errors import DiskFullError, LlmEngError
from llm_engineering.index_store.ingest.report import IngestReport
from llm_engineering.index_store.ingest.watcher import ChangeQueue, FolderWatcher
from llm_engineering.index_store.read.scanning import UNREADABLE_FOLDER
from llm_engineering.index_store.service import IndexService, IndexStatus

__all__ = ["IndexRunner"]

log = logging.getLogger(__name__)

# While the data folder's disk is full, how often to look for room again: soon at first (space
# is often freed at once), then every half minute.
RETRY_MIN = 1.0
RETRY_MAX = 30.0


class IndexRunner:
    """Background indexing for a server.

    Args:
        index: The opened index.
        folders: Folders to reconcile at start and watch afterwards.
        read_only: Never write (never take the writer lock).
        watch: Start the file watcher (else only the start-up reconcile runs).
        debounce: Seconds a path must stay quiet before it is re-indexed.
        takeover_interval: How often a reader tries to become the writer.
    """

    def __init__(
        self,
        index: IndexService,
        folders: Sequence[Path],
        *,
        read_only: bool = False,
        watch: bool = True,
        debounce: float = 0.5,
        takeover_interval: float = 1.0,
    ):
        self.index = index
        self.folders = list(folders)
        self.read_only = read_only
        self.watch = watch
        self.takeover_interval = takeover_interval
        self.queue = ChangeQueue(debounce=debounce)
        self.watcher: FolderWatcher | None = None
        self.error: str | None = None
        self.reconciled = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="llm-eng-indexer", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        if not self.read_only:
            self.index.lock.try_acquire()  # now, so the role is known from the first request
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self.queue.wake()
        self._thread.join(timeout=timeout)
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None

    def queued(self) -> list[Path]:
        """Paths the watcher saw change that wait to be indexed."""
        return self.queue.paths()

    def status(self) -> IndexStatus:
        """The index's status with this runner's part: queued paths, role, watching, error."""
        status = self.index.status()
        watcher = self.watcher
        return replace(
            status,
            pending=status.pending + len(self.queue),
            role="read-only" if self.read_only else status.role,
            watching=watcher is not None and watcher.watching,
            watch_problems=watcher.problems() if watcher is not None else [],
            error=self.error or status.error,
            # From the start, before the first run has scanned a folder or counted a file.
            building=status.building
            or (
                status.role == "writer" and self._thread.is_alive() and not self.reconciled.is_set()
            ),
        )

    # -- the thread ----------------------------------------------------------------------

    def _main(self) -> None:
        try:
            if self.read_only:
                self.index.embedder()  # searches need it; nothing else to do
                return
            waited = False
            while not self.index.lock.try_acquire():
                if not waited:
                    log.info(
                        "another process (pid %s) writes this index; serving reads",
                        self.index.lock.holder(),
                    )
                    waited = True
                    # Searches need the model, but loading it takes seconds: load it beside
                    # this loop, so the lock is retried meanwhile and a writer that dies while
                    # the model loads is taken over within one interval.
                    threading.Thread(
                        target=self._load_embedder, name="llm-eng-embedder", daemon=True
                    ).start()
                if self._stop.wait(self.takeover_interval):
                    return
            if waited:  # the vectors in memory are as old as this process's start
                self.index.vectors.reopen()
            log.info("this process writes the index in %s", self.index.settings.data_dir)
            self._write_loop()
        except LlmEngError as exc:
            self.error = str(exc)
            log.error("indexing stopped: %s", exc)
        except Exception:
            self.error = "indexing stopped after an unexpected error (see the server log)"
            log.exception("indexing stopped")

    def _changed(self) -> list[Path]:
        """Paths that settled while a run is under way: it takes them on, so a file dropped
        during a long run (a big folder, a slow file) need not wait for its end."""
        return self.queue.take_due(timeout=0)

    def _load_embedder(self) -> None:
        try:
            self.index.embedder()
        except Exception:  # the writer loop or the first search reports it again
            log.exception("could not load the embedding model")

    def _write_loop(self) -> None:
        # Searches need the model, and new files too: it loads (seconds) while the folders are
        # scanned and the parse workers start, instead of after them.
        threading.Thread(target=self._load_embedder, name="llm-eng-embedder", daemon=True).start()
        folders = [f for f in self.folders if f.is_dir()]
        for missing in set(self.folders) - set(folders):
            log.error("watched folder %s does not exist or is not a folder (yet)", missing)
        # Watch first, so a change made while reconciling is not missed (indexing it twice is
        # harmless). A missing folder too: it is watched and reconciled once it exists.
        if self.watch and self.folders:
            self.watcher = FolderWatcher(
                self.folders, self.queue, exclude=self.index.settings.data_dir
            )
            self.watcher.start()
        if not self._until_written(self._reconcile):
            return
        self.reconciled.set()
        self.index.embedder()  # an unchanged folder needed no model; searches do
        while not self._stop.is_set():
            self._check_watch()
            paths = self.queue.take_due(timeout=1.0)
            if not paths or self._stop.is_set():
                continue
            try:
                report = self.index.sync(
                    paths, gone=self.queue.take_gone, more=self._changed, stop=self._stop
                )
            except DiskFullError:
                # Which paths the run had taken on is not known: reconcile once there is room.
                if not self._until_written(self._reconcile):
                    return
                continue
            except LlmEngError as exc:
                log.error("could not index %d changed paths: %s", len(paths), exc)
                continue
            except Exception:
                # A bug met on one path (as a name that was not UTF-8 once was) must not end
                # the indexing of every later change: say so, and go on.
                log.exception("could not index %s", _named(paths))
                self.error = (
                    f"could not index {_named(paths)} after an unexpected error (see the server "
                    "log); later changes are indexed, and these again when they change"
                )
                continue
            self.error = None
            changed = [
                *report.added_paths, *report.updated_paths, *report.removed_paths,
                *(failed.path for failed in report.failed),
            ]  # fmt: skip
            log.info(
                "indexed changes: %d added, %d updated, %d removed, %d failed%s",
                report.added, report.updated, report.removed, len(report.failed),
                f": {_named([Path(p) for p in changed])}" if changed else "",
            )  # fmt: skip
            self._unreadable(report)

    def _reconcile(self) -> None:
        """Repair what a crash left, then bring the watched folders in step with the index."""
        orphans, requeued = self.index.repair()
        if orphans or requeued:
            log.warning(
                "repaired the index: %d orphan vectors removed, %d files to index again",
                orphans,
                requeued,
            )
        folders = [f for f in self.folders if f.is_dir()]
        if folders:
            report = self.index.ingest(
                folders, stop=self._stop, gone=self.queue.take_gone, more=self._changed
            )
            if self._stop.is_set():  # stopped part way: no count of it is the folder's
                log.info("stopped before %s was reconciled", ", ".join(map(str, folders)))
                return
            log.info(
                "reconciled %s: %d added, %d updated, %d unchanged, %d removed, %d failed in %.1f s",
                ", ".join(map(str, folders)), report.added, report.updated, report.unchanged,
                report.removed, len(report.failed), report.seconds,
            )  # fmt: skip
            self._unreadable(report)

    def _until_written(self, work: Callable[[], None]) -> bool:
        """Run ``work``; while the data folder's disk is full, wait until there is room (tried
        after ``RETRY_MIN`` seconds, then less and less often) and run it again.

        Returns:
            False when the runner was stopped meanwhile.
        """
        delay = RETRY_MIN
        while not self._stop.is_set():
            try:
                work()
                return True
            except DiskFullError as exc:
                log.error("indexing waits for room: %s", exc)
            while not self.index.resume():
                if self._stop.wait(delay):
                    return False
                delay = min(2 * delay, RETRY_MAX)
        return False

    def _check_watch(self) -> None:
        """Watch again what watchdog stopped following (a folder deleted and made again, moved
        away and back, a subfolder readable again) and reconcile it: it had no events."""
        if self.watcher is not None:
            for folder in self.watcher.check():
                log.info("watching %s again; reconciling it with the index", folder)
                self.queue.add(folder, complete=True)

    def _unreadable(self, report: IngestReport) -> None:
        """Tell the watcher the folders a run could not read, to watch once they can be."""
        if self.watcher is not None:
            self.watcher.unreadable(
                Path(f.path) for f in report.failed if f.error.startswith(UNREADABLE_FOLDER)
            )


def _named(paths: list[Path], most: int = 3) -> str:
    """``a.md, b.md and 4 more``: a few of ``paths`` by name, then a count."""
    names = ", ".join(str(path) for path in paths[:most])
    return names + (f" and {len(paths) - most} more" if len(paths) > most else "")
