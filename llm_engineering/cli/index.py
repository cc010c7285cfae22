"""``llm-eng ingest``, ``search`` and ``status``: the index from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_engineering.cli import output
from llm_engineering.cli.app import app
from llm_engineering.cli.options import (
    AsJson,
    ChromaUrl,
    Config,
    DataDir,
    EmbeddingModel,
    LogLevel,
    Watch,
    fail,
    load_settings,
    open_index,
)
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.index_store.ingest.report import IngestReport
    from llm_engineering.index_store.query.search import Hit
    from llm_engineering.index_store.service import IndexService

__all__ = ["index_watched", "ingest", "open_watched", "search", "status"]


def _ingest(index: IndexService, targets: list[Path], retry_failed: bool = True) -> IngestReport:
    with output.file_progress() as progress:
        index.on_model_load = lambda name: progress.note(f"loading the embedding model {name}")
        try:
            return index.ingest(targets, progress, retry_failed=retry_failed)
        finally:
            index.on_model_load = None


def index_watched(index: IndexService) -> None:
    """Index the --watch folders first, unless a running server already keeps them indexed.

    A file that failed and has not changed since is left failed (its error is what the
    command shows): `llm-eng ingest` and a server start try such files again.
    """
    from llm_engineering.errors import IndexBusyError

    if not index.settings.watch:
        return
    try:
        _ingest(index, list(index.settings.watch), retry_failed=False)
    except IndexBusyError:
        typer.echo(f"note: llm-eng (pid {index.writer_pid}) keeps this index up to date", err=True)


def open_watched(config: Path | None, log_level: str | None, **flags: Any) -> IndexService:
    """The index, with the --watch folders indexed first (what search, status, show, ls read)."""
    index = open_index(load_settings(config, log_level=log_level or "ERROR", **flags))
    try:
        index_watched(index)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    return index


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders to index.")],
    rebuild: Annotated[
        bool,
        typer.Option(
            "--rebuild",
            help="Drop the whole index first (e.g. after changing the embedding model, or when "
            "state.sqlite is damaged: training jobs and adapters are kept).",
        ),
    ] = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Index files and folders: new and changed files are embedded, deleted ones removed."""
    settings = load_settings(
        config, watch=watch, data_dir=data_dir, chroma_url=chroma_url,
        embedding_model=embedding_model, log_level=log_level or "ERROR",
    )  # fmt: skip
    index = open_index(settings, rebuild=rebuild)
    if index.damaged_file is not None:
        typer.echo(
            f"note: {settings.state_path} was damaged and is kept as {index.damaged_file}; "
            "the index is made again; training jobs restored from their folders: "
            f"{_jobs_kept(settings.data_dir)} (adapters are kept as they were)",
            err=True,
        )
    try:
        report = _ingest(index, [*paths, *settings.watch])
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    output.print_report(report)
    if report.failed:
        raise typer.Exit(3)


def _jobs_kept(data_dir: Path) -> int:
    """Open the job store now, which brings the jobs table back from the job folders."""
    from llm_engineering.adapters.jobs import JobStore

    store = JobStore(data_dir)
    try:
        return int(store.storage.db.execute("SELECT count(*) FROM jobs").fetchone()[0])
    finally:
        store.close()


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, max=50)] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, dense or keyword.")] = "hybrid",
    path_prefix: Annotated[str | None, typer.Option(help="Only paths starting with this.")] = None,
    file_type: Annotated[
        list[str] | None, typer.Option("--file-type", "-t", help="Only this type (repeatable).")
    ] = None,
    rerank: Annotated[
        bool, typer.Option("--rerank", help="Rerank a larger candidate pool first.")
    ] = False,
    as_json: AsJson = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Search the index (hybrid by default) and print the best passages."""
    if mode not in ("hybrid", "dense", "keyword"):
        raise fail(f"unknown mode {mode!r}: use hybrid, dense or keyword", 2)
    if not query.strip():
        raise fail("the query is empty", 2)
    index = open_watched(
        config, log_level, watch=watch, data_dir=data_dir, chroma_url=chroma_url,
        embedding_model=embedding_model,
    )  # fmt: skip
    status = index.status()
    empty = status.documents == 0
    under_way = status.under_way()  # a server is indexing the folders: results may be partial
    hits: list[Hit] = []
    took_ms = 0.0
    if not empty:  # an empty index needs no model loaded to find nothing
        try:
            with output.status_note(
                "searching" if index.embedder_loaded else "loading the embedding model to search"
            ):
                hits, took_ms = index.search(
                    query, top_k=top_k, mode=mode, path_prefix=path_prefix, file_types=file_type,  # type: ignore[arg-type]
                    rerank=rerank,
                )  # fmt: skip
        except LlmEngError as exc:
            raise fail(str(exc)) from exc
    if as_json:
        found = {"results": [asdict(h) for h in hits], "took_ms": took_ms, "indexing": under_way}
        typer.echo(json.dumps(found, indent=2))
    elif not hits and under_way:
        typer.echo("no results yet")
    elif empty:
        typer.echo("no results")
    else:
        output.print_hits(hits, took_ms)
    if under_way:
        writer = f" (llm-eng, pid {status.writer_pid})" if status.writer_pid else ""
        typer.echo(
            f"note: {under_way}{writer}, so results may be incomplete; search again when it is done",
            err=True,
        )
    elif empty:
        typer.echo(
            f"note: nothing is indexed in {index.settings.data_dir} yet: index a folder with "
            "`llm-eng ingest FOLDER` (or add --watch FOLDER)",
            err=True,
        )
    if empty:
        raise typer.Exit(1)


@app.command()
def status(
    as_json: AsJson = False,
    watch: Watch = None,
    data_dir: DataDir = None,
    config: Config = None,
    chroma_url: ChromaUrl = None,
    embedding_model: EmbeddingModel = None,
    log_level: LogLevel = None,
) -> None:
    """Show what is indexed, what failed and why, and where the data lives."""
    index = open_watched(
        config, log_level, watch=watch, data_dir=data_dir, chroma_url=chroma_url,
        embedding_model=embedding_model,
    )  # fmt: skip
    info = index.status()
    if as_json:
        typer.echo(json.dumps(asdict(info), indent=2, default=str))
        return
    output.print_status(info)
