"""Grounded answers: retrieve, pack numbered passages, generate, and read the citations."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llm_engineering.errors import UserError
from llm_engineering.generation.base import Completion, Generator, ServedAdapter, TokenFn
from llm_engineering.generation.citations import cited_numbers, is_refusal
from llm_engineering.generation.extract import Extract
from llm_engineering.generation.grounding import How, Signals, decide
from llm_engineering.generation.judging import drop_repeats
from llm_engineering.generation.prompts import (
    Block,
    grounded_messages,
    open_messages,
    pack_blocks,
)

if TYPE_CHECKING:
    from llm_engineering.config import Settings
    from llm_engineering.generation.models import GeneratorCache
    from llm_engineering.index_store.service import IndexService

__all__ = ["Answer", "Answerer", "Citation", "Passage"]

Status = Literal[
    "answered", "extracted", "unsupported", "not_in_context", "no_context", "from_adapter"
]


@dataclass
class Citation:
    n: int
    text: str
    chunk_id: str | None = None
    path: str | None = None
    title: str = ""
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None
    how: Literal["marker", "support", "extract"] = "marker"
    """``marker``: the model wrote [n] and the passage holds what it says; ``support``: it
    wrote none, and the passage holds what it says; ``extract``: the answer is quoted from the
    passage (``text`` is the sentence, the lines are its own)."""


@dataclass
class Passage:
    """A passage the model was given, whatever became of the answer."""

    n: int
    text: str
    score: float | None = None
    """Its retrieval score (reranked when reranking is on); None for a passage given."""
    chunk_id: str | None = None
    path: str | None = None
    title: str = ""
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None


@dataclass
class Answer:
    answer: str
    status: Status
    grounded: bool
    citations: list[Citation]
    model: str
    adapter: str | None
    prompt_tokens: int
    completion_tokens: int
    retrieval_ms: float
    first_token_ms: float | None
    generation_ms: float
    tokens_per_s: float
    took_ms: float
    passages: list[Passage]
    """The passages the model was given, best first."""
    model_answer: str
    """What the model wrote, unchanged (differs from ``answer`` when no passage supports it)."""
    notes: list[str] = field(default_factory=list)
    stopped: str | None = None
    """``repetition`` or ``time_limit`` when generation was cut short for that reason."""


ResolveAdapter = Callable[[str], ServedAdapter]
"""adapter spec (``NAME[@VERSION]``) -> the adapter to answer with; raises UserError."""


def _no_adapters(spec: str) -> ServedAdapter:
    raise UserError(
        f"unknown adapter {spec!r}: no adapters are registered yet (train one with start_qlora_job)"
    )


class Answerer:
    """Answers questions from the index (or from caller-given passages) with a generator.

    Args:
        generators: Returns the generator answering with an adapter (None = the base model).
        index: The index to retrieve from; None when there is none.
        rerank: Rerank retrieved passages before packing them.
        adapters: Resolves adapter names; the default knows none.
        time_limit_s: Longest a generation may run (None: no limit); loops stop regardless.
    """

    def __init__(
        self,
        generators: Callable[[ServedAdapter | None], Generator],
        index: IndexService | None = None,
        rerank: bool = True,
        adapters: ResolveAdapter | None = None,
        time_limit_s: float | None = None,
    ):
        self._generators = generators
        self._index = index
        self._rerank = rerank
        self._adapters = adapters or _no_adapters
        self._time_limit_s = time_limit_s
        self._suggested = False

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        generators: GeneratorCache,
        index: IndexService | None,
        adapters: ResolveAdapter | None = None,
    ) -> Answerer:
        """The answerer the server and the CLI both use: the settings' generators and reranking."""
        return cls(
            generators.get, index, rerank=settings.answer_rerank, adapters=adapters,
            time_limit_s=settings.answer_time_limit_s or None,
        )  # fmt: skip

    def answer(
        self,
        question: str,
        *,
        top_k: int = 5,
        adapter: str | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        contexts: Sequence[str] | None = None,
        path_prefix: str | None = None,
        on_token: TokenFn | None = None,
    ) -> Answer:
        """Answer ``question``.

        Args:
            contexts: Passages to answer from instead of retrieving; ``[]`` means none at all.

        Raises:
            UserError: an empty question, an unknown adapter, or max_tokens too large for the window.
        """
        started = time.perf_counter()
        if not question.strip():
            raise UserError("question is empty: pass the question to answer")
        served = self._adapters(adapter) if adapter else None
        adapter_name = served.spec if served else None
        notes: list[str] = []

        retrieval_started = time.perf_counter()
        if contexts is not None:
            blocks = [Block(n=i + 1, text=text) for i, text in enumerate(contexts) if text.strip()]
            if len(blocks) < len(contexts):
                notes.append(f"{len(contexts) - len(blocks)} empty passage(s) given were ignored")
        else:
            blocks = self._retrieve(question, top_k, path_prefix)
        retrieval_ms = (time.perf_counter() - retrieval_started) * 1000

        generator = self._generators(served)
        if blocks:
            blocks, packing_notes = pack_blocks(blocks, question, generator, max_tokens)
            notes += packing_notes
            messages = grounded_messages(question, blocks)
        else:
            if served is None:
                messages = open_messages(question)
                notes.append("no context passages: answered from the model's own knowledge")
            else:
                messages = open_messages(question, served.system_prompt)
                notes.append(
                    f"no context passages: answered by {served.spec} in the format it was trained "
                    + (
                        f"with (system prompt: {served.system_prompt!r})"
                        if served.system_prompt
                        else "with (no system prompt)"
                    )
                )
        completion = generator.chat(messages, max_tokens, temperature, on_token, self._time_limit_s)
        prompt_tokens, completion_tokens = completion.prompt_tokens, completion.completion_tokens
        stopped = _stopped(completion, notes)

        text, repeated = drop_repeats(completion.text.strip())
        if repeated:
            notes.append(f"dropped {repeated} sentence(s) the model wrote again word for word")
        status: Status
        citations: list[Citation] = []
        answer = text
        if not blocks:
            status = "no_context"
        else:
            numbers = cited_numbers(text)
            missing = sorted(set(numbers) - set(range(1, len(blocks) + 1)))
            if missing:
                notes.append(f"ignored citation(s) of passages that do not exist: {missing}")
            verdict = decide(text, question, blocks, numbers, self._signals())
            status, answer, notes = verdict.status, verdict.answer, notes + verdict.notes
            citations = [_cite(blocks[i], how, quote) for i, how, quote in verdict.cited]
            if status in ("extracted", "unsupported"):
                self._suggest(generator.name, notes)
        if status == "not_in_context" and served is not None:
            # The passages lack the answer, but the adapter may have been taught it: ask it
            # alone, in the format it was trained in, and say where the answer came from.
            own = generator.chat(
                open_messages(question, served.system_prompt), max_tokens, temperature,
                on_token, self._time_limit_s,
            )  # fmt: skip
            prompt_tokens += own.prompt_tokens
            completion_tokens += own.completion_tokens
            stopped = _stopped(own, notes) or stopped
            if own.text.strip() and not is_refusal(own.text):
                answer = text = own.text.strip()
                status, citations = "from_adapter", []
                notes.append(
                    f"the passages do not hold the answer; answered by {served.spec} from what "
                    "it was trained on (not grounded in the documents)"
                )
        return Answer(
            answer=answer,
            status=status,
            grounded=status in ("answered", "extracted"),
            citations=citations,
            model=generator.name,
            adapter=adapter_name,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            retrieval_ms=round(retrieval_ms, 2),
            first_token_ms=_round(completion.first_token_ms),
            generation_ms=round(completion.generation_ms, 2),
            tokens_per_s=round(completion.tokens_per_s, 2),
            took_ms=round((time.perf_counter() - started) * 1000, 2),
            passages=[_passage(block) for block in blocks],
            model_answer=text,
            notes=notes,
            stopped=stopped,
        )

    def _retrieve(self, question: str, top_k: int, path_prefix: str | None) -> list[Block]:
        index = self._index
        if index is None or index.status().chunks == 0:
            return []
        hits, _ = index.search(
            question, top_k=top_k, mode="hybrid", path_prefix=path_prefix, rerank=self._rerank
        )
        floor = (
            getattr(index.reranker(), "relevance_floor", None) if self._rerank and hits else None
        )
        if floor is not None:
            # The best passage always goes in; the others only when the reranker rates them
            # relevant: a passage about something else only distracts a small model.
            hits = hits[:1] + [hit for hit in hits[1:] if hit.score >= floor]
        return [
            Block(
                n=i + 1, text=hit.text, chunk_id=hit.chunk_id, path=hit.path, title=hit.title,
                page=hit.page, start_line=hit.start_line, end_line=hit.end_line, source=hit.rel_path,
                score=hit.score,
            )
            for i, hit in enumerate(hits)
        ]  # fmt: skip

    def _signals(self) -> Signals:
        """The index's word rarity and its embedding model's sense of meaning, when there is
        an index (answers from given passages use the passages' own word counts)."""
        index = self._index
        if index is None:
            return Signals()

        from llm_engineering.index_store.models.reranking import bm25_idf

        def idf(terms: Sequence[str]) -> dict[str, float]:
            return bm25_idf(terms, *index.keyword.document_frequency(terms))

        asked: dict[str, list[float]] = {}  # one question per answer: embedded once

        def similarity(question: str, texts: Sequence[str]) -> list[float]:
            embedder = index.embedder()
            if question not in asked:
                asked[question] = embedder.embed_query(question)
            vectors = embedder.embed_documents(list(texts))
            return [_cosine(asked[question], vector) for vector in vectors]

        return Signals(idf, similarity)

    def _suggest(self, model: str, notes: list[str]) -> None:
        """Once per answerer: where the model is the limit, the fix that works."""
        if self._suggested:
            return
        self._suggested = True
        notes.append(
            f"{model} could not answer from the passages; a larger GGUF (llm_model) or a model "
            "server (llm_url) answers from them far more often (said once)"
        )


def _cite(block: Block, how: How, quote: Extract | None = None) -> Citation:
    """A citation of ``block``; of the sentence ``quote`` of it, with its own lines, if given."""
    text, start, end = block.text, block.start_line, block.end_line
    if quote is not None:
        text = quote.text
        if block.start_line is not None:
            start = block.start_line + block.text.count("\n", 0, quote.offset)
            end = start + quote.text.count("\n")
    return Citation(
        n=block.n, text=text, chunk_id=block.chunk_id, path=block.path, title=block.title,
        page=block.page, start_line=start, end_line=end, how=how,
    )  # fmt: skip


def _passage(block: Block) -> Passage:
    return Passage(
        n=block.n, text=block.text, score=block.score, chunk_id=block.chunk_id, path=block.path,
        title=block.title, page=block.page, start_line=block.start_line, end_line=block.end_line,
    )  # fmt: skip


def _stopped(completion: Completion, notes: list[str]) -> str | None:
    if completion.finish_reason == "repetition":
        notes.append("generation stopped: the model was repeating itself (one copy kept)")
    elif completion.finish_reason == "time_limit":
        notes.append("generation stopped at answer_time_limit_s; the answer may be cut short")
    else:
        return None
    return completion.finish_reason


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
