"""``ingest``: index (again) a watched folder or a file inside one, with progress."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from pydantic import BaseModel, Field

from llm_engineering.index_store.ingest.report import IngestReport
from llm_engineering.tools.common import ThreadProgress, app_of, tool_hints, user_errors

__all__ = ["FailedFileInfo", "IngestResult", "IngestSummary", "register"]


class FailedFileInfo(BaseModel):
    path: str
    error: str = Field(description="Why the file could not be indexed.")


class IngestSummary(BaseModel):
    added: int
    updated: int
    unchanged: int
    removed: int
    failed: int
    chunks_embedded: int = Field(description="Chunks that went through the embedding model.")
    chunks_reused: int = Field(description="Chunks whose vectors were reused from the index.")
    seconds: float

    @classmethod
    def of(cls, report: IngestReport) -> IngestSummary:
        return cls(
            added=report.added,
            updated=report.updated,
            unchanged=report.unchanged,
            removed=report.removed,
            failed=len(report.failed),
            chunks_embedded=report.chunks_embedded,
            chunks_reused=report.chunks_reused,
            seconds=round(report.seconds, 3),
        )


class IngestResult(BaseModel):
    summary: IngestSummary
    failed: list[FailedFileInfo] = Field(
        description="Files that could not be indexed in this run, with the reason."
    )
    paths: list[str] = Field(description="What was ingested.")


@user_errors
async def ingest(
    ctx: Context,
    path: Annotated[
        str | None,
        Field(
            description="A file or folder inside a watched folder; omit to re-scan every watched folder."
        ),
    ] = None,
) -> IngestResult:
    """Index a watched folder (or one file or subfolder of it) now: new and changed files are indexed, deleted ones removed."""
    app = app_of(ctx)
    index = app.require_writable_index()
    targets = [index.inside_watched(path)] if path else index.watched_folders()
    progress = ThreadProgress(ctx)
    report = await anyio.to_thread.run_sync(lambda: index.ingest(targets, progress))
    return IngestResult(
        summary=IngestSummary.of(report),
        failed=[FailedFileInfo(path=f.path, error=f.error) for f in report.failed],
        paths=[str(t) for t in targets],
    )


def register(server: MCPServer) -> None:
    server.add_tool(
        ingest,
        annotations=tool_hints("Index documents", read_only=False, idempotent=True),
    )
