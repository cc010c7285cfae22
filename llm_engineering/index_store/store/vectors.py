"""Dense vectors in Chroma: each chunk's vector under the chunk's id, with its path, file type
and position as metadata, and no text (``state.sqlite`` holds the text; searches read hits
back from it). Written straight to the collection: through LlamaIndex's ``ChromaVectorStore``
every vector also carried its text twice (the document, which Chroma indexes for full-text
search, and the node's JSON), which made writes 2.2x slower and the folder 6x larger.

Chroma runs embedded in the data folder by default, or as a server (``chroma run``)
given by URL; the code is the same. The collection records the embedding model's name
and dimension, and opening it with another model is refused: mixing vectors of two
models silently ruins search.

A full disk pauses the collection. Embedded Chroma that failed to write (``Error in
compaction``) is left in a state where its next delete, or any call once space is freed,
can block for good while holding the GIL, freezing the whole process; so after such an
error nothing calls that client again: writes and queries raise :class:`VectorsPaused`,
deletes are skipped (the vectors they leave are orphans, which the repair after
:meth:`VectorIndex.resume` deletes), until ``resume`` opens the folder afresh.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlparse

from llm_engineering.config import Settings
from llm_engineering.errors import ConfigError, DiskFullError, EmbeddingModelMismatch, LlmEngError
from llm_engineering.storage import is_disk_full, no_space_left

__all__ = ["VectorIndex", "VectorRecord", "VectorsPaused"]

T = TypeVar("T")

log = logging.getLogger(__name__)

_MODEL_KEY = "embedding_model"
_PRECISION_KEY = "embedding_precision"
# Below this much free space, a failed compaction is taken for a full disk: merging the log
# rewrites segment files of several MB.
LOW_SPACE = 64 << 20
_DIM_KEY = "embedding_dimension"


@dataclass
class VectorRecord:
    id: str
    embedding: Sequence[float]
    metadata: dict[str, Any]


class VectorsPaused(DiskFullError):
    """The collection is paused after a write failed for want of space (see the module)."""


def _silence_chroma() -> None:
    for name in ("chromadb", "chromadb.telemetry", "chromadb.telemetry.product.posthog"):
        logging.getLogger(name).setLevel(logging.ERROR)


def open_client(settings: Settings) -> Any:
    """A Chroma client: embedded in ``data_dir/chroma``, or a server at ``chroma_url``.

    Raises:
        ConfigError: the server cannot be reached.
    """
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    _silence_chroma()
    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if not settings.chroma_url:
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    url = urlparse(settings.chroma_url)
    try:
        client = chromadb.HttpClient(
            host=url.hostname or "localhost",
            port=url.port or (443 if url.scheme == "https" else 8000),
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
        client.heartbeat()
    except Exception as exc:
        raise ConfigError(
            f"cannot reach the Chroma server at {settings.chroma_url} ({exc}). "
            "Start it with `chroma run --path DIR --port PORT`, or leave chroma_url empty "
            "to use embedded Chroma in the data folder."
        ) from exc
    return client


class VectorIndex:
    """The Chroma collection holding one vector per chunk."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._name = settings.collection
        # Guards swapping the client (reopen) against queries that use it.
        self._swap = threading.Lock()
        self.paused: str | None = None
        """Why the collection is paused (a write failed for want of space), or None."""
        self._open()

    def _open(self) -> None:
        from chromadb.errors import NotFoundError

        self._client = open_client(self._settings)
        self._collection: Any = None

        # A missing collection is created on the first write, once the dimension is known.
        with contextlib.suppress(NotFoundError):
            self._attach(self._client.get_collection(self._name, embedding_function=None))

    def reopen(self) -> None:
        """Load what another process wrote since this one opened the collection.

        Embedded Chroma keeps its vector index in memory per process and does not see another
        process's writes until it is opened again; a Chroma server needs nothing.
        """
        if self._settings.chroma_url:
            return
        from chromadb.api.shared_system_client import SharedSystemClient

        # Chroma shares one System per folder within a process; drop ours so that opening
        # the client again reads the folder afresh, then stop the old one. (Private API:
        # clear_system_cache() would do it for every client in the process.)
        identifier = str(self._settings.chroma_dir)
        with self._swap:
            old = SharedSystemClient._identifier_to_system.pop(identifier, None)
            SharedSystemClient._identifier_to_refcount.pop(identifier, None)
            self._open()
            if old is not None and self.paused is None:  # a paused one may never answer
                with contextlib.suppress(Exception):
                    old.stop()
            self.paused = None

    # -- a full disk ---------------------------------------------------------------------

    def pause(self, reason: str) -> None:
        """Call Chroma no more until :meth:`resume` (a write failed for want of space)."""
        if self.paused is None:
            log.warning("vector writes paused: %s", reason)
        self.paused = reason

    def resume(self) -> None:
        """Open the collection afresh after a pause (writes succeed again on its disk)."""
        if self.paused is None:
            return
        self.reopen()
        self.paused = None  # a Chroma server keeps its own state: nothing to open again

    def _chroma(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``work()`` on the client, unless paused. An embedded client's error that says the
        disk is full pauses the collection, and so does a failed compaction (how it reports a
        full disk while merging its log), which leaves it in that state whatever the cause."""
        if self.paused is not None:
            raise VectorsPaused(self.paused)
        try:
            return work(*args, **kwargs)
        except LlmEngError:
            raise
        except Exception as exc:
            compaction = "compact" in str(exc).lower()
            if self._settings.chroma_url or not (compaction or is_disk_full(exc)):
                raise  # a Chroma server's disk is its own
            data_dir = self._settings.data_dir
            if is_disk_full(exc) or shutil.disk_usage(data_dir).free < LOW_SPACE:
                reason = str(no_space_left(data_dir))
            else:
                reason = (
                    f"Chroma could not write its index in {self.location} ({exc}); it is "
                    "opened afresh and indexing goes on at the next write"
                )
            self.pause(f"{reason} (Chroma: {exc})")
            raise VectorsPaused(reason) from exc

    def _attach(self, collection: Any) -> None:
        self._collection = collection

    @property
    def location(self) -> str:
        return self._settings.chroma_url or str(self._settings.chroma_dir)

    @property
    def recorded_model(self) -> tuple[str | None, int | None]:
        """(model name, dimension) the collection was built with, or (None, None) if new."""
        if self._collection is None:
            return None, None
        meta = self._collection.metadata or {}
        dim = meta.get(_DIM_KEY)
        return meta.get(_MODEL_KEY), int(dim) if dim is not None else None

    @property
    def recorded_precision(self) -> str | None:
        """The precision its chunks were embedded in (``float32`` for a collection from before
        this was recorded, or from an embedding server), or None if new."""
        if self._collection is None:
            return None
        return str((self._collection.metadata or {}).get(_PRECISION_KEY) or "float32")

    def check_model(
        self, name: str, dimension: int | None = None, precision: str | None = None
    ) -> None:
        """Refuse to mix vectors of two embedding models, or of two precisions.

        Raises:
            EmbeddingModelMismatch: the collection was built with another model or dimension,
                or embedded in another precision than ``precision`` (None: not checked).
        """
        recorded_name, recorded_dim = self.recorded_model
        if recorded_name is None:
            return
        if recorded_name != name or (
            dimension is not None and recorded_dim not in (None, dimension)
        ):
            raise EmbeddingModelMismatch(
                f"the index at {self.location} (collection {self._name!r}) was built with embedding "
                f"model {recorded_name!r} ({recorded_dim} dimensions), but {name!r}"
                f"{f' ({dimension} dimensions)' if dimension else ''} is configured. Either set "
                f"embedding_model back to {recorded_name!r} (LLM_ENG_EMBEDDING_MODEL), or rebuild "
                "the index with the new model: `llm-eng ingest PATH --rebuild` (or use another --data-dir)."
            )
        recorded_precision = self.recorded_precision
        if precision is not None and precision != recorded_precision:
            raise EmbeddingModelMismatch(
                f"the index at {self.location} (collection {self._name!r}) was embedded in "
                f"{recorded_precision}, but the embedder computes in {precision}: queries must "
                "be embedded as its chunks were. Set embedding_precision to auto or "
                f"{recorded_precision} (LLM_ENG_EMBEDDING_PRECISION), or rebuild the index: "
                "`llm-eng ingest PATH --rebuild`."
            )

    def ensure(self, name: str, dimension: int, precision: str | None = None) -> None:
        """Create the collection for this model (and the precision its vectors are computed
        in, when known) if it does not exist; check it if it does."""
        if self._collection is None:
            metadata = {_MODEL_KEY: name, _DIM_KEY: dimension, "created_by": "llm-engineering"}
            if precision is not None:
                metadata[_PRECISION_KEY] = precision
            collection = self._chroma(
                self._client.get_or_create_collection,
                self._name,
                metadata=metadata,
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
            self._attach(collection)
        self.check_model(name, dimension, precision)

    def drop(self) -> None:
        """Delete the collection (a rebuild with another model starts from nothing)."""
        if self._collection is not None:
            self._chroma(self._client.delete_collection, self._name)
        self._collection = None

    def collections(self) -> list[str]:
        """The names of every collection where this one lives."""
        return [getattr(c, "name", c) for c in self._chroma(self._client.list_collections)]

    def count(self) -> int:
        return 0 if self._collection is None else int(self._chroma(self._collection.count))

    def add(self, records: Sequence[VectorRecord]) -> None:
        if not records:
            return
        # Chroma ignores an id it already holds. That is right here: an id is a hash of
        # path, position and text, so an existing id already has this very vector. It
        # refuses more than about 5,000 at once (a 20 MB file has 20,000 chunks).
        import numpy as np

        for start in range(0, len(records), 5000):
            batch = records[start : start + 5000]
            self._chroma(
                self._collection.add,
                ids=[rec.id for rec in batch],
                embeddings=np.asarray([rec.embedding for rec in batch], dtype=np.float32),
                metadatas=[rec.metadata for rec in batch],
            )

    def delete(self, ids: Sequence[str]) -> None:
        """Delete vectors; skipped while paused (the repair after :meth:`resume` deletes them)."""
        if self._collection is None or not ids or self.paused is not None:
            return
        for start in range(0, len(ids), 5000):
            self._chroma(self._collection.delete, ids=list(ids[start : start + 5000]))

    def embeddings(self, ids: Sequence[str]) -> dict[str, list[float]]:
        """Stored vectors by id (for reusing them instead of embedding equal text again)."""
        if self._collection is None or not ids:
            return {}
        found: dict[str, list[float]] = {}
        for start in range(0, len(ids), 5000):
            batch = list(ids[start : start + 5000])
            got = self._chroma(self._collection.get, ids=batch, include=["embeddings"])
            for chunk_id, vector in zip(got["ids"], got["embeddings"], strict=True):
                found[chunk_id] = [float(x) for x in vector]
        return found

    def all_ids(self) -> set[str]:
        if self._collection is None:
            return set()
        ids: set[str] = set()
        offset = 0
        while True:
            got = self._chroma(self._collection.get, include=[], limit=10000, offset=offset)
            if not got["ids"]:
                return ids
            ids.update(got["ids"])
            offset += len(got["ids"])

    def query(
        self, embedding: Sequence[float], n: int, allowed_ids: Sequence[str] | None = None
    ) -> list[tuple[str, float]]:
        """The ``n`` nearest chunks as (id, cosine similarity), optionally among ``allowed_ids``."""
        if n <= 0:
            return []
        kwargs: dict[str, Any] = {}
        if allowed_ids is not None:
            if not allowed_ids:
                return []
            kwargs["ids"] = list(allowed_ids)
            n = min(n, len(allowed_ids))
        with self._swap:
            if self._collection is None:
                return []
            # Distances only (hits are read back from SQLite). No count first: it is a scan of
            # the collection, and Chroma answers fewer than n_results when it holds fewer.
            result = self._chroma(
                self._collection.query, query_embeddings=[list(embedding)],
                n_results=n, include=["distances"], **kwargs,
            )  # fmt: skip
        # A cosine space: distance = 1 - cos.
        return [
            (node_id, 1.0 - float(distance))
            for node_id, distance in zip(result["ids"][0], result["distances"][0], strict=True)
        ]
