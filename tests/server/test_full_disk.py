"""A server whose data folder's disk fills up (a real tmpfs, filled to the last byte): it says
so in ``index_status`` and on the dashboard, refuses ``ingest`` at once, goes on searching,
resumes by itself once space is freed, and stops promptly on SIGTERM while writes fail."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from mcp import Client

from tests.conftest import LLM_ENG, free_port
from tests.full_disk import PHRASE, fill, small_disk
from tests.index_store.ingest.test_full_disk import new_files
from tests.server.helpers import call, error_of, indexed, running, search, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def paused(status: dict) -> bool:  # type: ignore[type-arg]
    return PHRASE in (status["error"] or "")


async def test_a_full_disk_pauses_indexing_which_resumes_by_itself_and_sigterm_still_stops_it(
    tmp_path: Path,
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    new_files(docs, 4)
    with small_disk(tmp_path / "data") as data_dir:
        port = free_port()
        url = f"http://127.0.0.1:{port}/mcp"
        command = [
            *(LLM_ENG, "serve", "--http", "--port", str(port)),
            *("--data-dir", str(data_dir), "--watch", str(docs)),
        ]
        with running(command, ready_url=url) as server:
            async with Client(url) as client:
                await wait_for_status(client, indexed(4))
                ballast = fill(data_dir)
                new_files(docs, 30, start=4)

                status = await wait_for_status(client, paused)
                assert status["documents"] + len(status["failed"]) + status["pending"] >= 34
                assert all(PHRASE in failed["error"] for failed in status["failed"])
                assert PHRASE in await error_of(client, "ingest")
                overview = httpx.get(f"http://127.0.0.1:{port}/", timeout=60).text
                assert "no space left on the data folder" in overview
                assert (await search(client, "quokka2 colony", mode="keyword"))[0]["path"] == str(
                    docs / "field-note-02.md"
                )

                ballast.unlink()
                await wait_for_status(
                    client, lambda status: status["documents"] == 34 and not status["error"]
                )
                assert (await search(client, "quokka33 colony"))[0]["path"] == str(
                    docs / "field-note-33.md"
                )

                fill(data_dir)
                new_files(docs, 3, start=34)
                await wait_for_status(client, paused)
                assert (await call(client, "index_status"))["documents"] == 34
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    "the server did not stop on SIGTERM while writes failed"
                ) from None
