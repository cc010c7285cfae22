"""Reranking on a server: vLLM, Hugging Face TEI, infinity, llama.cpp's ``llama-server --reranking``.

They take one of two request shapes, on ``/v1/rerank`` or ``/rerank``:

* ``{"model", "query", "documents": [...]}`` -> ``{"results": [{"index", "relevance_score"}]}``
  (the Cohere/Jina shape: vLLM, infinity, llama.cpp);
* ``{"query", "texts": [...]}`` -> ``[{"index", "score"}]`` (TEI; llama.cpp takes it too).

``reranker_url`` may be the base URL (``/v1/rerank`` is tried, then ``/rerank``) or the
endpoint itself. The first call finds which path and shape the server takes (a 404 moves
to the next path, a 400/422 to the other shape) and keeps them. Documents go 32 a request
(TEI's default limit per request), up to 4 requests at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal
from urllib.parse import urlparse

from llm_engineering.errors import ServerError
from llm_engineering.index_store.models.remote import ModelServer
from llm_engineering.index_store.models.reranking import Candidate, _sink_empty

__all__ = ["ServerReranker", "rerank_routes"]

log = logging.getLogger(__name__)

Shape = Literal["documents", "texts"]
_BATCH = 32
_IN_FLIGHT = 4


def rerank_routes(url: str) -> list[str]:
    """The endpoints to try for ``reranker_url``, in order."""
    path = urlparse(url).path.rstrip("/")
    if path.endswith(("/rerank", "/reranking")):
        return [url]
    if path.endswith("/v1"):
        return [f"{url}/rerank"]
    return [f"{url}/v1/rerank", f"{url}/rerank"]


class ServerReranker:
    """Scores (query, passage) pairs on a rerank server.

    Args:
        url: ``reranker_url``.
        model: The model name sent (``reranker_model``); empty = the server's own (named
            once the server says it).
        api_key: Bearer key for the server.
        timeout: Seconds one request may take.
        retries: Further tries of a failed request.
    """

    uses_vectors = False

    def __init__(
        self,
        url: str,
        model: str = "",
        *,
        api_key: str | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ):
        self.url = url
        self.model = model
        self.name = f"server:{model or 'reranker'}@{url}"
        self._server = ModelServer(
            url,
            "rerank server",
            api_key=api_key,
            key_setting="LLM_ENG_RERANKER_API_KEY",
            timeout=timeout,
            retries=retries,
            connections=_IN_FLIGHT,
        )
        self._route: tuple[str, Shape] | None = None

    def _body(self, shape: Shape, query: str, texts: list[str]) -> dict[str, Any]:
        if shape == "texts":
            return {"query": query, "texts": texts, "raw_scores": False, "truncate": True}
        body: dict[str, Any] = {"query": query, "documents": texts}
        if self.model:
            body["model"] = self.model
        return body

    def _find_route(self, query: str, texts: list[str]) -> Any:
        """The first request: try each path and shape until the server takes one."""
        tried: list[str] = []
        first_refusal: ServerError | None = None
        for url in rerank_routes(self.url):
            for shape in ("documents", "texts"):
                try:
                    answer = self._server.post(url, self._body(shape, query, texts))
                except ServerError as exc:
                    tried.append(f"{url} ({shape}): {exc.status}")
                    if exc.status in (404, 405):
                        break  # no such path: the next one
                    if exc.status in (400, 422):
                        first_refusal = first_refusal or exc
                        continue  # perhaps the other shape
                    raise
                self._route = (url, shape)
                served = answer.get("model") if isinstance(answer, dict) else None
                if not self.model and isinstance(served, str) and served:
                    self.model = served
                    self.name = f"server:{served}@{self.url}"
                log.info("reranking at %s (%s shape)", url, shape)
                return answer
        if first_refusal is not None:
            raise first_refusal
        raise ServerError(
            f"the rerank server at {self.url} has no rerank endpoint (tried {', '.join(tried)}): "
            "give reranker_url as the server's base URL or its /rerank endpoint"
        )

    def _scores(self, answer: Any, count: int) -> list[float]:
        items = answer if isinstance(answer, list) else (answer or {}).get("results")
        scores: list[float | None] = [None] * count
        for item in items or []:
            index = int(item["index"])
            value = item.get("relevance_score", item.get("score"))
            if 0 <= index < count and value is not None:
                scores[index] = float(value)
        if any(score is None for score in scores):
            raise ServerError(
                f"the rerank server at {self.url} scored {sum(s is not None for s in scores)} of "
                f"{count} documents: {str(answer)[:200]}"
            )
        return [float(score) for score in scores if score is not None]

    def _batch(self, query: str, texts: list[str]) -> list[float]:
        if self._route is None:
            answer = self._find_route(query, texts)
        else:
            url, shape = self._route
            answer = self._server.post(url, self._body(shape, query, texts))
        return self._scores(answer, len(texts))

    def score(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        """One score per candidate, higher is better.

        Raises:
            ServerError: the server cannot be reached or refuses the request (after retries).
        """
        if not candidates:
            return []
        texts = [candidate.text or " " for candidate in candidates]
        batches = [texts[start : start + _BATCH] for start in range(0, len(texts), _BATCH)]
        scores = self._batch(query, batches[0])
        if len(batches) > 1:
            with ThreadPoolExecutor(_IN_FLIGHT, thread_name_prefix="rerank") as pool:
                for part in pool.map(lambda batch: self._batch(query, batch), batches[1:]):
                    scores += part
        return _sink_empty(candidates, scores)

    def close(self) -> None:
        self._server.close()
