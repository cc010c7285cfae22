"""Ingestion: folders and files in, chunks and vectors out, keyed by content hash.

A :class:`~.plan.Planner` says which files a run looks at. For each file: unchanged size
and mtime skip it without reading; an unchanged sha256 skips it without parsing; otherwise a
parse worker process reads, parses and chunks it (:mod:`..read.parse_pool`, under
``parse_timeout_s`` and the readers' limits) and its chunks get deterministic ids. Vectors
are reused for any chunk text already in the index (an edit re-embeds only what changed; a
rename or copy embeds nothing), and the rest are embedded in steps (:mod:`.pending`).
:class:`~.run.IngestRun` runs the loop: several files parse at once, and each becomes
searchable as soon as its vectors are in, so a slow file never hides the others. A file
that disappeared loses its chunks.

Write order, for crash safety: new vectors go to Chroma first, then the file's rows
commit in SQLite (the moment the change becomes visible), then the old vectors are
deleted. A crash leaves at worst orphan vectors, which searches never show (results are
read from SQLite) and :meth:`Ingestor.repair` deletes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Protocol

from llm_engineering.config import Settings
from llm_engineering.errors import DiskFullError
from llm_engineering.index_store.ingest.plan import Planner
from llm_engineering.index_store.ingest.report import IngestReport
from llm_engineering.index_store.ingest.run import IngestRun, RunLimits, RunOptions
from llm_engineering.index_store.read.chunking import CHUNKING
from llm_engineering.index_store.read.parse_pool import ParseConfig, ParsePool
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.index_store.store.vectors import VectorIndex

__all__ = ["EmbedderLike", "Ingestor"]

log = logging.getLogger(__name__)


class EmbedderLike(Protocol):
    name: str
    dimension: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


class Ingestor:
    """Brings the index in step with files on disk. Not re-entrant: one ingest at a time.

    Args:
        settings: The watched folders, the data folder, the size and time limits.
        ledger: The ledger of files and chunks.
        vectors: The Chroma collection.
        embedder: Returns the (lazily loaded) embedding model.
        parsers: Returns the parse worker pool.
        parse_config: Returns how the workers split files (it needs the model's tokenizer).
    """

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        vectors: VectorIndex,
        embedder: Callable[[], EmbedderLike],
        parsers: Callable[[], ParsePool],
        parse_config: Callable[[], ParseConfig],
    ):
        self._ledger = ledger
        self._vectors = vectors
        self._embedder = embedder
        self._parsers = parsers
        self._parse_config = parse_config
        self._limits = RunLimits.of(settings)
        self.planner = Planner(ledger, settings.watch, settings.data_dir)

    def ingest(self, targets: Sequence[Path], options: RunOptions) -> IngestReport:
        """Index files and folders; forget files that vanished from the given folders.

        What ``options`` ask (progress, stop, paths gone or changed meanwhile, whether a
        failed file that has not changed is tried again): see :class:`~.run.RunOptions`.

        Raises:
            PathError: a target does not exist, or is a file of an unsupported type.
        """
        return self._run(targets, options, strict=True)

    def sync(self, paths: Iterable[Path], options: RunOptions) -> IngestReport:
        """Bring these paths in step with the disk, whatever happened to them.

        A file or folder that exists is indexed (a folder is rescanned); one that is gone is
        forgotten together with everything that was under it; unsupported files are skipped.
        This is what the folder watcher calls with the paths it saw change.
        """
        return self._run(list(paths), options, strict=False)

    def _run(self, targets: Sequence[Path], options: RunOptions, strict: bool) -> IngestReport:
        started = time.perf_counter()
        if self._ledger.chunked_by(CHUNKING):
            log.info("files are cut differently since they were indexed: each is read again")
        plan, gone = self.planner.plan(targets, strict)
        run = IngestRun(
            self._ledger,
            self._vectors,
            self._embedder,
            self.planner,
            self._parsers,
            self._parse_config,
            self._limits,
            options,
        )
        # A run that never says it ended (a crash, an error) makes the next start compare
        # every vector id with the chunks (:meth:`repair`). On a full disk the run says so
        # file by file, and the mark stays as it was (the repair compares the counts too).
        with contextlib.suppress(DiskFullError):
            self._ledger.mark_vectors(False)
        run.process(plan, gone)
        with contextlib.suppress(DiskFullError):
            self._ledger.mark_vectors(True)
        run.report.seconds = time.perf_counter() - started
        return run.report

    def repair(self) -> tuple[int, int]:
        """Make Chroma agree with SQLite after a crash.

        When the last write ended in step (:meth:`Ledger.vectors_settled`) and Chroma holds as
        many vectors as there are chunks, nothing is read: comparing every id costs a pass
        over both stores (a minute at a million chunks) at every start.

        Returns:
            (orphan vectors deleted, files whose vectors were missing and were forgotten so the
            next scan indexes them again).
        """
        if (
            self._ledger.vectors_settled()
            and self._vectors.count() == self._ledger.counts()["chunks"]
        ):
            return 0, 0
        orphans, broken = self._compare_every_id()
        self._ledger.mark_vectors(True)
        return orphans, broken

    def _compare_every_id(self) -> tuple[int, int]:
        in_chroma = self._vectors.all_ids()
        in_sqlite = self._ledger.all_chunk_ids()
        orphans = sorted(in_chroma - in_sqlite)
        self._vectors.delete(orphans)
        missing = in_sqlite - in_chroma
        broken: set[str] = set()
        if missing:
            for chunk in self._ledger.chunks_by_ids(sorted(missing)).values():
                broken.add(chunk.path)
            self._ledger.remove_files(broken)
        return len(orphans), len(broken)
