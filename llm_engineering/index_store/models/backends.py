"""Which embedder and reranker the settings choose, and where each runs.

In process (sentence-transformers, a cross-encoder, the offline reranker) or on a server
(``embedding_url``, ``reranker_url``); ``index_status`` and ``llm-eng status`` say which,
without loading anything.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from llm_engineering.config import Settings

__all__ = ["embedding_location", "make_embedder", "make_reranker", "reranker_location"]


def _secret(value: Any) -> str | None:
    return value.get_secret_value() if value is not None else None


def make_embedder(settings: Settings, precision: str | None = None) -> Any:
    """The embedder: ``embedding_url`` when set, else ``embedding_model`` in process, in
    ``precision`` (default: ``embedding_precision``).

    Raises:
        ModelLoadError: the model cannot be loaded, or the server cannot be reached.
    """
    if settings.embedding_url:
        from llm_engineering.index_store.models.remote_embeddings import RemoteEmbedder

        return RemoteEmbedder(
            settings.embedding_url,
            settings.embedding_model,
            server_model=settings.embedding_server_model,
            api_key=_secret(settings.embedding_api_key),
            batch_size=settings.embedding_batch_size,
            in_flight=settings.embedding_in_flight,
            timeout=settings.server_timeout,
            retries=settings.server_retries,
        )
    from llm_engineering.index_store.models.embeddings import Embedder

    return Embedder(
        settings.embedding_model,
        settings.device,
        precision=precision or settings.embedding_precision,
    )


def _uses_server(settings: Settings) -> bool:
    return bool(settings.reranker_url) and settings.reranker in ("auto", "server")


def _cross_encoder(settings: Settings) -> str | None:
    """The cross-encoder the settings choose, or None for the offline reranker."""
    from llm_engineering.index_store.models.embeddings import _in_hf_cache
    from llm_engineering.index_store.models.reranking import DEFAULT_CROSS_ENCODER

    choice, model = settings.reranker, settings.reranker_model
    if choice == "cross-encoder" or (choice == "auto" and model):
        return model or DEFAULT_CROSS_ENCODER
    if choice == "auto" and _in_hf_cache(DEFAULT_CROSS_ENCODER):
        return DEFAULT_CROSS_ENCODER
    return None


def make_reranker(
    settings: Settings,
    embedder: Callable[[], Any],
    document_frequency: Callable[[Sequence[str]], tuple[dict[str, int], int]],
) -> Any:
    """The reranker the settings choose.

    ``auto``: ``reranker_url`` when set, else the configured cross-encoder (an error if it
    cannot load: never a silent fallback), else the default cross-encoder when it is in the
    Hugging Face cache, else the offline reranker. ``server``, ``offline`` and
    ``cross-encoder`` force one.

    Raises:
        ModelLoadError: the cross-encoder cannot be loaded.
    """
    if _uses_server(settings):
        from llm_engineering.index_store.models.remote_reranking import ServerReranker

        return ServerReranker(
            settings.reranker_url,
            settings.reranker_model,
            api_key=_secret(settings.reranker_api_key),
            timeout=settings.server_timeout,
            retries=settings.server_retries,
        )
    model = _cross_encoder(settings)
    if model is not None:
        from llm_engineering.index_store.models.reranking import CrossEncoderReranker

        return CrossEncoderReranker(model, settings.device)
    from llm_engineering.index_store.models.reranking import OfflineReranker

    return OfflineReranker(embedder(), document_frequency)


def embedding_location(settings: Settings, loaded: Any = None) -> str:
    """Where documents and queries are embedded, e.g. ``server http://gpu:8000`` or ``in process (cpu)``."""
    if settings.embedding_url:
        model = settings.embedding_server_model
        return f"server {settings.embedding_url}" + (f" (model {model})" if model else "")
    device = getattr(loaded, "device", None) or settings.device
    return f"in process ({device})"


def reranker_location(settings: Settings, loaded: Any = None) -> str:
    """Where reranking runs, and with what."""
    if _uses_server(settings):
        model = getattr(loaded, "model", "") or settings.reranker_model
        return f"server {settings.reranker_url}" + (f" (model {model})" if model else "")
    if loaded is not None:
        return f"in process ({loaded.name})"
    model = _cross_encoder(settings)
    if model is not None:
        return f"in process (cross-encoder:{model}, loaded on first use)"
    return "in process (offline: embedding cosine + BM25 + coverage)"
