"""Ingestion: folders and files in, chunks and vectors out, keyed by content hash.

For each file: unchanged size and mtime skip it without reading; an unchanged sha256
skips it without parsing; otherwise a parse worker process reads, parses and chunks it
(:mod:`.parse_pool`, under ``parse_timeout_s`` and the readers' limits) and its chunks
get deterministic ids. Vectors are reused for any chunk text already in the index (an
edit re-embeds only what changed; a rename or copy embeds nothing), and the rest are
embedded in steps (:mod:`.commits`). :mod:`.pipeline` runs the loop: several files parse
at once, and each becomes searchable as soon as its vectors are in, so a slow file never
hides the others. A file that disappeared loses its chunks.

Write order, for crash safety: new vectors go to Chroma first, then the file's rows
commit in SQLite (the moment the change becomes visible), then the old vectors are
deleted. A crash leaves at worst orphan vectors, which searches never show (results are
read from SQLite) and :meth:`Ingestor.repair` deletes.
"""

from __future__ import annotations

import errno
import logging
import stat
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from llm_engineering.config import Settings
from llm_engineering.errors import PathError
from llm_engineering.index_store.ledger import FileRow, Ledger
from llm_engineering.index_store.names import path_text
from llm_engineering.index_store.parse_pool import ParseConfig, ParsePool
from llm_engineering.index_store.readers import file_type_of
from llm_engineering.index_store.report import FailedFile, IngestReport
from llm_engineering.index_store.scanning import ScannedFile, is_supported, scan_file, scan_folder
from llm_engineering.index_store.vectors import VectorIndex

__all__ = ["FailedFile", "GoneFn", "IngestReport", "Ingestor", "MoreFn", "ProgressFn"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
"""progress(done, total, message)."""

GoneFn = Callable[[], Sequence[Path]]
"""Paths found deleted while a run is under way; asked between two files and forgotten at once."""

MoreFn = Callable[[], Sequence[Path]]
"""Paths changed while a run is under way (the watcher's due ones); the run takes them on."""

Plan = list[tuple[ScannedFile, Path]]
"""Files to index, each with the watched folder (or the folder named) it belongs to."""


class EmbedderLike(Protocol):
    name: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


class Ingestor:
    """Brings the index in step with files on disk. Not re-entrant: one ingest at a time.

    Args:
        settings: Chunk sizes, size limit, watched folders.
        state: The ledger of files and chunks.
        vectors: The Chroma collection.
        embedder: Returns the (lazily loaded) embedding model.
        parsers: Returns the parse worker pool.
        parse_config: Returns how the workers split files (it needs the model's tokenizer).
    """

    def __init__(
        self,
        settings: Settings,
        state: Ledger,
        vectors: VectorIndex,
        embedder: Callable[[], EmbedderLike],
        parsers: Callable[[], ParsePool],
        parse_config: Callable[[], ParseConfig],
    ):
        self.settings = settings
        self.state = state
        self.vectors = vectors
        self.embedder = embedder
        self.parsers = parsers
        self.parse_config = parse_config
        # Text hash -> id of a vector whose chunk row this run removed and whose deletion
        # waits for the run's end, so a renamed file reuses it (deletions go first).
        self.reusable: dict[str, str] = {}
        self._deferred: list[str] = []

    # -- public ------------------------------------------------------------------------

    def ingest(
        self,
        targets: Sequence[Path],
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        gone: GoneFn | None = None,
        more: MoreFn | None = None,
        retry_failed: bool = True,
    ) -> IngestReport:
        """Index files and folders; forget files that vanished from the given folders.

        ``stop`` ends the run early, keeping what was committed. ``gone`` is asked between
        two files for paths deleted meanwhile, which are forgotten then; ``more`` for paths
        changed meanwhile, which the run indexes too (first). A file that failed is tried
        again even if unchanged (a parse may have timed out on a busy machine), unless
        ``retry_failed`` is False: then only a changed one is.

        Raises:
            PathError: a target does not exist, or is a file of an unsupported type.
        """
        return self._run(
            targets, progress, stop, gone, more, strict=True, retry_failed=retry_failed
        )

    def sync(
        self,
        paths: Iterable[Path],
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        gone: GoneFn | None = None,
        more: MoreFn | None = None,
    ) -> IngestReport:
        """Bring these paths in step with the disk, whatever happened to them.

        A file or folder that exists is indexed (a folder is rescanned); one that is gone is
        forgotten together with everything that was under it; unsupported files are skipped.
        This is what the folder watcher calls with the paths it saw change.
        """
        return self._run(list(paths), progress, stop, gone, more, strict=False)

    def _run(
        self,
        targets: Sequence[Path],
        progress: ProgressFn | None,
        stop: threading.Event | None,
        gone_now: GoneFn | None,
        more: MoreFn | None,
        strict: bool,
        retry_failed: bool = True,
    ) -> IngestReport:
        from llm_engineering.index_store.pipeline import IngestRun

        started = time.perf_counter()
        report = IngestReport()
        plan, gone = self.plan(targets, strict)
        # Deletions first, so a deleted file leaves searches before a long run of additions;
        # their vectors stay until the end, so a renamed or moved file reuses them.
        try:
            self.forget(sorted(set(gone)), report)
            IngestRun(self, report, progress, stop, gone_now, more, retry_failed).process(plan)
        finally:
            self.vectors.delete(self._deferred)
            self.reusable, self._deferred = {}, []
        report.seconds = time.perf_counter() - started
        return report

    def plan(self, targets: Sequence[Path], strict: bool) -> tuple[Plan, list[str]]:
        """The files to index for ``targets``, and the indexed paths that are gone.

        Raises:
            PathError: (``strict`` only) a target does not exist, cannot be looked at, or is
                not supported.
        """
        plan: Plan = []
        gone: list[str] = []
        for target in targets:
            target = target.expanduser().absolute()
            try:
                kind = _kind(target)
            except OSError as exc:  # a folder above it cannot be searched
                if strict:
                    raise PathError(f"cannot ingest {target}: {exc.strerror or exc}") from exc
                # The folder's own scan fails it (its permissions changed: it had an event).
                log.info("cannot look at %s (%s); left as it is", target, exc.strerror or exc)
                continue
            if kind == "missing":
                if strict:
                    raise PathError(f"cannot ingest {target}: no such file or folder")
                gone += self.known_at(target)
            elif kind == "folder":
                target = target.resolve()
                seen = set()
                roots = self.roots(target)
                for scanned in scan_folder(target, exclude=self.settings.data_dir, roots=roots):
                    plan.append((scanned, self._root_for(scanned.path, target)))
                    seen.add(path_text(scanned.path))
                gone += [path for path in self.state.files_under(str(target)) if path not in seen]
                if path_text(target) not in seen:  # its own entry, from when it could not be read
                    gone += [path_text(target)] if self.state.file(str(target)) else []
            elif kind == "file":
                if not is_supported(target):
                    if strict:
                        raise PathError(
                            f"cannot ingest {target}: '.{file_type_of(target)}' files are not supported "
                            f"(see `llm-eng status` for the supported types)"
                        )
                    continue
                scanned = scan_file(target, self.roots(target.parent))
                plan.append((scanned, self._root_for(target, target.parent)))
            elif strict:
                raise PathError(f"cannot ingest {target}: not a regular file or folder")
        # A folder and a file inside it may both be named (the watcher does that): once each.
        unique = {str(scanned.path): (scanned, root) for scanned, root in reversed(plan)}
        plan = [unique[key] for key in dict.fromkeys(str(scanned.path) for scanned, _ in plan)]
        return plan, gone

    def remove(self, paths: Iterable[Path]) -> int:
        """Forget these files (deleted on disk). Returns how many were known."""
        known = [path_text(p) for p in paths if self.state.file(str(p)) is not None]
        removed_ids = self.state.remove_files(known)
        self.vectors.delete(removed_ids)
        return len(known)

    def repair(self) -> tuple[int, int]:
        """Make Chroma agree with SQLite after a crash.

        Returns:
            (orphan vectors deleted, files whose vectors were missing and were forgotten so the
            next scan indexes them again).
        """
        in_chroma = self.vectors.all_ids()
        in_sqlite = self.state.all_chunk_ids()
        orphans = sorted(in_chroma - in_sqlite)
        self.vectors.delete(orphans)
        missing = in_sqlite - in_chroma
        broken: set[str] = set()
        if missing:
            for chunk in self.state.chunks_by_ids(sorted(missing)).values():
                broken.add(chunk["path"])
            self.state.remove_files(broken)
        return len(orphans), len(broken)

    # -- for the run -------------------------------------------------------------------

    def roots(self, folder: Path) -> list[Path]:
        """Where links may lead from files found under ``folder``: the watched folders and it."""
        return [*self.settings.watch, folder]

    def _root_for(self, path: Path, default: Path) -> Path:
        for folder in self.settings.watch:
            if path == folder or folder in path.parents:
                return folder
        return default

    def known_at(self, target: Path) -> list[str]:
        """The indexed files at ``target`` (a file) or under it (a folder)."""
        key = path_text(target)
        return [*self.state.files_under(key), *([key] if self.state.file(key) else [])]

    def forget(self, paths: list[str], report: IngestReport) -> None:
        """Forget files now; their vectors wait for the end of the run (see ``reusable``)."""
        if paths:
            self._deferred += self.state.remove_files(paths, self.reusable)
            report.removed += len(paths)
            report.removed_paths += paths

    def fail(self, row: FileRow, error: str, report: IngestReport) -> None:
        """Record ``row`` as failed with ``error`` (its old chunks go)."""
        row.status, row.error = "failed", error
        stale = self.state.replace_file(row, [])
        self.vectors.delete(stale)
        report.failed.append(FailedFile(row.path, error))
        log.warning("could not index %s: %s", row.path, error)


def _kind(target: Path) -> str:
    """``folder``, ``file`` (a link that leads nowhere too: the scan reports it), ``missing``
    or ``other``.

    Raises:
        OSError: ``target`` cannot be looked at (a folder above it cannot be searched).
    """
    try:
        info = target.stat()
    except (FileNotFoundError, NotADirectoryError):
        return "file" if target.is_symlink() else "missing"
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        return "file"
    if stat.S_ISDIR(info.st_mode):
        return "folder"
    return "file" if stat.S_ISREG(info.st_mode) else "other"
