"""``IndexService``: the index opened once, for the server, the CLI, tests and benchmarks."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from llm_engineering.config import Settings
from llm_engineering.errors import IndexBusyError, PathError
from llm_engineering.index_store.changes import ChangeObservers, IndexChange
from llm_engineering.index_store.ingest.full_disk import WritePause
from llm_engineering.index_store.ingest.ingestor import EmbedderLike, Ingestor
from llm_engineering.index_store.ingest.published import ProgressFile, RunProgress
from llm_engineering.index_store.ingest.report import IngestReport
from llm_engineering.index_store.ingest.run import GoneFn, MoreFn, ProgressFn, RunOptions
from llm_engineering.index_store.models.lazy import IndexModels
from llm_engineering.index_store.models.precision import resolve
from llm_engineering.index_store.query.documents import Documents, DocumentSlice
from llm_engineering.index_store.query.listing import DocumentPage
from llm_engineering.index_store.query.search import Hit, Searcher, SearchMode
from llm_engineering.index_store.read.parse_pool import ParseConfig, ParsePool
from llm_engineering.index_store.read.readers import ReadLimits
from llm_engineering.index_store.read.tokens import model_spec, spec_of
from llm_engineering.index_store.status import IndexStatus, status_of
from llm_engineering.index_store.store.keyword import KeywordIndex
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.index_store.store.vectors import VectorIndex
from llm_engineering.lock import WriterLock
from llm_engineering.paths import confine
from llm_engineering.retrieval.live import EmbeddingIndex, LiveFile, live_index
from llm_engineering.storage import Storage

__all__ = ["IndexService", "IndexStatus"]

log = logging.getLogger(__name__)


class IndexService:
    """The ledger, the keyword index, the vectors, the embedding model (loaded on first need), ingest and search.

    Args:
        settings: The settings.
        embedder: An embedder to use instead of loading ``settings.embedding_model``
            (tests pass a small deterministic one through this seam).
        parsers: Parse workers to use (and leave open) instead of starting
            ``settings.parse_workers`` of its own on first need.

        rebuild: Drop the index first (:meth:`rebuild`); a damaged ``state.sqlite`` is moved
            aside to ``state.sqlite.damaged`` and a new one made.

    Raises:
        EmbeddingModelMismatch: the index was built with another embedding model.
        ConfigError: the Chroma server cannot be reached.
        StateFileDamaged: ``state.sqlite`` cannot be read (and ``rebuild`` is not asked for).
    """

    def __init__(
        self,
        settings: Settings,
        embedder: EmbedderLike | None = None,
        *,
        rebuild: bool = False,
        parsers: ParsePool | None = None,
    ):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.storage = Storage(settings.state_path)
        self.lock = WriterLock(settings.data_dir)
        self.damaged_file: Path | None = None
        """Where a rebuild moved a damaged ``state.sqlite`` (None: it was readable)."""
        if rebuild and self.storage.damaged() is not None:
            self._require_writer()
            self.damaged_file = self.storage.set_aside()
            log.warning("%s was damaged: moved it to %s", settings.state_path, self.damaged_file)
        self.ledger = Ledger(self.storage)
        self.keyword = KeywordIndex(self.storage)
        self.documents = Documents(self.ledger, settings.watch)
        self.live_file = LiveFile(settings.data_dir)
        self._live_stamp = self.live_file.stamp()
        self.live = live_index(settings, self.live_file.read())
        """The embedding model and collection searches use (:mod:`llm_engineering.retrieval.live`)."""
        self._parsers_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._parsers = parsers
        self._own_parsers = parsers is None
        self._parse_config: ParseConfig | None = None
        self.progress_file = ProgressFile(settings.data_dir / "progress.json")
        """Where this process, when it writes, tells readers how far its run is."""
        self.run = RunProgress(self.progress_file)
        self.last_report: IngestReport | None = None
        self._observers = ChangeObservers()
        self.given_embedder = embedder  # the configured model's: not a tuned one's
        given = embedder if self.live.version is None else None
        self._assemble(self.live, VectorIndex(self.index_settings(self.live)), given)
        if rebuild:
            self.rebuild()
        self.vectors.check_model(self.live.model)
        if self.vectors.recorded_precision is not None:  # an explicit other one: refused now
            resolve(
                settings.embedding_precision,
                self.vectors.recorded_precision,
                self.vectors.location,
            )
        self._seen_generation = self.ledger.generation()

    def index_settings(self, live: EmbeddingIndex) -> Settings:
        return self.settings.model_copy(
            update={"embedding_model": live.model, "collection": live.collection}
        )

    def _assemble(self, live: EmbeddingIndex, vectors: VectorIndex, embedder: Any) -> None:
        """The parts that depend on the embedding model: its vectors, the models, ingest, search."""
        settings = self.index_settings(live)
        self.live = live
        self.vectors = vectors
        self.models = IndexModels(settings, vectors, self.keyword.document_frequency, embedder)
        self.ingestor = Ingestor(
            settings, self.ledger, vectors, self.embedder, self.parsers, self.parse_config
        )
        self.pause = WritePause(settings.data_dir, vectors, self.run, self.ingestor.repair)
        """Writes wait while the data folder's disk is full (see :mod:`.full_disk`)."""
        self.searcher = Searcher(
            self.ledger, self.keyword, vectors, self.embedder, settings.candidates, settings.rrf_k,
            keyword_postings=settings.keyword_postings, reranker=self.reranker,
            rerank_candidates=settings.rerank_candidates, batch_queries=settings.query_batching,
        )  # fmt: skip

    def switch_index(self, live: EmbeddingIndex, vectors: VectorIndex, embedder: Any) -> None:
        """Answer from another embedding model's collection from now on (the retrieval tuner's
        switch and rollback). The caller holds :meth:`exclusive` and has made ``vectors`` hold a
        vector for every chunk; the models of the index left behind are closed."""
        old = self.models
        self._assemble(live, vectors, embedder)
        self.ledger.mark_vectors(True)
        old.close()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """No ingest or sync runs inside (the writer's lock on the index).

        Raises:
            IndexBusyError: another process is the writer of this data folder.
        """
        self._require_writer()
        with self._write_lock:
            yield

    # -- models ------------------------------------------------------------------------

    def embedder(self) -> Any:
        """The embedder, loaded on first call (see :class:`~.models.lazy.IndexModels`)."""
        return self.models.embedder()

    def reranker(self) -> Any:
        """The reranker, loaded on first call."""
        return self.models.reranker()

    @property
    def embedder_loaded(self) -> bool:
        return self.models.embedder_loaded

    def parsers(self) -> ParsePool:
        """The parse worker processes (they start on the first file they are given)."""
        with self._parsers_lock:
            if self._parsers is None:
                self._parsers = ParsePool(
                    self.settings.parse_workers, self.settings.parse_memory_bytes
                )
            return self._parsers

    def parse_config(self) -> ParseConfig:
        """How files are split: the settings' chunk sizes and limits, the model's tokenizer."""
        if self._parse_config is None:
            self._parse_config = ParseConfig(
                self.settings.chunk_size,
                self.settings.chunk_overlap,
                self._tokenizer_spec(),
                ReadLimits.of(self.settings),
            )
        return self._parse_config

    def _tokenizer_spec(self) -> str | None:
        """The model's tokenizer for the parse workers: read from its ``tokenizer.json`` (as the
        embedders read it) until the model is loaded, which waits for a chunk to embed."""
        spec = model_spec(self.live.model) if not self.embedder_loaded else None
        return spec or spec_of(getattr(self.embedder(), "tokenizer", None))

    # -- documents ---------------------------------------------------------------------

    def get_document(
        self,
        *,
        path: str | None = None,
        chunk_id: str | None = None,
        start_line: int | None = None,
        end_line: int | None = None,
        page: int | None = None,
        pages: str | None = None,
        around: int | None = None,
        max_chars: int = 20_000,
    ) -> DocumentSlice:
        """A slice of an indexed document's text: see :meth:`Documents.read`."""
        return self.documents.read(
            path=path, chunk_id=chunk_id, start_line=start_line, end_line=end_line, page=page,
            pages=pages, around=around, max_chars=max_chars,
        )  # fmt: skip

    def list_documents(
        self,
        *,
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
        status: Sequence[str] | None = None,
        modified_after: float | None = None,
        sort: str = "path",
        limit: int = 50,
        cursor: str | None = None,
        pending: Iterable[Path] = (),
    ) -> DocumentPage:
        """Indexed, pending and failed files, filtered, sorted and paged: see
        :func:`~.query.listing.list_documents`.

        Args:
            pending: Paths the caller knows wait for indexing (the watcher's queue). While an
                ingest runs, the watched folders are walked for the files it has not reached.
        """
        return self.documents.listing(
            path_prefix=path_prefix, file_types=file_types, status=status,
            modified_after=modified_after, sort=sort, limit=limit, cursor=cursor,
            pending=pending, scan=self.run.pending > 0,
        )  # fmt: skip

    def document_uri(self, path: str) -> str:
        """The ``doc://FOLDER/REL/PATH`` URI of a file in a watched folder."""
        return self.documents.uri(path)

    def path_for_uri(self, folder: str, rel_path: str) -> Path:
        """The file a ``doc://`` URI names, confined to the watched folders (PathError if not)."""
        return self.documents.path_for_uri(folder, rel_path)

    # -- the folders -------------------------------------------------------------------

    def watched_folders(self) -> list[Path]:
        """The watched folders.

        Raises:
            PathError: none are watched, so there is nothing this process may index.
        """
        if not self.settings.watch:
            raise PathError(
                "no folders are watched, so there is nothing this server may index: start it with "
                "--watch DIR (or LLM_ENG_WATCH, or `watch` in the config file)"
            )
        return list(self.settings.watch)

    def inside_watched(self, path: str | Path) -> Path:
        """``path`` resolved (links too) inside a watched folder; relative means the first one.

        Raises:
            PathError: no folders are watched, or the path lies outside them or does not exist.
        """
        folders = self.watched_folders()
        return confine(
            path,
            folders,
            relative_to=folders[0],
            roots_name="the watched folders; only those can be indexed",
        )

    # -- work --------------------------------------------------------------------------

    @property
    def is_writer(self) -> bool:
        return self.lock.held

    @property
    def writer_pid(self) -> int | None:
        """The process that writes this data folder (this one or another), if any."""
        return self.lock.holder()

    def _require_writer(self) -> None:
        if not self.lock.try_acquire():
            holder = self.lock.holder()
            raise IndexBusyError(
                f"another llm-eng process (pid {holder or '?'}) is writing the index in "
                f"{self.settings.data_dir}; it keeps its watched folders indexed itself. Stop it, "
                "or use its `ingest` tool, or give this process another --data-dir."
            )

    def rebuild(self) -> None:
        """Forget everything: drop the vectors and the state (then ingest again).

        Raises:
            IndexBusyError: another process is the writer of this data folder.
        """
        self._require_writer()
        with self._write_lock:
            log.info("dropping the index in %s", self.settings.data_dir)
            self.vectors.drop()
            self.ledger.clear()

    def ingest(
        self,
        targets: Sequence[Path],
        progress: ProgressFn | None = None,
        stop: threading.Event | None = None,
        gone: GoneFn | None = None,
        more: MoreFn | None = None,
        retry_failed: bool = True,
    ) -> IngestReport:
        """Index ``targets`` (files or folders). One ingest runs at a time; others wait.

        ``gone`` is asked between two files for paths deleted meanwhile, ``more`` for paths
        changed meanwhile, which the run takes on (the watcher's). ``retry_failed=False``
        leaves a failed file that has not changed since as it is (commands that only read).

        Raises:
            IndexBusyError: another process is the writer of this data folder.
            PathError: a target does not exist or is not supported.
        """
        options = RunOptions(progress, stop, gone, more, retry_failed)
        return self._write(lambda given: self.ingestor.ingest(targets, given), options)

    def sync(
        self,
        paths: Sequence[Path],
        progress: ProgressFn | None = None,
        gone: GoneFn | None = None,
        more: MoreFn | None = None,
        stop: threading.Event | None = None,
    ) -> IngestReport:
        """Bring changed paths (existing or gone, files or folders) in step with the disk.

        Deletions among them are applied first; ``gone``, ``more`` and ``stop`` as for
        :meth:`ingest`.
        """
        options = RunOptions(progress, stop, gone, more)
        return self._write(lambda given: self.ingestor.sync(paths, given), options)

    def on_change(self, callback: Callable[[IndexChange], None]) -> Callable[[], None]:
        """Call ``callback`` after each ingest or sync that changed something, on the writing
        thread (keep it short; it must not raise). Returns a function that unregisters it.

        Only the writing process sees changes: a reader's callbacks are not called.
        """
        return self._observers.add(callback)

    def repair(self) -> tuple[int, int]:
        """After a crash: drop orphan vectors, forget files whose vectors are missing."""
        self._require_writer()
        with self._write_lock, self.pause.guard():
            return self.ingestor.repair()

    def resume(self) -> bool:
        """After a full disk paused the writing: whether writes may go on (:mod:`.full_disk`)."""
        with self._write_lock:
            return self.pause.resume()

    def _write(
        self, work: Callable[[RunOptions], IngestReport], options: RunOptions
    ) -> IngestReport:
        self._require_writer()
        # The pause is recorded (its error goes through it) before the run ends and is published.
        with self._write_lock, self.run.running(options.progress) as track, self.pause.guard():
            report = work(replace(options, progress=track))
            self.last_report = report
        self._observers.fire(IndexChange.of(report))
        return report

    def search(
        self,
        query: str,
        *,
        top_k: int = 5,
        mode: SearchMode = "hybrid",
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
        rerank: bool = False,
        rerank_pool: int | None = None,
    ) -> tuple[list[Hit], float]:
        self.refresh()
        return self.searcher.search(
            query, top_k, mode, path_prefix, file_types, rerank, rerank_pool
        )

    def refresh(self) -> None:
        """In a process that does not write, pick up what the writing process changed."""
        if self.is_writer:
            return
        stamp = self.live_file.stamp()
        if stamp != self._live_stamp:  # the writer switched the embedding model
            self._live_stamp = stamp
            live = live_index(self.settings, self.live_file.read())
            if live != self.live:
                old = self.models
                given = self.given_embedder if live.version is None else None
                self._assemble(live, VectorIndex(self.index_settings(live)), given)
                old.close()
        generation = self.ledger.generation()
        if generation != self._seen_generation:
            self.vectors.reopen()
            self._seen_generation = generation

    def status(self) -> IndexStatus:
        return status_of(self)

    def close(self) -> None:
        if self._own_parsers and self._parsers is not None:
            self._parsers.close()
        self.models.close()
        self.lock.release()
        self.storage.close()
