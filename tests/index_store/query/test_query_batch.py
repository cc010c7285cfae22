"""Concurrent searches share one forward pass of the real embedding model."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from llm_engineering.index_store.query.query_batch import QueryBatcher
from tests.conftest import wait_until

QUERIES = [f"does vitamin {c} reduce the risk of disease {i}" for i, c in enumerate("ABCDEFGH")]


class Gated:
    """The real embedder, holding its first batch until the test opens the gate."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.gate = threading.Event()
        self.sizes: list[int] = []

    def embed_queries(self, texts: list[str]) -> list[list[float]]:
        if not self.sizes:
            self.gate.wait(120)
        self.sizes.append(len(texts))
        return list(self.inner.embed_queries(texts))


def test_queries_that_arrive_during_a_batch_are_embedded_together(embedder: Any) -> None:
    gated = Gated(embedder)
    batcher = QueryBatcher(lambda: gated)
    results: dict[int, list[float]] = {}
    threads = [
        threading.Thread(target=lambda i=i: results.__setitem__(i, batcher.embed_query(QUERIES[i])))
        for i in range(len(QUERIES))
    ]
    threads[0].start()
    wait_until(lambda: batcher._busy, "the first query's batch has started")
    for thread in threads[1:]:
        thread.start()
    wait_until(lambda: len(batcher._pending) == len(QUERIES) - 1, "the other seven queued")
    gated.gate.set()
    for thread in threads:
        thread.join(120)
    assert gated.sizes == [1, 7] and batcher.batches == 2
    for i, query in enumerate(QUERIES):  # each caller got its own query's vector
        alone = np.array(embedder.embed_query(query))
        assert float(np.dot(alone, results[i])) > 0.9999


def test_an_error_reaches_every_waiting_caller_and_the_next_batch_runs() -> None:
    class Failing:
        def embed_query(self, text: str) -> list[float]:
            raise RuntimeError(f"model gone ({text})")

    batcher = QueryBatcher(lambda: Failing())
    with pytest.raises(RuntimeError, match="model gone"):
        batcher.embed_query("q")
    assert not batcher._busy and batcher.batches == 1
    with pytest.raises(RuntimeError, match="model gone"):
        QueryBatcher(lambda: Failing(), enabled=False).embed_query("q")
