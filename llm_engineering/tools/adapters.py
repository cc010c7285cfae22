"""Adapter tools: list every registered version with where it can answer, delete versions."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from llm_engineering.adapters.damaged import Damaged
from llm_engineering.adapters.registry import AdapterCard
from llm_engineering.generation.base import Availability
from llm_engineering.tools.common import app_of, tool_hints, user_errors

__all__ = ["AdapterInfo", "DamagedInfo", "Serving", "register"]


class Serving(BaseModel):
    where: Literal["in_process", "server", "none"] = Field(
        description="in_process: llama.cpp here, over the one loaded base; server: the model "
        "server at llm_url; none: it cannot answer now (detail says why)."
    )
    detail: str = Field(description="How (loaded, loads on first use, its name there) or why not.")


class AdapterInfo(BaseModel):
    adapter: str = Field(description="NAME@VERSION, what answer_with_context(adapter=...) takes.")
    name: str
    version: int
    base_model: str
    base_gguf_sha256: str = Field(description="sha256 of the GGUF it serves on ('' = none).")
    dataset_sha256: str
    dataset_examples: int
    final_loss: float | None
    best_loss: float | None
    steps: int
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    kept: float | None = Field(
        description="Share of the packaged general prompts it answers as its base does (the "
        "kept check; None: trained before the check existed). Under 0.8: it forgot."
    )
    leaked: float | None = Field(
        description="Share of general answers naming its training answers' distinctive words."
    )
    created: float
    job_id: str
    path: str
    serving: Serving = Field(description="Where it can answer now, or why it cannot.")

    @classmethod
    def of(cls, card: AdapterCard, where: Availability) -> AdapterInfo:
        return cls(
            adapter=card.spec,
            name=card.name,
            version=card.version,
            base_model=card.base_model,
            base_gguf_sha256=card.base_gguf_sha256,
            dataset_sha256=card.dataset_sha256,
            dataset_examples=card.dataset_examples,
            final_loss=card.final_loss,
            best_loss=card.best_loss,
            steps=card.steps,
            hyperparameters=card.hyperparameters,
            metrics=card.metrics,
            kept=(card.metrics.get("kept_check") or {}).get("kept"),
            leaked=(card.metrics.get("kept_check") or {}).get("leaked"),
            created=card.created,
            job_id=card.job_id,
            path=card.path,
            serving=Serving(where=where.where, detail=where.detail),
        )


class DamagedInfo(BaseModel):
    entry: str = Field(description="NAME@VERSION of the adapter, or 'job ID'.")
    path: str = Field(description="The file that cannot be read.")
    reason: str = Field(description="Why: not valid JSON (where), a missing or wrong field, ...")

    @classmethod
    def of(cls, found: Damaged) -> DamagedInfo:
        return cls(entry=found.entry, path=found.path, reason=found.reason)


class AdapterList(BaseModel):
    adapters: list[AdapterInfo]
    damaged: list[DamagedInfo] = Field(
        default_factory=list,
        description="Versions whose card.json cannot be read: left out of adapters; delete "
        "them (delete_adapter) or restore the file.",
    )


class Deleted(BaseModel):
    deleted: list[str] = Field(description="The NAME@VERSION adapters removed.")
    notes: list[str] = Field(
        default_factory=list, description="Where a deleted version stays loaded, and until when."
    )


@user_errors
async def list_adapters(
    ctx: Context,
    name: Annotated[str | None, Field(description="Only the versions of this adapter.")] = None,
) -> AdapterList:
    """Fine-tuned adapters, every version, with base model, dataset hash, losses, hyperparameters and where each can answer now."""
    app = app_of(ctx)
    training = app.require_training()

    def work() -> AdapterList:
        listing = training.adapter_listing(name)
        found = training.where_served(app.require_generators(), listing.cards)
        return AdapterList(
            adapters=[
                AdapterInfo.of(card, where)
                for card, where in zip(listing.cards, found, strict=True)
            ],
            damaged=[DamagedInfo.of(d) for d in listing.damaged],
        )

    return await anyio.to_thread.run_sync(work)


@user_errors
async def delete_adapter(
    ctx: Context,
    adapter: Annotated[str, Field(description="NAME@VERSION, or NAME for every version.")],
    confirm: Annotated[
        str, Field(description="Repeat the adapter argument exactly to confirm; deleting is final.")
    ],
) -> Deleted:
    """Delete a fine-tuned adapter version (or all versions of a name); needs confirm equal to adapter."""
    app = app_of(ctx)
    training = app.require_training()

    def work() -> Deleted:
        deleted = training.delete_adapter(adapter, confirm)
        return Deleted(deleted=deleted, notes=app.require_generators().release(deleted))

    return await anyio.to_thread.run_sync(work)


def register(server: MCPServer, read_only: bool) -> None:
    server.add_tool(list_adapters, annotations=tool_hints("Fine-tuned adapters", read_only=True))
    if not read_only:
        server.add_tool(
            delete_adapter,
            annotations=tool_hints("Delete adapter", read_only=False, destructive=True),
        )

    @server.resource(
        "adapter://{name}",
        name="adapter",
        description="An adapter's card (latest version; NAME@VERSION for another) as JSON.",
        mime_type="application/json",
    )
    def adapter_card(name: str, ctx: Context) -> str:
        card = app_of(ctx).require_training().adapter(name)
        return json.dumps(card.__dict__, indent=2)
