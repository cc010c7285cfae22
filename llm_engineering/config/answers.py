"""Answer settings: how a search ranks its passages and an answer is made from them."""

from __future__ import annotations

from pydantic import BaseModel, Field

__all__ = ["AnswerSettings"]


class AnswerSettings(BaseModel):
    """The search and answer settings (a part of :class:`~llm_engineering.config.Settings`)."""

    query_batching: bool = Field(
        default=True,
        description="Embed the queries of searches that arrive together in one forward pass.",
    )
    candidates: int = Field(
        default=50, ge=1, le=1000, description="Candidates each retriever gives hybrid fusion."
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    keyword_postings: int = Field(
        default=10_000,
        ge=0,
        description="Most rows holding a query term a keyword search reads; past it the "
        "query's rarest terms are searched (common ones weigh least in BM25). 0 = no limit. "
        "Rarely reached under about 10,000 chunks (SciFact's scores move by 0.0001); at a "
        "million, the whole query took 0.3 s.",
    )
    rerank_candidates: int = Field(
        default=50, ge=1, le=200, description="First-stage results the reranker reorders."
    )
    answer_time_limit_s: float = Field(
        default=120.0,
        ge=0,
        description="Longest an answer may generate, in seconds (0 = no limit); loops are stopped regardless.",
    )
    answer_rerank: bool = Field(
        default=True, description="Rerank retrieved passages before answering."
    )
