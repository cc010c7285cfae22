"""Queries that arrive together are embedded together.

Eight clients searching at once used to embed eight single queries side by side, each
forward pass asking for every core: on 2 cores that lost throughput (about 30 searches/s
for eight clients against 40/s for one). Here a query that arrives while another batch is
being embedded waits for it to finish; then one waiting thread embeds everything queued
meanwhile in a single forward pass, and each caller takes its own vector. A query alone
is embedded at once, with no added wait.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["QueryBatcher"]


@dataclass
class _Request:
    text: str
    vector: list[float] | None = None
    error: BaseException | None = None


class QueryBatcher:
    """Embeds queries from many threads, in batches of those that arrived together.

    Args:
        embedder: Returns the embedding model (called when a batch is embedded, so it may
            load the model on first use). Its ``embed_queries(texts)`` is used when it has
            one, else ``embed_query`` for each text.
        max_batch: The most queries one forward pass takes.
        enabled: False embeds each query on its own, as it arrives (``query_batching``).
    """

    def __init__(self, embedder: Callable[[], Any], max_batch: int = 64, enabled: bool = True):
        self._embedder = embedder
        self._enabled = enabled
        self._max_batch = max_batch
        self._pending: list[_Request] = []
        self._busy = False
        self._cond = threading.Condition()
        self.batches = 0
        """Forward passes so far (for tests and benchmarks)."""

    def embed_query(self, text: str) -> list[float]:
        if not self._enabled:
            return list(self._embedder().embed_query(text))
        request = _Request(text)
        with self._cond:
            self._pending.append(request)
            while self._busy and request.vector is None and request.error is None:
                self._cond.wait()
            if request.vector is None and request.error is None:
                self._busy = True  # this thread embeds what is queued, its own query first
                batch = self._take()
            else:
                batch = []
        if batch:
            self._run(batch)
        if request.error is not None:
            raise request.error
        assert request.vector is not None
        return request.vector

    def _take(self) -> list[_Request]:
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
        return batch

    def _run(self, batch: Sequence[_Request]) -> None:
        try:
            embedder = self._embedder()
            texts = [r.text for r in batch]
            many = getattr(embedder, "embed_queries", None)
            vectors = many(texts) if many else [embedder.embed_query(t) for t in texts]
            for request, vector in zip(batch, vectors, strict=True):
                request.vector = vector
        except BaseException as exc:  # every waiting caller gets the error, not a hang
            for request in batch:
                request.error = exc
        finally:
            with self._cond:
                self.batches += 1
                self._busy = False
                self._cond.notify_all()
