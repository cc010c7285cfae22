"""The passage sentence that best answers a question, quoted as it is, with where it is.

When the model's reply is not supported by the passages, the answer is taken from them
instead: every sentence of the best passages is scored by how much of the question it
covers (its rarer words count more), how close it is in meaning (the embedding model's
cosine, when one is at hand), whether it holds what the question asks for (a number for
"how many", a name for "who", a time for "when") beyond the question's own words, and the
rank of its passage. The best one, if it covers enough of the question, is the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llm_engineering.generation.judging import Question, content_words, names, sentence_spans
from llm_engineering.index_store.store.keyword import analyze

__all__ = ["Extract", "asked_kind", "best_sentence", "holds"]

PASSAGES = 3
"""Passages whose sentences are candidates (the best-ranked ones)."""
MIN_COVERAGE = 0.3
"""The least share of the question (weighted by rarity) an extracted sentence must cover."""
WEIGHTS = {"coverage": 1.0, "cosine": 0.6, "kind": 0.25, "rank": 0.08}

_WHEN = re.compile(r"\b(when|what year|which year|what century|what date|how long ago)\b", re.I)
_HOW_MANY = re.compile(
    r"\bhow (many|much|long|far|old|large|big|tall|high)\b|\bwhat (percent|number)", re.I
)
# A markup line, not a sentence: a reST directive (".. py:data:: NAME"), a heading's rule.
_MARKUP = re.compile(r"\.\. [\w:-]+::|([=\-~^*#`'\"+_])\1{2,}\s*$")
_WHO = re.compile(r"^\s*(who|whom|whose)\b", re.I)


@dataclass(frozen=True)
class Extract:
    """A sentence of a passage, quoted verbatim."""

    text: str
    block: int
    """Index of its passage among those given."""
    offset: int
    """Where it starts in its passage's text."""
    score: float
    coverage: float
    """The share of the question (rarer words weigh more) it covers."""
    cosine: float | None = None
    """Its closeness in meaning to the question (None: no embedding model at hand)."""


def best_sentence(
    question: str,
    passages: Sequence[str],
    idf: Callable[[Sequence[str]], dict[str, float]] | None = None,
    similarity: Callable[[str, Sequence[str]], list[float]] | None = None,
) -> Extract | None:
    """The passage sentence that best answers ``question``, or None if none covers enough of it.

    Args:
        passages: Best first; the first ``PASSAGES`` are read.
        idf: Term -> inverse document frequency over the index (None: over these passages).
        similarity: ``(question, sentences) -> cosines`` (None: lexical signals only).
    """
    candidates: list[tuple[int, int, str]] = []
    for block, passage in enumerate(passages[:PASSAGES]):
        for span in sentence_spans(passage):
            if (
                content_words(span.text)
                and not _MARKUP.match(span.text)
                and not span.text.endswith("?")  # a question is not an answer
            ):
                candidates.append((block, span.start, span.text))
    if not candidates:
        return None
    asked = Question.of(question, idf, [c[2] for c in candidates])
    kind = asked_kind(question)
    own = {n.casefold() for n in names(question) if not n.islower()}
    # A sentence that lacks a name the question gives does not answer it: a question about
    # something the passages do not hold is most often one with a name swapped for another.
    candidates = [c for c in candidates if all(n in c[2].casefold() for n in own)]
    if not candidates:
        return None
    cosines = similarity(question, [c[2] for c in candidates]) if similarity else None
    best: Extract | None = None
    for i, (block, offset, text) in enumerate(candidates):
        present = set(analyze(text))
        coverage = asked.coverage(present)
        new = [w for w in content_words(text) if w not in asked.stems]
        if not new:  # it only says the question back
            continue
        score = (
            WEIGHTS["coverage"] * coverage
            + WEIGHTS["cosine"] * (cosines[i] if cosines else 0.0)
            + WEIGHTS["kind"] * holds(kind, text, question)
            - WEIGHTS["rank"] * block
        )
        if best is None or score > best.score:
            best = Extract(text, block, offset, score, coverage, cosines[i] if cosines else None)
    if best is None or best.coverage < MIN_COVERAGE:
        return None
    return best


def asked_kind(question: str) -> str | None:
    if _HOW_MANY.search(question):
        return "number"
    if _WHEN.search(question):
        return "time"
    if _WHO.search(question):
        return "name"
    return None


def holds(kind: str | None, sentence: str, question: str) -> float:
    """1 when ``sentence`` holds what the question asks for, beyond its own words."""
    if kind is None:
        return 0.0
    own = {n.casefold() for n in names(question)}
    found = [n for n in names(sentence) if n.casefold() not in own]
    if kind in ("number", "time"):
        return 1.0 if any(any(ch.isdigit() for ch in n) for n in found) else 0.0
    return 1.0 if any(n[:1].isupper() for n in found) else 0.0
