"""Grounded answers: retrieve, pack numbered passages, generate, and read the citations."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from llm_engineering.errors import UserError
from llm_engineering.generation.base import Completion, Generator, ServedAdapter, TokenFn
from llm_engineering.generation.citations import cited_numbers, is_refusal, supporting_blocks
from llm_engineering.generation.prompts import (
    NOT_IN_CONTEXT,
    Block,
    grounded_messages,
    open_messages,
    pack_blocks,
)

if TYPE_CHECKING:
    from llm_engineering.config import Settings
    from llm_engineering.generation.models import GeneratorCache
    from llm_engineering.index_store.service import IndexService

__all__ = ["Answer", "Answerer", "Citation"]

Status = Literal["answered", "not_in_context", "no_context", "from_adapter"]


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
    how: Literal["marker", "overlap"] = "marker"
    """``marker``: the model wrote [n]; ``overlap``: the passage holds the answer's words."""


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
    passages: int
    """Context passages the model was given."""
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

        text = completion.text.strip()
        status: Status
        citations: list[Citation] = []
        answer = text
        if not blocks:
            status = "no_context"
        elif is_refusal(text):
            status = "not_in_context"
        else:
            numbers = cited_numbers(text)
            valid = [n for n in numbers if 1 <= n <= len(blocks)]
            if len(valid) < len(numbers):
                notes.append(
                    f"ignored citation(s) of passages that do not exist: {sorted(set(numbers) - set(valid))}"
                )
            if valid:
                citations = [_cite(blocks[n - 1], "marker") for n in valid]
                status = "answered"
            else:
                found = supporting_blocks(text, question, [b.text for b in blocks])
                if found:
                    citations = [_cite(blocks[i], "overlap") for i in found]
                    status = "answered"
                    notes.append(
                        "the model cited no passage; cited the passage that holds the answer's words"
                    )
                else:
                    status = "not_in_context"
                    answer = NOT_IN_CONTEXT
                    notes.append(
                        "the model's reply is not supported by any passage (no citation, and most of its "
                        "words are in none of them); see model_answer"
                    )
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
            grounded=status == "answered",
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
            passages=len(blocks),
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
            )
            for i, hit in enumerate(hits)
        ]  # fmt: skip


def _cite(block: Block, how: Literal["marker", "overlap"]) -> Citation:
    return Citation(
        n=block.n, text=block.text, chunk_id=block.chunk_id, path=block.path, title=block.title,
        page=block.page, start_line=block.start_line, end_line=block.end_line, how=how,
    )  # fmt: skip


def _stopped(completion: Completion, notes: list[str]) -> str | None:
    if completion.finish_reason == "repetition":
        notes.append("generation stopped: the model was repeating itself (one copy kept)")
    elif completion.finish_reason == "time_limit":
        notes.append("generation stopped at answer_time_limit_s; the answer may be cut short")
    else:
        return None
    return completion.finish_reason


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
