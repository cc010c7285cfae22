"""What an answer is worth: its status, what the user is shown, and what it cites.

The model's reply is never taken at its word. In order:

* ``not_in_context``: no passage is about the question (the retrieval scores say so, not
  the model): none covers enough of it, weighted by how rare its words are, or is close
  enough in meaning;
* ``answered``: every sentence of the reply is held by one place of a passage about the
  question (:mod:`.judging`), it agrees with the passage sentence that best answers the
  question, and holds what the question asks for (a number for "how many"); the reply is the
  answer, cited to the passages that hold it. When only its first sentences are held (a small
  model often answers, then rambles on), the answer is those sentences;
* ``extracted``: the reply is not supported, so the answer is the passage sentence that best
  answers the question (:mod:`.extract`), quoted as it is, with its path and lines;
* ``unsupported``: neither; the reply stays in ``model_answer``, never shown as the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from llm_engineering.generation.citations import is_refusal
from llm_engineering.generation.extract import Extract, asked_kind, best_sentence, holds
from llm_engineering.generation.judging import Question, content_words, judge
from llm_engineering.generation.prompts import Block
from llm_engineering.index_store.store.keyword import analyze

__all__ = [
    "NOT_FOUND",
    "RELEVANT_COSINE",
    "RELEVANT_COVERAGE",
    "UNSUPPORTED",
    "How",
    "Signals",
    "Verdict",
    "decide",
]

Kind = Literal["answered", "extracted", "unsupported", "not_in_context"]
How = Literal["marker", "support", "extract"]

NOT_FOUND = "The documents do not hold the answer: no passage found is about this question."
UNSUPPORTED = (
    "No answer could be checked against the documents: the model's reply is not held by the "
    "passages found, and none of their sentences answers the question. The passages are listed."
)
RELEVANT_COVERAGE = 0.45
"""The least share of the question (rarer words weigh more) the best passage must cover..."""
RELEVANT_COSINE = 0.45
"""...or the least cosine of its meaning to the question's, for the passages to be about it."""
AGREE = 0.8
"""Share of a supported reply's new words the best-answering sentence must hold too."""
ANSWER_COSINE = 0.6
"""The least cosine to the question of the sentence quoted as an answer, or that a supported
reply must agree with: below it, the passages' closest sentence is about something else."""


@dataclass(frozen=True)
class Signals:
    """What the index knows that sharpens the judgement (each optional)."""

    idf: Callable[[Sequence[str]], dict[str, float]] | None = None
    """term -> inverse document frequency over the index."""
    similarity: Callable[[str, Sequence[str]], list[float]] | None = None
    """(question, texts) -> cosines of their meanings (the embedding model's)."""


@dataclass
class Verdict:
    status: Kind
    answer: str
    cited: list[tuple[int, How, Extract | None]] = field(default_factory=list)
    """Blocks cited (0-based), how, and for an extract the sentence quoted."""
    notes: list[str] = field(default_factory=list)


def decide(
    reply: str, question: str, blocks: Sequence[Block], markers: Sequence[int], signals: Signals
) -> Verdict:
    """The verdict on ``reply`` given the ``blocks`` the model read (``markers``: the 1-based
    passage numbers it cited)."""
    passages = [block.text for block in blocks]
    asked = Question.of(question, signals.idf, passages)
    if not _relevant(question, passages, asked, signals):
        return Verdict(
            "not_in_context",
            NOT_FOUND,
            notes=["no passage found is about the question (retrieval and reranking scores)"],
        )
    cited = [n - 1 for n in markers if 1 <= n <= len(blocks)]
    judgement = judge(reply, question, passages, cited, signals.idf)
    notes: list[str] = []
    if None in judgement.support[1:] and judgement.support[0] is not None:
        # The leading sentences hold up and a later one does not (a small model often
        # answers, then rambles on): the answer is those sentences.
        held = judgement.support.index(None)
        kept = " ".join(judgement.sentences[:held])
        trimmed = judge(kept, question, passages, cited, signals.idf)
        if trimmed.supported:
            dropped = len(judgement.sentences) - held
            reply, judgement = kept, trimmed
            notes.append(
                f"kept the model's first {held} sentence(s), which the passages hold; "
                f"dropped the {dropped} after them, which they do not (see model_answer)"
            )
    best = best_sentence(question, passages, signals.idf, signals.similarity)
    if (
        judgement.supported
        and not is_refusal(reply)
        and _agrees(reply, asked, best)
        and _close(best, ANSWER_COSINE)
        and _holds_kind(question, reply)
    ):
        how: dict[int, How] = {i: "marker" if i in cited else "support" for i in judgement.cited}
        return Verdict("answered", reply, [(i, how[i], None) for i in judgement.cited], notes)
    if best is not None and _close(best, ANSWER_COSINE):
        why = (
            "the model's answer was not supported by the passages; the best matching sentence "
            "is quoted"
            if not judgement.supported
            else "the model's answer, though its words are in the passages, is not what the "
            "sentence that best answers the question says; that sentence is quoted"
        )
        return Verdict("extracted", best.text, [(best.block, "extract", best)], [why])
    return Verdict(
        "unsupported",
        UNSUPPORTED,
        notes=[
            "the model's answer was not supported by the passages and no passage sentence "
            "answers the question; the reply is in model_answer"
        ],
    )


def _relevant(question: str, passages: Sequence[str], asked: Question, signals: Signals) -> bool:
    coverage = max((asked.coverage(set(analyze(p))) for p in passages), default=0.0)
    if coverage >= RELEVANT_COVERAGE:
        return True
    if signals.similarity is None or not passages:
        return False
    return max(signals.similarity(question, passages)) >= RELEVANT_COSINE


def _close(best: Extract | None, least: float) -> bool:
    """Whether the best-answering sentence is close enough in meaning to the question."""
    return best is not None and (best.cosine is None or best.cosine >= least)


def _holds_kind(question: str, reply: str) -> bool:
    """Whether the reply holds what the question asks for (a number for "how many", a
    time for "when", a name for "who"), beyond the question's own words."""
    kind = asked_kind(question)
    return kind is None or bool(holds(kind, reply, question))


def _agrees(reply: str, asked: Question, best: Extract | None) -> bool:
    """Whether the reply's words beyond the question's are in the sentence that best answers
    it: a reply held by a passage can still be taken from a sentence about something else."""
    if best is None:
        return True
    new = [w for w in content_words(reply) if w not in asked.stems]
    held = set(analyze(best.text))
    return bool(new) and sum(w in held for w in new) / len(new) >= AGREE
