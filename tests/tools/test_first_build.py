"""Searching while the first build runs: search_docs, the dashboard's search page and
`llm-eng search` say that indexing is under way and how far it is, never "nothing found";
the overview lists each file the build adds, even one whose own time is years old.

The build is held at its first embedding batch by an embedding server stub (the
``embedding_url`` seam) that answers queries at once and documents only when the test says.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from llm_engineering.dashboard import create_dashboard
from llm_engineering.server.app import create_server
from tests.index_store.http_stub import http_stub
from tests.index_store.ingest.test_full_disk import new_files
from tests.index_store.models.test_remote_embedder import embeddings
from tests.server.helpers import call, wait_for_status
from tests.test_cli import run

pytestmark = pytest.mark.anyio

FILES = 10


async def test_while_the_first_build_runs_every_search_says_how_far_it_is_and_the_overview_follows(
    settings_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    new_files(folder, FILES)
    release = threading.Event()

    def held_documents(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        if "burrow" in " ".join(body["input"]):  # documents wait; queries are answered
            release.wait(120)
        return embeddings(path, body)

    with http_stub(held_documents) as stub:
        settings = settings_factory(watch=[folder], embedding_url=stub.url)
        dashboard = create_dashboard(settings)
        web = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=dashboard.app, client=("127.0.0.1", 123)),
            base_url="http://127.0.0.1:8765",
        )
        try:
            async with Client(create_server(settings, on_open=dashboard.attach)) as client:
                await wait_for_status(client, lambda status: status["pending"] == FILES)

                found = await call(client, "search_docs", query="quokka3 colony")
                assert found["results"] == []
                assert found["index"]["building"] is True
                assert found["index"]["note"] == f"indexing is under way: 0 of {FILES} files done"
                page = (await web.get("/search", params={"q": "quokka3 colony"})).text
                assert f"Indexing is under way: 0 of {FILES} files done" in page
                assert "Nothing found" not in page
                cli = run("search", "quokka3 colony", "--data-dir", str(settings.data_dir))
                assert cli.stdout.strip() == "no results yet", cli.stdout + cli.stderr
                assert f"note: indexing is under way: 0 of {FILES} files done" in cli.stderr
                shown = run("status", "--data-dir", str(settings.data_dir)).stdout
                assert f"indexing        indexing is under way: 0 of {FILES} files done" in shown

                late = folder / "unpacked-from-2001.md"  # kept its own time, as an archive does
                late.write_text("# Unpacked\n\nThe okapi grazes by the river.\n")
                os.utime(late, (1e9, 1e9))
                await wait_for_status(client, lambda status: status["pending"] == FILES + 1)
                release.set()
                await wait_for_status(
                    client,
                    lambda status: status["documents"] == FILES + 1 and not status["building"],
                )

                found = await call(client, "search_docs", query="quokka3 colony")
                assert found["results"][0]["rel_path"] == "field-note-03.md"
                assert found["index"]["building"] is False and found["index"]["note"] is None
                page = (await web.get("/search", params={"q": "quokka3 colony"})).text
                assert "field-note-03.md" in page and "under way" not in page
                overview = (await web.get("/")).text
                assert "unpacked-from-2001.md" in overview and "Up to date" in overview
        finally:
            release.set()
            await web.aclose()
