"""Is a reply supported by the passages, sentence by sentence?

A small model writes fluent sentences whether or not the passages hold them: an invented
API call with made-up arguments, the question's words glued into a product name. A reply
is taken as grounded only when every sentence of it is: each of its numbers and names
(capitalised words, identifiers, code) and nearly all of its content words beyond the
question's appear together in one place of a passage (two neighbouring sentences). A reply that passes is cited to the passages that support its sentences.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache

from llm_engineering.generation.citations import MARKER
from llm_engineering.index_store.store.keyword import analyze

__all__ = [
    "ABOUT",
    "SUPPORT",
    "Judgement",
    "Question",
    "Span",
    "drop_repeats",
    "judge",
    "pool_idf",
    "sentence_spans",
]

ABOUT = 0.5
"""Share of the question (weighted by rarity) the place supporting a sentence must cover."""
SUPPORT = 0.8
"""Share of a sentence's content words (those beyond the question's) a passage must hold."""
WINDOW = 2
"""Neighbouring passage sentences that must hold a sentence together."""

# A sentence ends at . ! ? (not inside a number or a dotted name) before a space, or at a line
# end that is not prose wrapped onto the next line (see _wrapped).
_END = re.compile(r"(?<=[.!?])[\"')\]]*(?=\s)|\n(?:[ \t]*\n)*")
_WRAP_END = re.compile(r"[\w,;*`'\"\-]$")
_WRAP_START = re.compile(r"[\w:`*\"'(]")
_ITEM = re.compile(r"(?:[-*+•]|\d+[.)]|#+|\.\.|>)\s+")
_RULE = re.compile(r"([=\-~^*#`'\"+_])\1{2,}\s*$")
_ABBREVIATIONS = re.compile(
    r"\b(?:e\.g|i\.e|etc|vs|cf|Dr|Mr|Mrs|Ms|St|No|Fig|approx)\.$|(?:^|\s)\.\.$", re.I
)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CODE = re.compile(r"`([^`]+)`")
# Names: an identifier with a dot, underscore or call (flask.Flask, send_file, app.run()), a
# word with a capital inside it (CamelCase), or a capitalised word that does not start a sentence.
_IDENTIFIER = re.compile(r"\b[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)+\b|\b\w*_\w+\b|\b[a-z]+[A-Z]\w*\b")
_POSSESSIVE = re.compile(r"['’]s$")
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][\w'-]*")


@dataclass(frozen=True)
class Span:
    """``text[start:end]`` of a longer text."""

    start: int
    end: int
    text: str


@dataclass
class Judgement:
    """How a reply stands against the passages."""

    supported: bool
    """Every sentence is supported, and the reply says something the question does not."""
    support: list[int | None] = field(default_factory=list)
    """Per sentence, the passage that supports it (None: none does)."""
    sentences: list[str] = field(default_factory=list)

    @property
    def unsupported(self) -> list[str]:
        return [s for s, p in zip(self.sentences, self.support, strict=True) if p is None]

    @property
    def cited(self) -> list[int]:
        """The supporting passages, in the order the sentences first use them."""
        return list(dict.fromkeys(p for p in self.support if p is not None))


@cache
def _filler() -> frozenset[str]:
    """Words about the answering, not the subject (stemmed on first use)."""
    return frozenset(
        analyze(
            "answer question context passage passages source sources provided according text "
            "based mentioned states stated says"
        )
    )


def sentence_spans(text: str) -> list[Span]:
    """The sentences of ``text`` with their places (whitespace around each trimmed)."""
    spans: list[Span] = []
    start = 0
    for match in _END.finditer(text):
        if match.group().startswith("\n") and _wrapped(text, match.start(), match.end()):
            continue
        end = match.end() if match.group().strip() else match.start()
        piece = text[start:end]
        if piece.strip() and _ABBREVIATIONS.search(piece.rstrip()) is None:
            spans.append(_trimmed(text, start, end))
            start = match.end()
        elif not piece.strip():
            start = match.end()
    if text[start:].strip():
        spans.append(_trimmed(text, start, len(text)))
    return [s for s in spans if s.text]


def _wrapped(text: str, start: int, end: int) -> bool:
    """Whether the line break ``text[start:end]`` only wraps a sentence onto the next line (as
    reST, Markdown and docstrings do): one break between two lines of the same indentation,
    the first ending mid-sentence, the second neither a list item, a heading's rule nor code."""
    if text.count("\n", start, end) > 1:
        return False
    before = text[text.rfind("\n", 0, start) + 1 : start]
    after_end = text.find("\n", end)
    after = text[end : len(text) if after_end < 0 else after_end]
    first, second = before.strip(), after.strip()
    if not first or not second or _RULE.match(first) or _RULE.match(second):
        return False
    indent = len(before) - len(first)
    item = _ITEM.match(first)
    if item is not None:  # a list item's text goes on under its own first word
        indent += item.end()
    return (
        indent == len(after) - len(after.lstrip())
        and _WRAP_END.search(first) is not None
        and _WRAP_START.match(second) is not None
        and _ITEM.match(second) is None
    )


def drop_repeats(text: str) -> tuple[str, int]:
    """``text`` without the sentences and lines it says again word for word (the first copy
    stays, in place); how many were dropped. Whole sentences only: never a fragment."""
    spans = sentence_spans(text)
    seen: set[str] = set()
    dropped: list[Span] = []
    for span in spans:
        key = " ".join(span.text.casefold().split())
        if key in seen:
            dropped.append(span)
        seen.add(key)
    if not dropped:
        return text, 0
    kept, cursor = [], 0
    for span in dropped:
        kept.append(text[cursor : span.start])
        cursor = span.end
    kept.append(text[cursor:])
    cleaned = re.sub(r"[ \t]+\n", "\n", "".join(kept))
    return re.sub(r"\n{3,}", "\n\n", re.sub(r" {2,}", " ", cleaned)).strip(), len(dropped)


def _trimmed(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end, text[start:end])


def names(sentence: str) -> set[str]:
    """Numbers, code and names a supporting passage must hold as written (case aside)."""
    found = {m.group() for m in _NUMBER.finditer(sentence)}
    found |= {m.group(1).strip() for m in _CODE.finditer(sentence)}
    plain = _CODE.sub(" ", sentence)
    found |= {m.group() for m in _IDENTIFIER.finditer(plain)}
    found |= {m.group() for m in _CAPITALISED.finditer(plain.strip())}
    stripped = (name.strip(".,;:()'\"") for name in found)
    return {_POSSESSIVE.sub("", name) for name in stripped} - {""}


def content_words(sentence: str) -> list[str]:
    """Stemmed words of ``sentence`` that say something: no stop words, no words about answering."""
    filler = _filler()
    words = analyze(MARKER.sub(" ", sentence), drop_stopwords=True)
    return [w for w in words if w and w not in filler]


def supports(passage: str, sentence: str, question: Question | None = None) -> bool:
    """Whether ``passage`` holds ``sentence`` in one place: two neighbouring sentences of it
    that hold all its numbers and names and nearly all its content words (those beyond the
    question's, when it has any) and, given the ``question``, cover enough of it too. Words
    scattered over a passage, or a right name taken from a sentence about something else,
    do not make a supported sentence: that is how a small model writes a wrong answer."""
    words = content_words(sentence)
    asked = question.stems if question is not None else frozenset()
    new = [w for w in words if w not in asked] or words
    if not new:
        return False
    wanted = {n.casefold() for n in names(sentence)}
    parts = [span.text for span in sentence_spans(passage)] or [passage]
    for i in range(len(parts)):
        window = " ".join(parts[i : i + WINDOW])
        present = set(analyze(window))
        if sum(1 for w in new if w in present) / len(new) < SUPPORT:
            continue
        folded = window.casefold()
        if not all(name in folded for name in wanted):
            continue
        if question is None or question.coverage(present) >= ABOUT:
            return True
    return False


@dataclass(frozen=True)
class Question:
    """A question's words, and how much each weighs (rarer words weigh more)."""

    terms: tuple[str, ...]
    weights: dict[str, float]
    stems: frozenset[str]

    @classmethod
    def of(
        cls,
        text: str,
        idf: Callable[[Sequence[str]], dict[str, float]] | None,
        pool: Sequence[str] = (),
    ) -> Question:
        """``idf``: term -> inverse document frequency over the index (None: over ``pool``)."""
        terms = tuple(t for t in dict.fromkeys(analyze(text, drop_stopwords=True)) if t)
        weights = idf(terms) if idf is not None else pool_idf(terms, pool)
        return cls(terms, weights, frozenset(analyze(text)))

    def coverage(self, present: set[str] | frozenset[str]) -> float:
        """The share of the question's weight whose words are in ``present``."""
        total = sum(self.weights.get(t, 1.0) for t in self.terms) or 1.0
        return sum(self.weights.get(t, 1.0) for t in self.terms if t in present) / total


def pool_idf(terms: Sequence[str], texts: Sequence[str]) -> dict[str, float]:
    """Inverse document frequency of ``terms`` over ``texts`` (when the index's is not at hand)."""
    docs = [set(analyze(t)) for t in texts]
    n = len(docs)
    return {t: math.log(1 + (n + 1) / (1 + sum(t in d for d in docs))) for t in terms}


def judge(
    reply: str,
    question: str,
    passages: Sequence[str],
    cited: Sequence[int] = (),
    idf: Callable[[Sequence[str]], dict[str, float]] | None = None,
) -> Judgement:
    """Judge ``reply`` against ``passages`` (0-based ``cited`` ones first, when it cites any).

    It is ``supported`` when each sentence is held by one place of a passage that is about
    the question, and some sentence says something beyond the question's own words (a reply
    that only restates the question answers nothing).
    """
    sentences = [s.text for s in sentence_spans(MARKER.sub(" ", reply))]
    order = [*cited, *(i for i in range(len(passages)) if i not in cited)]
    asked = Question.of(question, idf, passages)
    support: list[int | None] = []
    for sentence in sentences:
        support.append(next((i for i in order if supports(passages[i], sentence, asked)), None))
    informative = any(
        any(w not in asked.stems for w in content_words(s))
        for s, p in zip(sentences, support, strict=True)
        if p is not None
    )
    supported = bool(sentences) and all(p is not None for p in support) and informative
    return Judgement(supported, support, sentences)
