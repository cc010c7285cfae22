"""``llm-eng ingest``, ``search`` and ``status``: the index from the command line."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_engineering.cli.options import INDEX_FLAGS, AsJson, fail, open_index, with_settings
from llm_engineering.cli.output import print_hits, print_report, print_status
from llm_engineering.cli.progress import file_progress, status_note
from llm_engineering.cli.remote import Verbose, from_server, served
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings
    from llm_engineering.index_store.ingest.report import IngestReport
    from llm_engineering.index_store.query.search import Hit
    from llm_engineering.index_store.service import IndexService
    from llm_engineering.index_store.status import IndexStatus

__all__ = ["index_watched", "ingest", "open_watched", "search", "status"]


def _ingest(index: IndexService, targets: list[Path], retry_failed: bool = True) -> IngestReport:
    with file_progress(chunks=lambda: index.status().chunks) as progress:
        index.models.on_load = lambda name: progress.note(f"loading the embedding model {name}")
        try:
            return index.ingest(targets, progress, retry_failed=retry_failed)
        except KeyboardInterrupt:
            left = max(progress.total - progress.done, 0)
            typer.echo(
                f"\ninterrupted: {progress.done:,} files indexed in this run, {left:,} not yet; "
                "what is indexed is kept, and the same `llm-eng ingest` goes on from there",
                err=True,
            )
            raise typer.Exit(130) from None
        finally:
            index.models.on_load = None


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


def refuse_missing(paths: list[Path]) -> None:
    """Fail on a path that does not exist before anything is opened: a typo makes nothing
    in the data folder."""
    for path in paths:
        if not os.path.lexists(path):
            raise fail(f"cannot ingest {path}: no such file or folder")


def open_watched(settings: Settings) -> IndexService:
    """The index, with the --watch folders indexed first (what search, status, show, ls read)."""
    refuse_missing(list(settings.watch))
    index = open_index(settings)
    try:
        index_watched(index)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    return index


@with_settings(*INDEX_FLAGS, log_level="ERROR")
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
    *,
    settings: Settings,
) -> None:
    """Index files and folders: new and changed files are embedded, deleted ones removed."""
    refuse_missing([*paths, *settings.watch])
    index = open_index(settings, rebuild=rebuild)
    if index.damaged_file is not None:
        typer.echo(
            f"note: {settings.state_path} was damaged and is kept as {index.damaged_file}; "
            "the index is made again; training jobs restored from their folders: "
            f"{_jobs_kept(settings)} (adapters are kept as they were)",
            err=True,
        )
    try:
        report = _ingest(index, [*paths, *settings.watch])
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    print_report(report)
    if report.failed:
        raise typer.Exit(3)


def _jobs_kept(settings: Settings) -> int:
    """Open the jobs now, which brings the jobs table back from the job folders."""
    from llm_engineering.adapters.service import TrainingService

    training = TrainingService(settings)
    try:
        return training.job_count()
    finally:
        training.close()


@with_settings(*INDEX_FLAGS, log_level="ERROR")
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
    verbose: Verbose = False,
    *,
    settings: Settings,
) -> None:
    """Search the index (hybrid by default) and print the best passages."""
    if mode not in ("hybrid", "dense", "keyword"):
        raise fail(f"unknown mode {mode!r}: use hybrid, dense or keyword", 2)
    if not query.strip():
        raise fail("the query is empty", 2)
    request: dict[str, Any] = {
        "query": query, "top_k": top_k, "mode": mode, "path_prefix": path_prefix,
        "file_types": file_type, "rerank": rerank,
    }  # fmt: skip
    remote = from_server(settings, "search", request, verbose=verbose)
    if remote is not None:
        from llm_engineering.index_store.query.search import Hit
        from llm_engineering.index_store.status import IndexStatus
        from llm_engineering.local.wire import revive

        status = revive(IndexStatus, remote["status"])
        hits = [revive(Hit, hit) for hit in remote["hits"]]
        took_ms = float(remote["took_ms"])
    else:
        status, hits, took_ms = _search_here(settings, request)
    empty = status.documents == 0
    under_way = status.under_way()  # a server is indexing the folders: results may be partial
    if as_json:
        found = {"results": [asdict(h) for h in hits], "took_ms": took_ms, "indexing": under_way}
        typer.echo(json.dumps(found, indent=2))
    elif not hits and under_way:
        typer.echo("no results yet")
    elif empty:
        typer.echo("no results")
    else:
        print_hits(hits, took_ms)
    if under_way:
        writer = f" (llm-eng, pid {status.writer_pid})" if status.writer_pid else ""
        typer.echo(
            f"note: {under_way}{writer}, so results may be incomplete; search again when it is done",
            err=True,
        )
    elif empty:
        typer.echo(
            f"note: nothing is indexed in {settings.data_dir} yet: index a folder with "
            "`llm-eng ingest FOLDER` (or add --watch FOLDER)",
            err=True,
        )
    if empty:
        raise typer.Exit(1)


def _search_here(
    settings: Settings, request: dict[str, Any]
) -> tuple[IndexStatus, list[Hit], float]:
    """The search in this process: the index opened, --watch folders indexed, the model loaded."""
    index = open_watched(settings)
    status = index.status()
    if not status.documents:  # an empty index needs no model loaded to find nothing
        return status, [], 0.0
    try:
        with status_note(
            "searching" if index.embedder_loaded else "loading the embedding model to search"
        ):
            hits, took_ms = index.search(
                request["query"], top_k=request["top_k"], mode=request["mode"],
                path_prefix=request["path_prefix"], file_types=request["file_types"],
                rerank=request["rerank"],
            )  # fmt: skip
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    return status, hits, took_ms


@with_settings(*INDEX_FLAGS, log_level="ERROR")
def status(as_json: AsJson = False, verbose: Verbose = False, *, settings: Settings) -> None:
    """Show what is indexed, what failed and why, and where the data lives."""
    from llm_engineering.index_store.status import IndexStatus
    from llm_engineering.local.wire import to_wire

    info = served(
        settings, "status", {}, IndexStatus, lambda: open_watched(settings).status(), verbose
    )
    if as_json:
        typer.echo(json.dumps(to_wire(info), indent=2))
        return
    print_status(info)
