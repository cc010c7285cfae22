"""Token counters that a parse worker process can rebuild from a string.

Chunks are sized in the embedding model's tokens, but the chunking runs in worker
processes that never load the model: a Hugging Face ``tokenizers`` tokenizer travels as
its JSON (``spec``) and counts exactly what the model's tokenizer counts.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

__all__ = ["SerializedTokenizer", "Words", "spec_of", "tokenizer_from_spec", "words"]

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


def spec_of(tokenizer: Callable[[str], list[Any]] | None) -> str | None:
    """What a worker needs to count like ``tokenizer``: its spec, or None for words."""
    return getattr(tokenizer, "spec", None)


def tokenizer_from_spec(spec: str | None) -> Callable[[str], list[Any]]:
    return SerializedTokenizer(spec) if spec is not None else words
