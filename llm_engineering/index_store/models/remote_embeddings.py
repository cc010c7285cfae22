"""Embeddings from an OpenAI-compatible ``/v1/embeddings`` server (llama.cpp, vLLM, TEI, infinity).

The server must serve the model that ``embedding_model`` names: the index records that
name and the dimension, so an index built in process and one built through a server of
the same model are one index, and another model is refused as it is in process.

What keeps the two identical:

* Vectors are normalised here (L2), as sentence-transformers normalises them in process;
  servers such as llama.cpp's return them raw.
* The model's tokenizer is loaded here from ``embedding_model`` (the packaged folder, a
  path, or the Hugging Face cache), so chunks are cut at the same tokens, and each text is
  cut at the model's ``max_seq_length`` before it is sent, as sentence-transformers cuts
  it (a server would otherwise read up to its own, longer, limit). Without a local
  tokenizer, chunks are sized in words and the server truncates.

Texts go in batches of ``embedding_batch_size``, ``embedding_in_flight`` requests at a
time. A batch that still fails after its retries makes the call raise
:class:`~llm_engineering.errors.EmbeddingServerError` with every vector that did arrive,
so ingestion fails only the files whose chunks are missing.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from llm_engineering.errors import EmbeddingServerError, ModelLoadError, ServerError
from llm_engineering.index_store.models.remote import ModelServer, endpoint
from llm_engineering.index_store.read.tokens import SerializedTokenizer, load_tokenizer

__all__ = ["RemoteEmbedder", "embed_partly"]

log = logging.getLogger(__name__)

_PROBE = "dimension probe"


class RemoteEmbedder:
    """Embeds documents and queries through a server.

    Args:
        url: The server (``http://gpu-box:8000``, with or without ``/v1``).
        name: The embedding model's name as the index records it (``embedding_model``).
        server_model: The name sent in requests; empty = ``name``.
        api_key: Bearer key for the server.
        batch_size: Texts per request.
        in_flight: Requests sent at once.
        timeout: Seconds one request may take.
        retries: Further tries of a failed request.

    Raises:
        ModelLoadError: the server cannot be reached, refuses the key, or answers no vector.
    """

    def __init__(
        self,
        url: str,
        name: str,
        *,
        server_model: str = "",
        api_key: str | None = None,
        batch_size: int = 32,
        in_flight: int = 4,
        timeout: float = 60.0,
        retries: int = 3,
    ):
        self.name = name
        self.url = url
        self.server_model = server_model or name
        self.batch_size = batch_size
        self.in_flight = in_flight
        self.device = f"server {url}"
        self._endpoint = endpoint(url, "/embeddings")
        self._server = ModelServer(
            url,
            "embedding server",
            api_key=api_key,
            key_setting="LLM_ENG_EMBEDDING_API_KEY",
            timeout=timeout,
            retries=retries,
            connections=in_flight,
        )
        self._tokenizer, limit = load_tokenizer(name)
        self._serialized: SerializedTokenizer | None = None
        specials = 0
        if self._tokenizer is not None and self._tokenizer.post_processor is not None:
            specials = self._tokenizer.post_processor.num_special_tokens_to_add(False)
        self.max_tokens: int | None = limit
        self._cut_at = None if limit is None else max(1, limit - specials)
        if self._tokenizer is None:
            log.warning(
                "no tokenizer for %r on this machine: chunks are sized in words and the "
                "embedding server truncates long ones",
                name,
            )
        self._dimension: int | None = None
        self._format = "base64"
        """How vectors come: base64 of little-endian float32 (a quarter of the bytes of
        JSON floats, decoded without a parse), or ``float`` for a server refusing that."""
        try:
            (probe,) = self._request([_PROBE])
        except ServerError as exc:
            raise ModelLoadError(
                f"{exc}. Start the server (e.g. `python -m llama_cpp.server --model M.gguf "
                "--embedding true`), or leave embedding_url empty to embed in process."
            ) from exc
        self.dimension: int = len(probe)
        self._dimension = self.dimension

    @property
    def tokenizer(self) -> SerializedTokenizer | None:
        """Token ids without special tokens, as the in-process embedder's (it travels to the
        parse workers as its JSON, so chunks are cut alike); None without one."""
        if self._tokenizer is None:
            return None
        if self._serialized is None:
            self._serialized = SerializedTokenizer(self._tokenizer.to_str())
        return self._serialized

    def _cut(self, texts: list[str]) -> list[str]:
        """``texts`` up to the model's token limit, cut where sentence-transformers cuts them
        (one call of the tokenizer, which works outside the GIL)."""
        if self._tokenizer is None or self._cut_at is None:
            return texts
        limit = self._cut_at
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [
            text if len(encoding.ids) <= limit else text[: encoding.offsets[limit - 1][1]]
            for text, encoding in zip(texts, encodings, strict=True)
        ]

    def _request(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        body = {"model": self.server_model, "input": texts, "encoding_format": self._format}
        try:
            answer = self._server.post(self._endpoint, body)
        except ServerError as exc:
            if self._format != "base64" or exc.status not in (400, 422):
                raise
            # A server that does not take base64 (it is OpenAI's, llama.cpp's, vLLM's and
            # TEI's): floats from now on.
            log.info("the embedding server refused base64 vectors (%s); asking for floats", exc)
            self._format = "float"
            answer = self._server.post(self._endpoint, {**body, "encoding_format": "float"})
        data = answer.get("data") if isinstance(answer, dict) else None
        if not isinstance(data, list) or len(data) != len(texts):
            raise ServerError(
                f"the embedding server at {self._endpoint} answered {len(data) if isinstance(data, list) else 'no'} "
                f"vectors for {len(texts)} texts: {json.dumps(answer)[:200]}"
            )
        ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
        matrix = np.asarray([_vector(item.get("embedding")) for item in ordered], dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[1] != (self._dimension or matrix.shape[1]):
            raise ServerError(
                f"the embedding server at {self._endpoint} answered vectors of shape {matrix.shape}, "
                f"not {self._dimension} dimensions: is it serving {self.name!r}?"
            )
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        return (matrix / np.where(norms == 0, 1.0, norms)).tolist()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed many texts: batched, several requests in flight.

        Raises:
            EmbeddingServerError: a batch failed after its retries; the vectors that arrived
                are in its ``vectors`` (None for the others). Once one batch has failed, the
                batches not yet sent are not sent.
        """
        if not texts:
            return []
        starts = range(0, len(texts), self.batch_size)
        failed = threading.Event()
        errors: list[ServerError] = []

        def send(start: int) -> list[list[float]] | None:
            if failed.is_set():
                return None
            try:
                # Cut here, in the sending threads: beside the requests in flight.
                return self._request(self._cut(list(texts[start : start + self.batch_size])))
            except ServerError as exc:
                errors.append(exc)
                failed.set()
                return None

        with ThreadPoolExecutor(self.in_flight, thread_name_prefix="embed") as pool:
            batches = list(pool.map(send, starts))
        vectors: list[list[float] | None] = []
        for start, batch in zip(starts, batches, strict=True):
            size = min(self.batch_size, len(texts) - start)
            vectors += batch if batch is not None else [None] * size
        if errors:
            raise EmbeddingServerError(str(errors[0]), vectors)
        return [vector for vector in vectors if vector is not None]

    def embed_query(self, text: str) -> list[float]:
        """Raises ServerError when the server fails (after its retries)."""
        return self._request(self._cut([text]))[0]

    def close(self) -> None:
        self._server.close()


def _vector(embedding: Any) -> Any:
    """A vector as the server sent it: JSON floats, or base64 of little-endian float32."""
    import base64

    import numpy as np

    if isinstance(embedding, str):
        try:
            return np.frombuffer(base64.b64decode(embedding, validate=True), dtype="<f4")
        except ValueError as exc:
            raise ServerError(f"a vector that is not base64 of float32: {exc}") from exc
    return embedding


def embed_partly(
    embedder: Any, texts: Sequence[str]
) -> tuple[list[list[float] | None], str | None]:
    """``embedder.embed_documents(texts)``, keeping what a failing server did embed.

    Returns:
        (one vector or None per text, the server's error when some are None).
    """
    try:
        return list(embedder.embed_documents(texts)), None
    except EmbeddingServerError as exc:
        return exc.vectors, str(exc)
