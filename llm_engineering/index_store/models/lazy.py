"""``IndexModels``: the models an index uses, each loaded the first time it is needed."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from llm_engineering.config import Settings
from llm_engineering.index_store.models.backends import (
    embedding_location,
    make_embedder,
    make_reranker,
    reranker_location,
)
from llm_engineering.index_store.models.precision import resolve
from llm_engineering.index_store.store.vectors import VectorIndex

__all__ = ["IndexModels"]


class IndexModels:
    """The embedder (in process, or ``embedding_url``) and the reranker the settings choose
    (:func:`~.backends.make_reranker`), loaded on first call, once, from any thread.

    Args:
        settings: Which models, where.
        vectors: The collection, which refuses an embedder of another model or dimension.
        document_frequency: The keyword index's, for the offline reranker.
        embedder: One to use instead of loading ``settings.embedding_model`` (tests pass
            the session's model); it belongs to the caller, who closes it.
    """

    def __init__(
        self,
        settings: Settings,
        vectors: VectorIndex,
        document_frequency: Callable[..., Any],
        embedder: Any = None,
    ):
        self._settings = settings
        self._vectors = vectors
        self._document_frequency = document_frequency
        self._embedder = embedder
        self._owns_embedder = embedder is None
        self._reranker: Any = None
        self._lock = threading.RLock()  # reranker() loads the embedder inside it
        self.on_load: Callable[[str], None] | None = None
        """Told the embedding model's name just before it loads (seconds): a progress note."""

    def embedder(self) -> Any:
        """The embedder, loaded on first call.

        Raises:
            ModelLoadError: it cannot be loaded.
            EmbeddingModelMismatch: the index was built with another model, or in another
                precision than ``embedding_precision`` names.
        """
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    if self.on_load is not None:
                        self.on_load(self._settings.embedding_model)
                    # An existing index is embedded in the precision it was built with.
                    precision = resolve(
                        self._settings.embedding_precision,
                        self._vectors.recorded_precision,
                        self._vectors.location,
                    )
                    embedder = make_embedder(self._settings, precision)
                    try:
                        self._vectors.check_model(
                            embedder.name, embedder.dimension, getattr(embedder, "precision", None)
                        )
                    except Exception:
                        getattr(embedder, "close", lambda: None)()
                        raise
                    self._embedder = embedder
        return self._embedder

    def reranker(self) -> Any:
        """The reranker, loaded on first call.

        Raises:
            ModelLoadError: the cross-encoder cannot be loaded.
        """
        if self._reranker is None:
            with self._lock:
                if self._reranker is None:
                    self._reranker = make_reranker(
                        self._settings, self.embedder, self._document_frequency
                    )
        return self._reranker

    @property
    def embedder_loaded(self) -> bool:
        return self._embedder is not None

    @property
    def loaded_embedder(self) -> Any:
        """The embedder if it is loaded, else None (never loads it)."""
        return self._embedder

    def where(self) -> tuple[str, str]:
        """Where embeddings and reranking run, as ``index_status`` says it."""
        return (
            embedding_location(self._settings, self._embedder),
            reranker_location(self._settings, self._reranker),
        )

    def close(self) -> None:
        for model in (self._embedder if self._owns_embedder else None, self._reranker):
            closing = getattr(model, "close", None)
            if closing is not None:
                closing()
