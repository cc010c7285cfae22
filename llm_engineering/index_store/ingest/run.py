"""``IngestRun``: one ingest run's loop, in which no file waits for a slower one.

Files go to the parse workers some way ahead (``WINDOW`` files, ``WINDOW_BYTES``), and a
file that is slow holds one worker while the others go on; parsed files wait in
:class:`.commits.PendingFiles`, and a step embeds and commits them when ``BATCH`` texts
wait, when the oldest has waited ``flush_after`` seconds, or when nothing else is coming.
Between two steps or two answers the run forgets paths deleted meanwhile (``gone``) and
takes on paths changed meanwhile (``more``), first. A path that changes again while it is
being parsed or embedded is queued behind itself, never parsed twice at once.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.config import Settings
from llm_engineering.hashing import chunk_id, text_hash
from llm_engineering.index_store.ingest.pending import ParsedFile, PendingFiles
from llm_engineering.index_store.ingest.plan import Plan, Planner
from llm_engineering.index_store.ingest.report import FailedFile, IngestReport
from llm_engineering.index_store.read.parse_pool import (
    ParseConfig,
    ParsePool,
    ParseRequest,
    ParseResult,
)
from llm_engineering.index_store.read.readers import file_type_of
from llm_engineering.index_store.read.scanning import ScannedFile, leads_out
from llm_engineering.index_store.store.ledger import ChunkRow, FileRow, Ledger
from llm_engineering.index_store.store.vectors import VectorIndex
from llm_engineering.paths import path_text

__all__ = [
    "FLUSH_AFTER",
    "TIMEOUT_BYTES",
    "GoneFn",
    "IngestRun",
    "MoreFn",
    "ProgressFn",
    "RunLimits",
    "RunOptions",
    "parse_time_limit",
]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
"""progress(done, total, message)."""

GoneFn = Callable[[], Sequence[Path]]
"""Paths found deleted while a run is under way; asked between two files and forgotten at once."""

MoreFn = Callable[[], Sequence[Path]]
"""Paths changed while a run is under way (the watcher's due ones); the run takes them on."""

FLUSH_AFTER = 1.0
"""Seconds a parsed file waits for others before its vectors are made and it is committed."""
# Files handed to the workers ahead of the embedding, so a step finds the next files
# parsed; a file changed meanwhile still goes first to the workers after these.
WINDOW = 32
WINDOW_BYTES = 64 * 1048576
TIMEOUT_BYTES = 10 * 1048576
"""Files up to this size get ``parse_timeout_s``; larger ones proportionally more."""
# How often a run waiting on slow parsers looks at stop, gone and more.
_POLL = 0.25


def parse_time_limit(parse_timeout_s: float, size: int) -> float:
    """Seconds a file of ``size`` bytes may take to parse: honest parsing time grows with
    the size (a 20 MB text needs tens of seconds on two cores), a runaway parser's faster."""
    return parse_timeout_s * max(1.0, size / TIMEOUT_BYTES)


@dataclass(frozen=True)
class RunOptions:
    """What the caller asks of one run, handed down whole from :class:`IndexService`."""

    progress: ProgressFn | None = None
    stop: threading.Event | None = None
    """Ends the run early, keeping what was committed."""
    gone: GoneFn | None = None
    """Asked between two files for paths deleted meanwhile, which are forgotten then."""
    more: MoreFn | None = None
    """Asked for paths changed meanwhile, which the run indexes too (first)."""
    retry_failed: bool = True
    """Try a failed file again even if unchanged (a parse may have timed out on a busy
    machine); False leaves its recorded error standing (commands that only read)."""

    @property
    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()


@dataclass(frozen=True)
class RunLimits:
    """The settings a run checks each file against."""

    max_file_bytes: int
    max_file_size_mb: float
    parse_timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> RunLimits:
        return cls(settings.max_file_bytes, settings.max_file_size_mb, settings.parse_timeout_s)


@dataclass
class _Job:
    scanned: ScannedFile
    root: Path
    row: FileRow
    old: FileRow | None


class IngestRun:
    """One run of an :class:`~.ingestor.Ingestor`: the files of a plan in, ``report`` out.

    Args:
        ledger: Files and chunks; what the run commits and forgets goes here.
        vectors: The Chroma collection.
        embedder: Returns the embedding model (loaded when a chunk first needs it).
        planner: Plans the paths changed meanwhile (``options.more``).
        parsers: Returns the parse worker pool (started when a file first needs it).
        parse_config: Returns how the workers split files.
        limits: Size and time limits per file.
        options: Progress, stop, and what the watcher saw meanwhile.
    """

    def __init__(
        self,
        ledger: Ledger,
        vectors: VectorIndex,
        embedder: Callable[[], Any],
        planner: Planner,
        parsers: Callable[[], ParsePool],
        parse_config: Callable[[], ParseConfig],
        limits: RunLimits,
        options: RunOptions,
    ):
        self.report = IngestReport()
        self._ledger = ledger
        self._vectors = vectors
        self._planner = planner
        self._parsers = parsers
        self._parse_config = parse_config
        self._limits = limits
        self._options = options
        # Text hash -> id of a vector whose chunk row this run removed and whose deletion
        # waits for the run's end, so a renamed file reuses it (deletions go first).
        self._reusable: dict[str, str] = {}
        self._deferred: list[str] = []
        self._queue: deque[tuple[ScannedFile, Path]] = deque()
        self._inflight: dict[Future[ParseResult], _Job] = {}
        self._pending = PendingFiles(
            ledger, vectors, embedder, self._reusable, FLUSH_AFTER, self.fail
        )
        # A path seen again while it is in flight or pending: queued once that is done.
        self._again: dict[str, tuple[ScannedFile, Path]] = {}
        self._abandoned: set[str] = set()
        self._known: dict[str, FileRow] = {}
        self._done = 0
        self._total = 0

    def process(self, plan: Plan, gone: Sequence[str] = ()) -> None:
        """Forget ``gone`` (indexed paths no longer there), then index ``plan``.

        Deletions go first, so a deleted file leaves searches before a long run of
        additions; their vectors stay until the end, so a renamed or moved file reuses them.
        """
        try:
            self.forget(sorted(set(gone)))
            self._process(plan)
        finally:
            self._vectors.delete(self._deferred)
            self._reusable.clear()
            self._deferred = []

    def forget(self, paths: list[str]) -> None:
        """Forget files now; their vectors wait for the end of the run (see ``_reusable``)."""
        if paths:
            self._deferred += self._ledger.remove_files(paths, self._reusable)
            self.report.removed += len(paths)
            self.report.removed_paths += paths

    def fail(self, row: FileRow, error: str) -> None:
        """Record ``row`` as failed with ``error`` (its old chunks go)."""
        row.status, row.error = "failed", error
        stale = self._ledger.replace_file(row, [])
        self._vectors.delete(stale)
        self.report.failed.append(FailedFile(row.path, error))
        log.warning("could not index %s: %s", row.path, error)

    def _process(self, plan: Plan) -> None:
        for root in {root for _, root in plan}:
            self._known.update(self._ledger.files_under(str(root)))
        self._queue.extend(plan)
        self._total = len(plan)
        if self._options.progress is not None:
            self._options.progress(0, self._total, "")
        pool = self._parsers() if plan or self._options.more is not None else None
        window = max(WINDOW, 2 * pool.workers) if pool is not None else 0
        try:
            while not self._options.stopped:
                self._take_gone()
                self._take_more()
                while self._queue and len(self._inflight) < window and self._room():
                    self._start(*self._queue.popleft())
                self._collect()
                if not (self._queue or self._inflight or self._pending):
                    break
                due = self._pending.due_in(time.monotonic(), bool(self._queue or self._inflight))
                if due == 0:
                    for parsed in self._pending.step(self.report):
                        self._finish(parsed.row.path)
                    continue
                concurrent.futures.wait(
                    self._inflight,
                    timeout=min(due if due is not None else _POLL, _POLL),
                    return_when=concurrent.futures.FIRST_COMPLETED,
                )
        finally:
            self._pending.drop_all()
            for future in self._inflight:
                future.cancel()

    # -- steps of the loop -------------------------------------------------------------

    def _finish(self, path: str) -> None:
        self._done += 1
        if self._options.progress is not None:
            self._options.progress(self._done, self._total, path)
        if path in self._again:
            self._queue.appendleft(self._again.pop(path))

    def _room(self) -> bool:
        """Whether another file may go to the workers: their answers wait here, in memory."""
        held = sum(job.scanned.size for job in self._inflight.values())
        return not self._inflight or held < WINDOW_BYTES

    def _busy(self) -> set[str]:
        return {job.row.path for job in self._inflight.values()} | self._pending.paths()

    def _take_gone(self) -> None:
        self._forget_deleted(
            [path_text(path) for path in (self._options.gone() if self._options.gone else ())]
        )

    def _forget_deleted(self, deleted: list[str]) -> None:
        if not deleted:
            return
        known = {p for path in deleted for p in self._planner.known_at(Path(path))}
        # New files parsed or being parsed under a deleted path are not in the index yet.
        under = tuple(path + os.sep for path in deleted)
        busy = {p for p in self._busy() if p in deleted or p.startswith(under)}
        self._drop(known, busy)

    def _drop(self, known: set[str], busy: set[str] | None = None) -> None:
        """Forget ``known`` (indexed) paths now, and drop what this run was doing for them
        and for ``busy`` ones."""
        paths = known | (busy or set())
        for path in self._pending.drop(paths):
            self._finish(path)
        self._abandoned |= paths & {job.row.path for job in self._inflight.values()}
        for path in paths:
            self._again.pop(path, None)
        self.forget(sorted(known))

    def _take_more(self) -> None:
        changed = list(self._options.more()) if self._options.more is not None else []
        if not changed:
            return
        self._forget_deleted([path_text(path) for path in changed if not os.path.lexists(path)])
        present = [path for path in changed if os.path.lexists(path)]
        plan, gone = self._planner.plan(present, strict=False)
        if gone:
            self._drop(set(gone))
        self._total += len(plan)
        self._queue.extendleft(reversed(plan))

    def _start(self, scanned: ScannedFile, root: Path) -> None:
        """Settle a file at once (unchanged, or failing before any read), or send it to a worker."""
        path = path_text(scanned.path)
        if path in self._busy():
            self._again[path] = (scanned, root)
            return
        self._abandoned.discard(path)
        old = self._known.get(path) or self._ledger.file(path)
        indexed = old is not None and old.status == "indexed"
        if (
            old is not None
            and (old.size, old.mtime_ns) == (scanned.size, scanned.mtime_ns)
            and scanned.problem is None
        ):
            if indexed:
                self.report.unchanged += 1
                self._finish(path)
                return
            if not self._options.retry_failed:  # failed as it is now: its recorded error stands
                self.report.failed.append(FailedFile(path, old.error or "could not be read"))
                self._finish(path)
                return
        rel = path_text(
            scanned.path.relative_to(root) if root in scanned.path.parents else scanned.path.name
        )
        row = FileRow(
            path, path_text(root), rel, file_type_of(scanned.path), scanned.size,
            scanned.mtime_ns, None, "indexed",
        )  # fmt: skip
        # Links are checked again just before reading: one may have changed since the scan.
        problem = scanned.problem or leads_out(scanned.path, self._planner.roots(root))
        if problem is None and scanned.size > self._limits.max_file_bytes:
            problem = (
                f"file is {scanned.size / 1048576:.1f} MiB, over the "
                f"{self._limits.max_file_size_mb:g} MiB limit (max_file_size_mb)"
            )
        if problem is not None:
            self.fail(row, problem)
            self._finish(path)
            return
        request = ParseRequest(
            scanned.path,
            self._parse_config(),
            parse_time_limit(self._limits.parse_timeout_s, scanned.size),
            self._limits.max_file_bytes,
            old.sha256 if indexed and old is not None else None,
        )
        self._inflight[self._parsers().submit(request)] = _Job(scanned, root, row, old)

    def _collect(self) -> None:
        """Take every answer that is in (none once stopping: a worker killed as the service
        closes must not fail its file)."""
        if self._options.stopped:
            return
        for future in [f for f in self._inflight if f.done()]:
            job = self._inflight.pop(future)
            path = job.row.path
            if path in self._abandoned:
                self._abandoned.discard(path)
                self._finish(path)
                continue
            result = future.result()
            if result.status == "missing":  # deleted since the scan: nothing to index or keep
                self.forget([path] if self._ledger.file(path) else [])
                self._finish(path)
            elif result.status == "unchanged":
                self._ledger.touch(path, job.scanned.size, job.scanned.mtime_ns)
                self.report.unchanged += 1
                self._finish(path)
            elif result.status == "failed":
                job.row.sha256 = result.sha256
                job.row.size = result.size if result.size is not None else job.row.size
                self.fail(job.row, result.error or "could not be read")
                self._finish(path)
            else:
                self._pending.add(self._parsed(job, result))

    def _parsed(self, job: _Job, result: ParseResult) -> ParsedFile:
        row = job.row
        row.sha256, row.title = result.sha256, result.title
        row.size = result.size if result.size is not None else row.size
        chunks: list[ChunkRow] = []
        texts: list[str] = []
        for chunk in result.chunks:
            embed_text = chunk.embedding_text()
            digest = text_hash(embed_text)
            chunks.append(
                ChunkRow(
                    chunk_id(row.path, chunk.ordinal, digest), row.path, chunk.ordinal, digest,
                    chunk.text, chunk.heading, chunk.page, chunk.start_line, chunk.end_line,
                )
            )  # fmt: skip
            texts.append(embed_text)
        is_new = job.old is None or job.old.status != "indexed"
        return ParsedFile(row, is_new, chunks, texts, (result.units, result.pages))
