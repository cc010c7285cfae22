"""Text analysis for keyword search: FTS5 queries, and the same analysis in Python."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Any

__all__ = ["STOPWORDS", "analyze", "fts_query", "query_terms"]

# The Lucene/Elasticsearch English stop list BM25 baselines are usually run with, plus a few
# question words: without them a question matches almost every chunk.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "when",
        "where",
        "why",
        "how",
        "do",
        "does",
        "did",
        "i",
        "you",
        "he",
        "she",
        "we",
        "me",
        "my",
        "your",
        "our",
        "its",
        "from",
        "has",
        "have",
        "had",
        "been",
        "were",
        "can",
    ]
)

# Letters and digits, as FTS5's unicode61 tokenizer splits (underscore separates words).
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_stemmer: Any = None


@lru_cache(maxsize=262144)
def _stem(word: str) -> str:
    global _stemmer
    if _stemmer is None:
        from nltk.stem.porter import PorterStemmer

        # FTS5's porter tokenizer implements Porter's original algorithm.
        _stemmer = PorterStemmer(PorterStemmer.ORIGINAL_ALGORITHM)
    return str(_stemmer.stem(word, to_lowercase=False))


def _fold(text: str) -> str:
    """Lower-case and strip diacritics, like unicode61 with remove_diacritics."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def analyze(text: str, drop_stopwords: bool = False) -> list[str]:
    """Stemmed words of ``text``, as the keyword index sees them."""
    words = _WORD.findall(_fold(text))
    if drop_stopwords:
        words = [w for w in words if w not in STOPWORDS] or words
    return [_stem(w) for w in words]


def query_terms(query: str) -> list[str]:
    """Lower-cased distinct words of ``query``, stop words dropped unless nothing else is left."""
    words = [w.lower() for w in _WORD.findall(query)]
    kept = [w for w in words if w not in STOPWORDS] or words
    return list(dict.fromkeys(kept))


def fts_query(query: str) -> str | None:
    """An FTS5 expression matching chunks with any of the query's words, or None if it has none.

    Each word is quoted, so FTS5 syntax in user text (``AND``, ``*``, ``:``, quotes) is
    searched for literally rather than interpreted.
    """
    terms = query_terms(query)
    if not terms:
        return None
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
