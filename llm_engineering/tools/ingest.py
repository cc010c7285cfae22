"""``ingest``: index (again) a watched folder or a file inside one, with progress."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ToolAnnotations
from pydantic import BaseModel, Field

from llm_engineering.errors import PathError
from llm_engineering.tools.common import ThreadProgress, app_of, user_errors
from llm_engineering.tools.search import FailedFileInfo, IngestSummary

__all__ = ["IngestResult", "register"]


class IngestResult(BaseModel):
    summary: IngestSummary
    failed: list[FailedFileInfo] = Field(
        description="Files that could not be indexed in this run, with the reason."
    )
    paths: list[str] = Field(description="What was ingested.")


def resolve_inside(path: str, folders: list[Path]) -> Path:
    """``path`` made absolute (relative paths are taken inside the first watched folder).

    Raises:
        PathError: no folders are watched, or the path (links resolved) lies outside them.
    """
    if not folders:
        raise PathError(
            "no folders are watched, so there is nothing this server may index: start it with "
            "--watch DIR (or LLM_ENG_WATCH, or `watch` in the config file)"
        )
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = folders[0] / candidate
    resolved = candidate.resolve()
    for folder in folders:
        if resolved == folder or folder in resolved.parents:
            if not resolved.exists():
                raise PathError(f"{candidate} does not exist")
            return resolved
    allowed = ", ".join(str(f) for f in folders)
    raise PathError(
        f"{candidate} is outside the watched folders ({allowed}); only those can be indexed"
    )


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
    folders = list(app.settings.watch)
    targets = [resolve_inside(path, folders)] if path else folders
    if not targets:
        resolve_inside("", folders)  # raises the "no folders are watched" error
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
        annotations=ToolAnnotations(
            title="Index documents",
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=False,
        ),
    )
