"""Retrieval tuning tools: tune the embedding model on the corpus (a job), roll a switch back.

The job is followed with the training tools (``get_job``, ``cancel_job``, ``resume_job``)."""

from __future__ import annotations

from typing import Annotated, Any

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from llm_engineering.paths import confine
from llm_engineering.tools.common import app_of, tool_hints, user_errors

__all__ = ["register"]


class StartedTuning(BaseModel):
    job_id: str
    status: str = Field(description="queued: it runs in the background; follow it with get_job.")
    pairs: int = Field(description="Pairs that passed validation (held-out ones included).")
    dataset_sha256: str | None = Field(description="sha256 of the pairs file (null: corpus pairs).")
    embedding_model: str = Field(description="The model being tuned (the one searches use now).")
    settings: dict[str, Any] = Field(description="The tuning settings, defaults included.")


class LiveEmbedding(BaseModel):
    embedding_model: str = Field(description="The embedding model searches use now.")


@user_errors
async def start_retrieval_tuning(
    ctx: Context,
    pairs_path: Annotated[
        str | None,
        Field(
            description="Absolute path of a JSONL file inside a watched folder or the data dir: "
            '{"query": ..., "positives": [file path or chunk id, ...], "negatives": [...]} per '
            "line. Omit it to use the documents' titles and section headings as queries."
        ),
    ] = None,
    min_gain: Annotated[
        float,
        Field(ge=0, le=1, description="nDCG@10 the tuned index must gain on held-out pairs."),
    ] = 0.01,
    heldout_fraction: Annotated[
        float, Field(gt=0, lt=1, description="Share of the pairs held out to score both indexes.")
    ] = 0.2,
    questions: Annotated[
        int,
        Field(
            ge=0,
            le=5000,
            description="Without pairs_path: also have the local model write a question for this "
            "many sampled chunks (slower: about a second each with the packaged model).",
        ),
    ] = 0,
    hard_negatives: Annotated[
        bool,
        Field(
            description="Give each pair without negatives of its own the best keyword hit "
            "outside its positives' files as one (slower).",
        ),
    ] = False,
    settings: Annotated[
        dict[str, Any] | None,
        Field(
            description="Tuning overrides: epochs, batch_size, learning_rate, method (full or "
            "lora), max_query_tokens, max_passage_tokens, ... (unknown names are refused)."
        ),
    ] = None,
) -> StartedTuning:
    """Fine-tune the embedding model on this corpus, re-embed every chunk into a new index while the live one keeps answering, and switch searches to it only if it scores better on held-out pairs; returns a job id at once."""
    app = app_of(ctx)
    index = app.require_writable_index()
    training = app.require_training()

    def queue() -> Any:
        pairs = None
        if pairs_path is not None:
            pairs = confine(pairs_path, training.allowed_roots(), what="pairs_path", kind="file")
        return training.queue_tuning(
            index, pairs=pairs, min_gain=min_gain,
            heldout_fraction=heldout_fraction, settings=settings, questions=questions,
            hard_negatives=hard_negatives,
        )  # fmt: skip

    job = await anyio.to_thread.run_sync(queue)
    if app.tuning is not None:
        app.tuning.wake()
    return StartedTuning(
        job_id=job.id,
        status=job.status,
        pairs=job.examples,
        dataset_sha256=job.dataset_sha256,
        embedding_model=job.base_model,
        settings=job.hyperparameters,
    )


@user_errors
async def rollback_retrieval_tuning(ctx: Context) -> LiveEmbedding:
    """Switch searches back to the embedding model and index that the last tuning replaced (a second call comes back)."""
    from llm_engineering.retrieval.tuner import RetrievalTuner

    index = app_of(ctx).require_writable_index()
    target = await anyio.to_thread.run_sync(lambda: RetrievalTuner(index).rollback())
    return LiveEmbedding(embedding_model=target.label)


def register(server: MCPServer, read_only: bool) -> None:
    if read_only:
        return
    server.add_tool(
        start_retrieval_tuning, annotations=tool_hints("Tune retrieval", read_only=False)
    )
    server.add_tool(
        rollback_retrieval_tuning,
        annotations=tool_hints("Roll back retrieval tuning", read_only=False),
    )
