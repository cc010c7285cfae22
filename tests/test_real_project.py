"""Real projects' documents (Flask's reST and source, Black's Markdown, a Sphinx HTML page, a
PDF): every hit says where it is, as lines or a page and lines, in the search tool, in
``llm-eng search --json`` and in its printed results, and those lines hold the passage."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import write_pdf

REAL_PROJECT = Path(__file__).parent / "data" / "real-project"
SURVEY = [
    "Coastal survey 2024. This report covers the northern shore.",
    "Findings.\nThe cormorant colony on Skellig ridge doubled since the last count.\n"
    "Nesting moved to the western cliffs after the storm season.",
]
# One query per type, each searched within its type only: every type gets hits.
QUERIES = {
    "html": "functools partial wraps decorator",
    "rst": "register a blueprint with a url prefix",
    "md": "magic trailing comma",
    "py": "load configuration from a python file",
    "pdf": "cormorant colony nesting cliffs",
}


@dataclass
class Indexed:
    folder: Path
    data_dir: Path


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder, parse_pool) -> Iterator[Indexed]:  # type: ignore[no-untyped-def]
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    root = tmp_path_factory.mktemp("real-project")
    folder = root / "docs"
    shutil.copytree(REAL_PROJECT, folder)
    write_pdf(folder / "survey.pdf", SURVEY)
    settings = load_settings(data_dir=root / "data")
    service = IndexService(settings, embedder=embedder, parsers=parse_pool)
    try:
        report = service.ingest([folder])
    finally:
        service.close()
    assert not report.failed, report.failed
    yield Indexed(folder, root / "data")


def words(text: str) -> str:
    return " ".join(text.split())


def place(hit: dict[str, Any]) -> str:
    """Where a hit says it is, as the CLI prints it."""
    lines = f"lines {hit['start_line']}-{hit['end_line']}"
    return f"p. {hit['page']}, {lines}" if hit["page"] else lines


def assert_located(hit: dict[str, Any], file_type: str) -> None:
    assert hit["file_type"] == file_type, hit
    assert hit["start_line"] is not None and hit["end_line"] >= hit["start_line"], hit
    assert (hit["page"] is not None) == (file_type == "pdf"), hit


@pytest.mark.anyio
async def test_every_hit_of_every_type_carries_its_lines_in_the_search_tool(
    indexed: Indexed,
) -> None:
    from mcp import Client

    from llm_engineering.config import load_settings
    from llm_engineering.server.app import create_server
    from tests.server.helpers import call, search

    settings = load_settings(data_dir=indexed.data_dir, watch=[indexed.folder])
    async with Client(create_server(settings, watch=False)) as client:
        for file_type, query in QUERIES.items():
            hits = await search(client, query, top_k=3, file_types=[file_type])
            assert hits, file_type
            for hit in hits:
                assert_located(hit, file_type)
                # get_document numbers lines as the hit does: those lines hold the passage.
                opened = await call(client, "get_document", chunk_id=hit["chunk_id"])
                assert (opened["chunk_start_line"], opened["chunk_end_line"]) == (
                    hit["start_line"],
                    hit["end_line"],
                ), hit
                span = {"start_line": hit["start_line"], "end_line": hit["end_line"]}
                if hit["page"]:
                    span["page"] = hit["page"]
                served = words(
                    (await call(client, "get_document", path=hit["path"], **span))["text"]
                )
                # reST headings are chunked as Markdown ones but served as written.
                body = [words(line) for line in hit["text"].split("\n") if line[:1] != "#"]
                assert all(line in served for line in body), (hit, served)


def test_every_hit_of_every_type_carries_its_lines_in_llm_eng_search(indexed: Indexed) -> None:
    from llm_engineering.cli.app import app

    runner = CliRunner()
    for file_type, query in QUERIES.items():
        args = ["search", query, "-k", "3", "-t", file_type, "--data-dir", str(indexed.data_dir)]
        found = runner.invoke(app, [*args, "--json"])
        assert found.exit_code == 0, found.output
        hits = json.loads(found.stdout)["results"]
        assert hits, file_type
        for hit in hits:
            assert_located(hit, file_type)
        printed = runner.invoke(app, args)
        assert printed.exit_code == 0, printed.output
        heads = [line for line in printed.stdout.splitlines() if re.match(r"\d+\. /", line)]
        assert len(heads) == len(hits), printed.stdout
        for rank, (head, hit) in enumerate(zip(heads, hits, strict=True), start=1):
            assert head.startswith(f"{rank}. {hit['path']} {place(hit)}  "), head


# Questions a user of Flask asks about its functions, and the definition that answers each.
ABOUT_FUNCTIONS = {
    "How do I register a function to run before each request?": (
        "flask.sansio.scaffold.Scaffold.before_request"
    ),
    "What does the errorhandler decorator do?": "flask.sansio.scaffold.Scaffold.errorhandler",
    "How do I send a file from a directory safely?": "flask.helpers.send_from_directory",
    "What does get_root_path return?": "flask.helpers.get_root_path",
    "How do I load the config from a file named by an environment variable?": (
        "flask.config.Config.from_envvar"
    ),
}


def test_questions_about_functions_find_whole_definitions_first(
    indexed: Indexed, embedder, parse_pool
) -> None:  # type: ignore[no-untyped-def]
    from llm_engineering.config import load_settings
    from llm_engineering.index_store.service import IndexService

    service = IndexService(
        load_settings(data_dir=indexed.data_dir), embedder=embedder, parsers=parse_pool
    )
    try:
        for question, name in ABOUT_FUNCTIONS.items():
            hits, _ = service.search(question, top_k=3)
            top = hits[0]
            assert top.heading == name, (question, [h.heading for h in hits])
            # the definition itself, from its decorators or signature, not a line of it
            assert re.search(rf"(@\w+\s+)?(async )?def {name.rsplit('.', 1)[-1]}\(", top.text)
            assert len(top.text.strip()) > 200 and top.end_line - top.start_line >= 8
    finally:
        service.close()
