"""``llm-eng show`` and ``llm-eng ls``: read an indexed document, list what is indexed."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_engineering.cli.index import open_watched
from llm_engineering.cli.options import AsJson, fail, with_settings
from llm_engineering.cli.output import document_footer, print_documents
from llm_engineering.cli.remote import Verbose, served
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.config import Settings

__all__ = ["ls", "show", "split_range"]

_FLAGS = ("watch", "data_dir", "log_level")
"""What reading the index takes: which folders, where the index is (no model is loaded)."""

_RANGE = re.compile(r"(?P<path>.+):(?P<start>[0-9]+)(?:-(?P<end>[0-9]+)?)?")


def split_range(target: str) -> tuple[str, int | None, int | None]:
    """``notes.md:10-20`` -> (``notes.md``, 10, 20); ``a.md:5`` -> lines 5 to the end."""
    match = _RANGE.fullmatch(target)
    if match is None:
        return target, None, None
    end = match.group("end")
    return match.group("path"), int(match.group("start")), int(end) if end else None


@with_settings(*_FLAGS, log_level="ERROR")
def show(
    target: Annotated[
        str | None,
        typer.Argument(
            help="PATH, PATH:FROM or PATH:FROM-TO (lines) of an indexed file (a path relative to "
            "here, or inside the first watched folder)."
        ),
    ] = None,
    chunk: Annotated[str | None, typer.Option(help="Open at a search hit's chunk id.")] = None,
    around: Annotated[
        int | None, typer.Option(min=0, help="With --chunk: lines on each side (default 10).")
    ] = None,
    page: Annotated[int | None, typer.Option(min=1, help="PDF page.")] = None,
    pages: Annotated[str | None, typer.Option(help="PDF pages, N-M.")] = None,
    max_chars: Annotated[int, typer.Option(min=100)] = 20_000,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    settings: Settings,
) -> None:
    """Print an indexed document's text (as indexed), or the lines or pages asked for."""
    if (target is None) == (chunk is None):
        raise fail("give a PATH[:FROM[-TO]] or --chunk ID", 2)
    path, start, end = split_range(target) if target else (None, None, None)
    if path is not None and not Path(path).is_absolute() and Path(path).exists():
        path = str(Path(path).absolute())  # as the shell meant it; else inside a watched folder
    request: dict[str, Any] = {
        "path": path, "chunk_id": chunk, "start_line": start, "end_line": end, "page": page,
        "pages": pages, "around": around, "max_chars": max_chars,
    }  # fmt: skip
    from llm_engineering.index_store.query.slices import DocumentSlice

    result = served(
        settings, "show", request, DocumentSlice,
        lambda: open_watched(settings).get_document(**request), verbose,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    typer.echo(result.text)
    document_footer(result)


@with_settings(*_FLAGS, log_level="ERROR")
def ls(
    path_prefix: Annotated[str | None, typer.Option(help="Only paths starting with this.")] = None,
    file_type: Annotated[
        list[str] | None, typer.Option("--file-type", "-t", help="Only this type (repeatable).")
    ] = None,
    status: Annotated[
        list[str] | None, typer.Option(help="indexed, pending or failed (repeatable).")
    ] = None,
    modified_after: Annotated[
        str | None, typer.Option(help="ISO 8601 date/time or epoch seconds.")
    ] = None,
    sort: Annotated[str, typer.Option(help="path or modified (newest first).")] = "path",
    limit: Annotated[int, typer.Option(min=1, max=500)] = 100,
    cursor: Annotated[str | None, typer.Option(help="Continue a listing.")] = None,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    settings: Settings,
) -> None:
    """List indexed, pending and failed documents."""
    from llm_engineering.index_store.query.listing import parse_time

    try:
        request: dict[str, Any] = {
            "path_prefix": path_prefix, "file_types": file_type, "status": status,
            "modified_after": parse_time(modified_after) if modified_after else None,
            "sort": sort, "limit": limit, "cursor": cursor,
        }  # fmt: skip
    except LlmEngError as exc:  # a modified_after it cannot read
        raise fail(str(exc)) from exc
    from llm_engineering.index_store.query.listing import DocumentPage

    page = served(
        settings, "ls", request, DocumentPage,
        lambda: open_watched(settings).list_documents(**request), verbose,
    )  # fmt: skip
    if as_json:
        typer.echo(json.dumps(asdict(page), indent=2))
        return
    print_documents(page, status)
