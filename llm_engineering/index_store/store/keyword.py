"""Keyword search: text analysis (FTS5 queries, and the same analysis in Python) and the
BM25 queries over the FTS5 index the ledger keeps in step with its chunk rows."""

from __future__ import annotations

import re
import sqlite3
import time
import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from llm_engineering.storage import Storage, prefix_sql

__all__ = ["POSTINGS", "STOPWORDS", "KeywordIndex", "analyze", "fts_query", "query_terms"]

POSTINGS = 10_000
"""Most postings (rows holding a query term, summed over its terms) a keyword search reads,
by default (the ``keyword_postings`` setting).

FTS5 scores every row holding any term of an OR query before it sorts: about 1 ms per 1,300
postings here, so a ten-word question over a million chunks read 300,000 of them and took
a quarter of a second. Past this many, the search keeps the query's rarest terms whose
postings fit (:meth:`KeywordIndex.selective`): the common ones weigh least in BM25 (their
idf is lowest), and the dense retriever still sees the whole question. Over SciFact's 10,000
chunks a few long claims reach it: nDCG@10 keyword 0.6966 -> 0.6965, hybrid and reranked
unchanged."""
FREQUENCIES_EXACT_UNDER = 100_000
"""Below this many chunks a term's count is read again after every change of the index."""
FREQUENCIES_TTL_S = 300.0
"""How long a term's count is kept over a larger index that changed by under 1 %."""
_QUOTED = re.compile(r'"((?:[^"]|"")*)"')

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


class _Moment(NamedTuple):
    """The index as a kept count is read or stored: its chunks, its generation, the time."""

    chunks: int
    generation: int
    now: float


class _KeptCounts:
    """Counts by key, each with the :class:`_Moment` it was counted at; one still holds while
    the index is unchanged (its generation) or, over :data:`FREQUENCIES_EXACT_UNDER` chunks,
    for :data:`FREQUENCIES_TTL_S` while the total moves under 1 %."""

    def __init__(self) -> None:
        self._kept: dict[Any, tuple[int, _Moment]] = {}

    def get(self, key: Any, at: _Moment) -> int | None:
        found = self._kept.get(key)
        if found is None:
            return None
        count, then = found
        if then.generation == at.generation or (
            at.chunks >= FREQUENCIES_EXACT_UNDER
            and at.now - then.now < FREQUENCIES_TTL_S
            and abs(at.chunks - then.chunks) <= at.chunks // 100
        ):
            return count
        return None

    def put(self, key: Any, count: int, at: _Moment) -> None:
        if len(self._kept) > 100_000:
            self._kept.clear()
        self._kept[key] = (count, at)


class KeywordIndex:
    """BM25 (FTS5) over the ledger's chunks, and the chunk ids a path/type filter allows.

    Args:
        storage: The ``state.sqlite`` the ledger opened (and migrated).
    """

    def __init__(self, storage: Storage):
        self.storage = storage
        self._frequencies = _KeptCounts()
        """term -> chunks holding it (:meth:`document_frequency`)."""
        self._postings = _KeptCounts()
        """(term, cap) -> its rows counted up to cap (:meth:`selective`)."""

    @property
    def db(self) -> sqlite3.Connection:
        return self.storage.db

    def _filter_sql(
        self, path_prefix: str | None, file_types: Sequence[str] | None
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if path_prefix:
            column = "c.path" if path_prefix.startswith("/") else "f.rel_path"
            condition, values = prefix_sql(column, path_prefix)
            clauses.append(condition)
            params += values
        if file_types:
            clauses.append(f"f.file_type IN ({','.join('?' * len(file_types))})")
            params += list(file_types)
        return " AND ".join(clauses), params

    def filtered_chunk_ids(
        self, path_prefix: str | None, file_types: Sequence[str] | None
    ) -> list[str]:
        where, params = self._filter_sql(path_prefix, file_types)
        sql = "SELECT c.id FROM chunks c JOIN files f ON f.path = c.path"
        return [
            row[0] for row in self.db.execute(sql + (f" WHERE {where}" if where else ""), params)
        ]

    def document_frequency(self, terms: Sequence[str]) -> tuple[dict[str, int], int]:
        """(term -> chunks containing it, total chunks) for stemmed ``terms``.

        FTS5 counts a term's chunks by walking its postings (60 ns each: 50 ms for five
        common words over a million chunks), so counts are kept: exact while the index is
        unchanged (its generation); in an index of :data:`FREQUENCIES_EXACT_UNDER` chunks or
        more, also for :data:`FREQUENCIES_TTL_S` while the total moves under 1 %, as the
        counts of common words then barely do.
        """
        terms = list(dict.fromkeys(terms))
        at = self._moment()
        counts: dict[str, int] = {}
        for term in terms:
            if (kept := self._frequencies.get(term, at)) is not None:
                counts[term] = kept
        missing = [term for term in terms if term not in counts]
        if missing:
            marks = ",".join("?" * len(missing))
            found = dict(
                self.db.execute(
                    f"SELECT term, doc FROM chunks_vocab WHERE term IN ({marks})", missing
                ).fetchall()
            )
            for term in missing:
                counts[term] = int(found.get(term, 0))
                self._frequencies.put(term, counts[term], at)
        return {term: n for term, n in counts.items() if n}, at.chunks

    def _moment(self) -> _Moment:
        chunks = self.db.execute("SELECT n FROM tallies WHERE name = 'chunks'").fetchone()[0]
        row = self.db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return _Moment(int(chunks), int(row[0]) if row else 0, time.monotonic())

    def selective(self, match: str, budget: int | None = None) -> str:
        """``match`` (an OR of quoted terms, :func:`fts_query`) when its terms' postings fit
        ``budget`` (default :data:`POSTINGS`); else an OR of its rarest terms whose postings
        fit together (at least one)."""
        budget = POSTINGS if budget is None else budget
        terms = [term.replace('""', '"') for term in _QUOTED.findall(match)]
        if len(terms) < 2:
            return match
        # Each term's rows, counted up to one past the budget: a walk of at most that many
        # postings (1.5 ms), where an exact count walks them all; kept as term counts are.
        at = self._moment()
        postings: dict[str, int] = {}
        for term in terms:
            count = self._postings.get((term, budget), at)
            if count is None:
                count = self.db.execute(
                    "SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)",
                    ('"' + term.replace('"', '""') + '"', budget + 1),
                ).fetchone()[0]
                self._postings.put((term, budget), count, at)
            postings[term] = count
        if sum(postings.values()) <= budget:
            return match
        kept: list[str] = []
        total = 0
        for term in sorted(terms, key=lambda t: postings[t]):
            if kept and total + postings[term] > budget:
                break
            kept.append(term)
            total += postings[term]
        return " OR ".join('"' + term.replace('"', '""') + '"' for term in kept)

    def bm25_for(
        self, match: str, ids: Sequence[str], weights: tuple[float, float] = (1.0, 1.0)
    ) -> dict[str, float]:
        """BM25 of these chunks for the FTS5 query ``match`` (chunks that do not match are absent)."""
        found: dict[str, float] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self.db.execute(
                f"SELECT c.id, bm25(chunks_fts, {float(weights[0])}, {float(weights[1])}) "
                "FROM chunks_fts JOIN chunks c ON c.rowid = chunks_fts.rowid "
                f"WHERE chunks_fts MATCH ? AND c.id IN ({marks})",
                [match, *batch],
            )
            found.update((chunk_id, -rank) for chunk_id, rank in rows)
        return found

    def keyword_search(
        self,
        match: str,
        limit: int,
        path_prefix: str | None = None,
        file_types: Sequence[str] | None = None,
        weights: tuple[float, float] = (1.0, 1.0),
    ) -> list[tuple[str, float]]:
        """BM25 over the chunks: (chunk id, score), best first. ``match`` is an FTS5 query."""
        where, params = self._filter_sql(path_prefix, file_types)
        bm25 = f"bm25(chunks_fts, {float(weights[0])}, {float(weights[1])})"
        if where:
            sql = (
                f"SELECT c.id, {bm25} AS rank FROM chunks_fts "
                "JOIN chunks c ON c.rowid = chunks_fts.rowid JOIN files f ON f.path = c.path "
                f"WHERE chunks_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
            )
        else:
            # The best rows first, then their ids: joined before the sort, every matching row
            # (up to keyword_postings) was looked up in chunks: 24 -> 10 ms at 1M chunks.
            sql = (
                f"SELECT c.id, r.rank FROM (SELECT rowid, {bm25} AS rank FROM chunks_fts "
                "WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) r "
                "JOIN chunks c ON c.rowid = r.rowid ORDER BY r.rank"
            )
        rows = self.db.execute(sql, [match, *params, limit]).fetchall()
        # FTS5's bm25() is negated so that ascending order is best-first.
        return [(chunk_id, -rank) for chunk_id, rank in rows]
