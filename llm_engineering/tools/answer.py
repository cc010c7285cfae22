"""``answer_with_context``: a grounded answer from the user's documents, with citations."""

from __future__ import annotations

from typing import Annotated, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from llm_engineering.tools.common import TokenStream, app_of, tool_hints, user_errors

__all__ = ["AnswerResult", "register"]


class CitationInfo(BaseModel):
    n: int = Field(description="The passage number, as cited in the answer.")
    chunk_id: str | None = Field(
        None, description="Indexed chunk id (None for caller-given passages)."
    )
    path: str | None = Field(None, description="Source file (None for caller-given passages).")
    title: str = ""
    text: str = Field(description="The cited passage (for an extract: the sentence quoted).")
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None
    how: Literal["marker", "support", "extract"] = Field(
        description="marker: the model cited [n] and the passage holds what it says; support: "
        "it cited none and the passage holds what it says; extract: the answer is this sentence "
        "of the passage, quoted (the lines are the sentence's own)."
    )


class PassageInfo(BaseModel):
    n: int = Field(description="The passage number the model saw.")
    text: str
    score: float | None = Field(
        None,
        description="Retrieval score (reranked when reranking is on); null for given passages.",
    )
    chunk_id: str | None = None
    path: str | None = None
    title: str = ""
    page: int | None = None
    start_line: int | None = None
    end_line: int | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class Timings(BaseModel):
    retrieval_ms: float
    first_token_ms: float | None = Field(
        description="From the request to the model to its first token."
    )
    generation_ms: float
    tokens_per_s: float


class AnswerResult(BaseModel):
    answer: str
    status: Literal[
        "answered", "extracted", "unsupported", "not_in_context", "no_context", "from_adapter"
    ] = Field(
        description="answered: every sentence of the model's answer is held by a cited passage; "
        "extracted: the model's answer was not, so the answer is the passage sentence that best "
        "answers the question, quoted; unsupported: neither (the model's reply is only in "
        "model_answer; read the passages); not_in_context: no passage is about the question; "
        "no_context: there were none, so the model answered from its own knowledge; "
        "from_adapter: the passages lack it and the adapter answered from what it was trained on."
    )
    grounded: bool = Field(
        description="True when the answer is held by, and cites, the passages (answered, extracted)."
    )
    citations: list[CitationInfo]
    model: str
    adapter: str | None
    usage: Usage
    timings: Timings
    took_ms: float
    passages: list[PassageInfo] = Field(
        description="The passages the model was given, best first, whatever the status."
    )
    model_answer: str = Field(
        description="The model's own words (differs from answer when no passage supports them)."
    )
    notes: list[str] = Field(description="What was cut, dropped or inferred on the way.")
    stopped: Literal["repetition", "time_limit"] | None = Field(
        default=None,
        description="Why generation was cut short: the model looped, or answer_time_limit_s passed.",
    )


@user_errors
async def answer_with_context(
    ctx: Context,
    question: Annotated[
        str, Field(description="The question to answer from the user's documents.")
    ],
    top_k: Annotated[int, Field(ge=1, le=20, description="Passages to retrieve.")] = 5,
    adapter: Annotated[
        str | None, Field(description="A fine-tuned adapter NAME or NAME@VERSION to answer with.")
    ] = None,
    max_tokens: Annotated[
        int, Field(ge=1, le=8192, description="Longest answer, in tokens.")
    ] = 512,
    temperature: Annotated[float, Field(ge=0.0, le=2.0, description="0 = deterministic.")] = 0.0,
    contexts: Annotated[
        list[str] | None,
        Field(
            description="Passages to answer from instead of searching; [] = none (the model's own knowledge)."
        ),
    ] = None,
    path_prefix: Annotated[
        str | None, Field(description="Only retrieve from paths starting with this.")
    ] = None,
) -> AnswerResult:
    """Answer a question from the user's indexed documents with a local model, citing the passages used."""
    app = app_of(ctx)
    answerer = app.require_answerer(needs_index=contexts is None)
    stream = TokenStream(ctx, max_tokens)

    def work():  # type: ignore[no-untyped-def]
        try:
            return answerer.answer(
                question, top_k=top_k, adapter=adapter, max_tokens=max_tokens,
                temperature=temperature, contexts=contexts, path_prefix=path_prefix,
                on_token=stream,
            )  # fmt: skip
        finally:
            stream.finish()

    result = await anyio.to_thread.run_sync(work)
    return AnswerResult(
        answer=result.answer,
        status=result.status,
        grounded=result.grounded,
        citations=[CitationInfo(**c.__dict__) for c in result.citations],
        model=result.model,
        adapter=result.adapter,
        usage=Usage(
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            total_tokens=result.prompt_tokens + result.completion_tokens,
        ),
        timings=Timings(
            retrieval_ms=result.retrieval_ms,
            first_token_ms=result.first_token_ms,
            generation_ms=result.generation_ms,
            tokens_per_s=result.tokens_per_s,
        ),
        took_ms=result.took_ms,
        passages=[PassageInfo(**p.__dict__) for p in result.passages],
        model_answer=result.model_answer,
        notes=result.notes,
        stopped=result.stopped,  # type: ignore[arg-type]  # one of the two, or None
    )


def register(server: MCPServer) -> None:
    server.add_tool(
        answer_with_context,
        annotations=tool_hints("Answer from documents", read_only=True, idempotent=False),
    )
