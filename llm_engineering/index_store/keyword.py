"""Turning a free-text query into an FTS5 BM25 query."""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "fts_query", "query_terms"]

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

_WORD = re.compile(r"\w+", re.UNICODE)


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
