"""Marking a query's words in a passage, with everything else escaped."""

from __future__ import annotations

import re

from markupsafe import Markup, escape

__all__ = ["highlight", "query_terms"]

# Words too common to be worth marking (the keyword index ranks them low anyway).
_STOP = frozenset(
    ("a", "an", "and", "are", "as", "at", "be", "by", "do", "does", "for", "from", "how", "i",
     "in", "is", "it", "of", "on", "or", "the", "this", "to", "was", "what", "when", "where",
     "which", "who", "why", "with"),
)  # fmt: skip


def query_terms(query: str) -> list[str]:
    """The words of ``query`` worth marking, longest first (so a longer word wins a tie)."""
    words = {w.lower() for w in re.findall(r"\w+", query) if len(w) > 1}
    return sorted(words - _STOP, key=lambda w: (-len(w), w))


def highlight(text: str, query: str) -> Markup:
    """``text`` escaped, with each word that starts with a query word in ``<mark>``.

    Prefixes stand in for the keyword index's stemming: ``calving`` marks ``calving`` and
    ``glacier`` marks ``glaciers``.
    """
    terms = query_terms(query)
    if not terms:
        return escape(text)
    pattern = re.compile(r"\b(?:" + "|".join(re.escape(t) for t in terms) + r")\w*", re.IGNORECASE)
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        parts.append(escape(text[last : match.start()]))
        parts.append(Markup("<mark>") + escape(match.group(0)) + Markup("</mark>"))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)
