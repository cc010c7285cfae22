"""Reading an answer: which passages it cites, and whether it declines.

Capable models follow the instruction to cite ``[n]`` and to say when the context lacks
the answer. Small ones (the default 135M model) often do neither; whether what a reply says
is held by the passages is judged sentence by sentence in :mod:`.judging`.
"""

from __future__ import annotations

import re

__all__ = ["MARKER", "cited_numbers", "is_refusal"]

MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
"""A passage citation as the model writes it: ``[2]``, ``[1, 3]``."""
_REFUSAL = re.compile(
    r"(does not|doesn't|do not|don't|did not)\s+(contain|mention|say|include|provide|specify|state)"
    r"|not (in|within|from) the (provided |given )?(context|passages?|sources?|documents?)"
    r"|\bno (information|mention|answer)\b|\bnot (mentioned|provided|specified|stated|given)\b"
    r"|\b(cannot|can't|can not|unable to) (answer|find|determine|tell)\b"
    r"|\b(i|we) (do not|don't) know\b",
    re.IGNORECASE,
)


def cited_numbers(answer: str) -> list[int]:
    """Passage numbers cited as ``[n]`` or ``[n, m]``, in order of first mention."""
    numbers: list[int] = []
    for match in MARKER.finditer(answer):
        for part in re.split(r"[,;]", match.group(1)):
            number = int(part.strip())
            if number not in numbers:
                numbers.append(number)
    return numbers


def is_refusal(answer: str) -> bool:
    """Whether the answer says the context does not hold the answer."""
    head = answer.strip()[:300]
    return bool(_REFUSAL.search(head))
