"""Token counters that a parse worker process can rebuild from a string.

Chunks are sized in the embedding model's tokens, but the chunking runs in worker
processes that never load the model: a Hugging Face ``tokenizers`` tokenizer travels as
its JSON (``spec``) and counts exactly what the model's tokenizer counts. The spec is read
from the model's ``tokenizer.json`` (:func:`model_spec`), so the index knows how to cut
files without loading the model.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "SerializedTokenizer",
    "Words",
    "load_tokenizer",
    "model_spec",
    "spec_of",
    "tokenizer_from_spec",
    "words",
]

log = logging.getLogger(__name__)

_WORD = re.compile(r"\S+")


class Words:
    """Whitespace-separated words: the token count when no model tokenizer is known."""

    def __call__(self, text: str) -> list[str]:
        return text.split()

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Each word's (start, end) character offsets."""
        return [match.span() for match in _WORD.finditer(text)]


words = Words()


class SerializedTokenizer:
    """Token ids of a text, without special tokens, truncation or padding.

    Args:
        spec: A ``tokenizers.Tokenizer`` as JSON (``Tokenizer.to_str()``).
    """

    def __init__(self, spec: str):
        from tokenizers import Tokenizer

        self.spec = spec
        self._tokenizer = Tokenizer.from_str(spec)
        # A sentence-transformers tokenizer carries the model's truncation to 128-512
        # tokens: counting must see the whole text.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()

    @classmethod
    def of(cls, hf_tokenizer: Any) -> SerializedTokenizer | None:
        """The same counts as ``hf_tokenizer.encode(text, add_special_tokens=False)`` for a
        transformers fast tokenizer; None for a slow (pure Python) one."""
        backend = getattr(hf_tokenizer, "backend_tokenizer", None)
        return cls(backend.to_str()) if backend is not None else None

    def __call__(self, text: str) -> list[int]:
        return list(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Each token's (start, end) character offsets in ``text``."""
        return list(self._tokenizer.encode(text, add_special_tokens=False).offsets)


def _model_file(source: str, filename: str) -> Path | None:
    folder = Path(source)
    if folder.is_dir():
        found = folder / filename
        return found if found.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(source, filename)
    except Exception:  # an odd name ("a/b/c") is simply not cached
        return None
    return Path(cached) if isinstance(cached, str) else None


def load_tokenizer(model: str) -> tuple[Any | None, int | None]:
    """The model's ``tokenizers.Tokenizer`` and its max_seq_length, when they are on this machine.

    Read from the model's ``tokenizer.json`` (without truncation or padding), so a process
    sizes chunks in the model's tokens without loading the model. Returns (None, None) when
    ``model`` is neither packaged, a local folder nor cached, or has no such file.
    """
    from llm_engineering.packaged import resolve_embedding_model

    source = resolve_embedding_model(model)
    path = _model_file(source, "tokenizer.json")
    if path is None:
        return None, None
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    limit: int | None = None
    for name, key in (
        ("sentence_bert_config.json", "max_seq_length"),
        ("tokenizer_config.json", "model_max_length"),
    ):
        config = _model_file(source, name)
        if config is not None:
            value = json.loads(config.read_text()).get(key)
            if isinstance(value, int) and 0 < value < 1_000_000:
                limit = value
                break
    return tokenizer, limit


def model_spec(model: str) -> str | None:
    """The spec of ``model``'s tokenizer read from its files, or None when they are not here."""
    tokenizer, _ = load_tokenizer(model)
    return tokenizer.to_str() if tokenizer is not None else None


def spec_of(tokenizer: Callable[[str], list[Any]] | None) -> str | None:
    """What a worker needs to count like ``tokenizer``: its spec, or None for words (said in
    the log when the model has a tokenizer that cannot travel)."""
    spec = getattr(tokenizer, "spec", None)
    if spec is None and tokenizer is not None:
        log.warning(
            "the embedding model's tokenizer cannot be sent to the parse workers; "
            "chunks are sized in words"
        )
    return spec


def tokenizer_from_spec(spec: str | None) -> Callable[[str], list[Any]]:
    return SerializedTokenizer(spec) if spec is not None else words
