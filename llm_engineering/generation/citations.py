"""Reading an answer: which passages it cites, whether it declines, what supports it.

Capable models follow the instruction to cite ``[n]`` and to say when the context lacks
the answer. Small ones (the default 135M model) often do neither, so an answer without
markers is checked against the passages: the passage holding most of the answer's own
words (those not already in the question) is cited, and an answer that no passage
supports is reported as not found in the context rather than passed off as grounded.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

from llm_engineering.index_store.store.keyword import analyze

__all__ = ["cited_numbers", "is_refusal", "support", "supporting_blocks"]

_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_REFUSAL = re.compile(
    r"(does not|doesn't|do not|don't|did not)\s+(contain|mention|say|include|provide|specify|state)"
    r"|not (in|within|from) the (provided |given )?(context|passages?|sources?|documents?)"
    r"|\bno (information|mention|answer)\b|\bnot (mentioned|provided|specified|stated|given)\b"
    r"|\b(cannot|can't|can not|unable to) (answer|find|determine|tell)\b"
    r"|\b(i|we) (do not|don't) know\b",
    re.IGNORECASE,
)


@cache
def _filler() -> frozenset[str]:
    """Words that say something about the answering, not about the subject (stemmed on first
    use: the stemmer's import is a second, which a process that never answers does not pay)."""
    return frozenset(
        analyze(
            "answer question context passage passages source sources provided according text based"
        )
    )


def cited_numbers(answer: str) -> list[int]:
    """Passage numbers cited as ``[n]`` or ``[n, m]``, in order of first mention."""
    numbers: list[int] = []
    for match in _MARKER.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part.strip())
            if number not in numbers:
                numbers.append(number)
    return numbers


def is_refusal(answer: str) -> bool:
    """Whether the answer says the context does not hold the answer."""
    head = answer.strip()[:300]
    return bool(_REFUSAL.search(head))


def _content_words(answer: str, question: str) -> list[str]:
    filler = _filler()
    words = [w for w in analyze(_MARKER.sub(" ", answer), drop_stopwords=True) if w not in filler]
    asked = set(analyze(question))
    new = [w for w in words if w not in asked]
    return new or words


def support(answer: str, question: str, passage: str) -> float:
    """Share of the answer's content words (beyond the question's) found in ``passage``."""
    words = _content_words(answer, question)
    if not words:
        return 0.0
    present = set(analyze(passage))
    return sum(1 for w in words if w in present) / len(words)


def supporting_blocks(
    answer: str, question: str, passages: Sequence[str], threshold: float = 0.5
) -> list[int]:
    """Indexes of the passages that best support the answer (ties kept), if any reaches ``threshold``."""
    scores = [support(answer, question, passage) for passage in passages]
    if not scores or max(scores) < threshold:
        return []
    best = max(scores)
    return [i for i, score in enumerate(scores) if score >= best - 1e-9]
