"""``IndexService``: the index opened once, for the server, the CLI, tests and benchmarks."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_engineering.config import Settings
from llm_engineering.index_store.chunking import Chunker
from llm_engineering.index_store.embeddings import Embedder
from llm_engineering.index_store.ingest import (
    EmbedderLike,
    FailedFile,
    Ingestor,
    IngestReport,
    ProgressFn,
)
from llm_engineering.index_store.search import Hit, Searcher, SearchMode
from llm_engineering.index_store.state import StateDB
from llm_engineering.index_store.vectors import VectorIndex

__all__ = ["IndexService", "IndexStatus"]

log = logging.getLogger(__name__)


@dataclass
class IndexStatus:
    documents: int
    chunks: int
    pending: int
    indexing: str | None
    failed: list[FailedFile]
    watched: list[str]
    data_dir: str
    vector_store: str
    embedding_model: str
    embedding_dimension: int | None
    embedding_loaded: bool
    last_ingest: IngestReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class IndexService:
    """The state, the vectors, the embedding model (loaded on first need), ingest and search.

    Args:
        settings: The settings.
        embedder: An embedder to use instead of loading ``settings.embedding_model``
            (tests pass a small deterministic one through this seam).

    Raises:
        EmbeddingModelMismatch: the index was built with another embedding model.
        ConfigError: the Chroma server cannot be reached.
    """

    def __init__(self, settings: Settings, embedder: EmbedderLike | None = None):
        self.settings = settings
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        self.state = StateDB(settings.state_path)
        self.vectors = VectorIndex(settings)
        self.vectors.check_model(settings.embedding_model)
        self._embedder: Any = embedder
        self._chunker: Chunker | None = None
        self._load_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._pending = 0
        self._current: str | None = None
        self.last_report: IngestReport | None = None
        self.ingestor = Ingestor(settings, self.state, self.vectors, self.embedder, self.chunker)
        self.searcher = Searcher(
            self.state, self.vectors, self.embedder, settings.candidates, settings.rrf_k
        )

    # -- models ------------------------------------------------------------------------

    def embedder(self) -> Any:
        """The embedding model, loaded on first call (thread-safe)."""
        if self._embedder is None:
            with self._load_lock:
                if self._embedder is None:
                    embedder = Embedder(self.settings.embedding_model, self.settings.device)
                    self.vectors.check_model(embedder.name, embedder.dimension)
                    self._embedder = embedder
        return self._embedder

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    def chunker(self) -> Chunker:
        if self._chunker is None:
            embedder = self.embedder()
            tokenizer = getattr(embedder, "tokenizer", None) or (lambda text: text.split())
            self._chunker = Chunker(
                self.settings.chunk_size, self.settings.chunk_overlap, tokenizer
            )
        return self._chunker

    # -- work --------------------------------------------------------------------------

    def ingest(
        self,
        targets: Sequence[Path],
        progress: ProgressFn | None = None,
        rebuild: bool = False,
        stop: threading.Event | None = None,
    ) -> IngestReport:
        """Index ``targets`` (files or folders). One ingest runs at a time; others wait."""
        with self._write_lock:
            if rebuild:
                log.info("rebuilding the index from scratch")
                self.vectors.drop()
                self.state.clear()

            def track(done: int, total: int, message: str) -> None:
                self._pending = total - done
                self._current = message if done < total else None
                if progress is not None:
                    progress(done, total, message)

            try:
                report = self.ingestor.ingest(targets, track, stop)
            finally:
                self._pending = 0
                self._current = None
            self.last_report = report
            return report

    def search(
        self,
        query: str,
        top_k: int = 5,
        mode: SearchMode = "hybrid",
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
    ) -> tuple[list[Hit], float]:
        return self.searcher.search(query, top_k, mode, path_prefix, file_types)

    def status(self) -> IndexStatus:
        counts = self.state.counts()
        failed = [FailedFile(row.path, row.error or "") for row in self.state.failed_files()]
        _, dim = self.vectors.recorded_model
        return IndexStatus(
            documents=counts["documents"],
            chunks=counts["chunks"],
            pending=self._pending,
            indexing=self._current,
            failed=failed,
            watched=[str(p) for p in self.settings.watch],
            data_dir=str(self.settings.data_dir),
            vector_store=(
                f"chroma server {self.settings.chroma_url}"
                if self.settings.chroma_url
                else f"embedded chroma {self.settings.chroma_dir}"
            ),
            embedding_model=self.settings.embedding_model,
            embedding_dimension=getattr(self._embedder, "dimension", None) or dim,
            embedding_loaded=self.embedder_loaded,
            last_ingest=self.last_report,
        )

    def close(self) -> None:
        self.state.close()
