"""Query pairs for tuning the embedding model: from the user, or from the corpus itself.

A user's file is JSONL, one ``{"query": ..., "positives": [...], "negatives": [...]}`` a line
(``negatives`` optional); each positive or negative names an indexed file (absolute, or
relative to a watched folder) or a chunk id. Every bad line is named, as for training data.

Without one, the corpus gives pairs: each document's title as a query for its opening text,
and each section's heading for its section, the heading taken off the text so that the
model cannot match the words back. Titles that are only a file's name and headings that
several sections share ("Installation", "Parameters") say nothing of one passage and are left
out.

Held-out pairs are chosen by a hash of the query (the same file always splits the same
way) and are never trained on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.errors import DatasetError, UserError
from llm_engineering.index_store.store.ledger import Ledger

__all__ = ["QueryPair", "corpus_pairs", "load_user_pairs", "split_heldout"]

MAX_QUERY_CHARS = 2000
_KEYS = {"query", "positives", "negatives"}
_WORD = re.compile(r"[^\W\d_]{2,}")
_HEADING_LINE = re.compile(r"\A\s*(#{1,6}[^\n]*\n|[^\n]*\n[=\-~^]{3,}\n)")


@dataclass(frozen=True)
class QueryPair:
    """A query and the chunks that answer it (and, optionally, chunks that do not)."""

    query: str
    positives: tuple[str, ...]
    """Chunk ids; a file given as a positive contributes all of its chunks."""
    negatives: tuple[str, ...] = ()
    text: str | None = None
    """The positive's text when the pair came from the corpus (the chunk less its heading)."""


def _resolve(name: str, ledger: Ledger, roots: Sequence[Path]) -> list[str]:
    if ledger.chunk(name) is not None:
        return [name]
    given = Path(name).expanduser()
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    for candidate in candidates:
        for form in (candidate, candidate.resolve()):
            row = ledger.file(str(form))
            if row is not None and row.status == "indexed":
                return ledger.chunk_ids(row.path)
    return []


def _names(value: Any, key: str, required: bool) -> tuple[list[str], str | None]:
    if value is None and not required:
        return [], None
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return [], f"{key!r} must be a list of file paths or chunk ids"
    if required and not value:
        return [], f"{key!r} is empty: name at least one file or chunk that answers the query"
    return value, None


def load_user_pairs(
    path: Path, ledger: Ledger, roots: Sequence[Path]
) -> tuple[list[QueryPair], str]:
    """Read and check a pairs file against the index.

    Returns:
        The pairs and the file's sha256.

    Raises:
        DatasetError: a line is not valid JSON, lacks a query or positives, has unknown keys, or
            names something that is not indexed; every such line is named (up to 20).
    """
    data = path.read_bytes()
    errors: list[tuple[int, str]] = []
    pairs: list[QueryPair] = []
    total = 0
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        total += 1
        problem, pair = _parse_line(line, ledger, roots)
        if problem:
            errors.append((number, problem))
        elif pair is not None:
            pairs.append(pair)
    if errors:
        raise DatasetError(str(path), errors, total)
    return pairs, hashlib.sha256(data).hexdigest()


def _parse_line(
    line: str, ledger: Ledger, roots: Sequence[Path]
) -> tuple[str | None, QueryPair | None]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc.msg})", None
    if not isinstance(record, dict):
        return "not a JSON object", None
    unknown = sorted(set(record) - _KEYS)
    if unknown:
        return f"unknown key(s) {', '.join(unknown)}: use query, positives, negatives", None
    query = record.get("query")
    if not isinstance(query, str) or not query.strip():
        return "'query' must be a non-empty string", None
    if len(query) > MAX_QUERY_CHARS:
        return f"'query' is longer than {MAX_QUERY_CHARS} characters", None
    resolved: dict[str, list[str]] = {}
    for key, required in (("positives", True), ("negatives", False)):
        names, problem = _names(record.get(key), key, required)
        if problem:
            return problem, None
        ids: list[str] = []
        for name in names:
            found = _resolve(name, ledger, roots)
            if not found:
                return f"{key[:-1]} {name!r} is neither an indexed file nor a chunk id", None
            ids.extend(found)
        resolved[key] = ids
    negatives = tuple(i for i in resolved["negatives"] if i not in set(resolved["positives"]))
    return None, QueryPair(query.strip(), tuple(resolved["positives"]), negatives)


def _without_heading(text: str) -> str:
    return _HEADING_LINE.sub("", text, count=1).strip()


def _says_something(query: str, stem: str) -> bool:
    words = _WORD.findall(query)
    return len(words) >= 2 and query.strip().lower() != stem.lower()


def corpus_pairs(ledger: Ledger, limit: int = 4000, min_chars: int = 80) -> list[QueryPair]:
    """Title and heading pairs from the indexed chunks (at most ``limit``, a fixed sample).

    Chunks are read in id order, which is a hash: a sample spread over the whole corpus.
    """
    rows = ledger.db.execute(
        "SELECT c.id, c.path, c.ordinal, c.heading, c.text, f.title FROM chunks c "
        "JOIN files f ON f.path = c.path WHERE f.status = 'indexed' ORDER BY c.id LIMIT ?",
        (limit * 4,),
    ).fetchall()
    candidates: list[QueryPair] = []
    for chunk_id, path, ordinal, heading, text, title in rows:
        stem = Path(path).stem
        parts = [p.strip() for p in (heading or "").split("›") if p.strip()]
        last = parts[-1] if parts else ""
        if ordinal == 0 and title and (not last or last == title):
            query = title
        elif last and last != title:
            query = f"{title}: {last}" if title and _says_something(title, stem) else last
        else:
            continue
        body = _without_heading(text)
        if title and body.startswith(title):
            body = body[len(title) :].strip()
        if len(body) >= min_chars and _says_something(query, stem):
            candidates.append(QueryPair(query.strip(), (chunk_id,), text=body))
    shared = Counter(pair.query.lower() for pair in candidates)
    return [pair for pair in candidates if shared[pair.query.lower()] == 1][:limit]


def split_heldout(
    pairs: Sequence[QueryPair], fraction: float, minimum: int = 5
) -> tuple[list[QueryPair], list[QueryPair]]:
    """(train, held out): a pair is held out when its query's hash falls under ``fraction``.

    Raises:
        UserError: too few pairs to hold ``minimum`` out and still train on more.
    """

    def bucket(pair: QueryPair) -> float:
        digest = hashlib.sha256(pair.query.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    held = [p for p in pairs if bucket(p) < fraction]
    train = [p for p in pairs if bucket(p) >= fraction]
    if len(held) < minimum or len(train) < minimum:
        raise UserError(
            f"{len(pairs)} pair(s) give {len(train)} to train on and {len(held)} to check with; "
            f"at least {minimum} of each are needed: give more pairs (or a larger held-out share)"
        )
    return train, held
