"""``rerank``: order caller-given passages by relevance to a query."""

from __future__ import annotations

import time
from typing import Annotated

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from llm_engineering.errors import UserError
from llm_engineering.index_store.models.reranking import (
    MAX_RERANK_DOCUMENTS,
    Candidate,
    check_documents,
)
from llm_engineering.tools.common import app_of, tool_hints, user_errors

__all__ = ["RerankResult", "register"]


class RerankedDocument(BaseModel):
    index: int = Field(description="Position of the document in the list given.")
    score: float = Field(description="Relevance score from the reranker; higher is more relevant.")
    text: str


class RerankResult(BaseModel):
    results: list[RerankedDocument] = Field(description="Most relevant first.")
    model: str = Field(description="The reranker that produced the scores.")
    took_ms: float


@user_errors
async def rerank(
    ctx: Context,
    query: Annotated[
        str, Field(description="The question or need the documents are judged against.")
    ],
    documents: Annotated[
        list[str],
        Field(
            description=f"Passages to order (at most {MAX_RERANK_DOCUMENTS}).",
            max_length=MAX_RERANK_DOCUMENTS,
        ),
    ],
    top_n: Annotated[
        int | None, Field(ge=1, description="Return only the best N; default all.")
    ] = None,
) -> RerankResult:
    """Score passages against a query and return them most relevant first, with the reranker's name."""
    if not query.strip():
        raise UserError("query is empty: pass the question the documents should answer")
    if not documents:
        raise UserError("documents is empty: pass the passages to order")
    check_documents(documents)
    index = app_of(ctx).require_index()

    def work() -> tuple[list[float], str]:
        reranker = index.reranker()
        return reranker.score(query, [Candidate(text) for text in documents]), reranker.name

    started = time.perf_counter()
    scores, name = await anyio.to_thread.run_sync(work)
    order = sorted(range(len(documents)), key=lambda i: -scores[i])[: top_n or len(documents)]
    return RerankResult(
        results=[
            RerankedDocument(index=i, score=round(scores[i], 6), text=documents[i]) for i in order
        ],
        model=name,
        took_ms=round((time.perf_counter() - started) * 1000, 2),
    )


def register(server: MCPServer) -> None:
    server.add_tool(
        rerank,
        annotations=tool_hints("Rerank passages", read_only=True),
    )
