"""Hostile files in a watched folder, end to end over stdio with the real server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import LLM_ENG, OUTSIDE_SECRETS, link_outside, server_env
from tests.index_store.ingest.test_hostile_files import nested_html, write_raw
from tests.server.helpers import (
    PeakMemory,
    call,
    error_of,
    indexed,
    names,
    search,
    stdio_client,
    wait_for_hit,
    wait_for_status,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_links_out_of_the_folder_are_never_searched_or_served_and_status_says_why(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "welcome.md").write_text("# Welcome\n\nThe greenhouse tomato rota.\n")
    link_outside(folder, tmp_path / "outside")

    async with stdio_client(tmp_path / "data", "--watch", str(folder)) as client:
        status = await wait_for_status(client, indexed(3))
        failed = {Path(f["path"]).name: f["error"] for f in status["failed"]}
        assert set(failed) == {"passwd.txt", "keys"}, status["failed"]
        assert all("outside the watched folders" in reason for reason in failed.values())
        assert status["documents"] == 1

        for query in OUTSIDE_SECRETS:
            for mode in ("keyword", "hybrid"):
                texts = [hit["text"] for hit in await search(client, query, mode=mode, top_k=10)]
                assert not any(secret in t for t in texts for secret in OUTSIDE_SECRETS), texts

        for path in (folder / "passwd.txt", folder / "keys" / "notes.md"):
            result = await client.call_tool("get_document", {"path": str(path)})
            assert result.is_error, result.content
            message = result.content[0].text  # type: ignore[union-attr]
            assert "outside the watched folders" in message, message
            assert not any(secret in message for secret in OUTSIDE_SECRETS), message


async def test_names_that_are_not_utf8_are_failed_entries_in_every_tool_and_never_stop_indexing(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "welcome.md").write_text("# Welcome\n\nThe greenhouse tomato rota.\n")
    early = write_raw(folder, b"bad-\xff.md")
    shown = [str(folder / "bad-\\xff.md"), str(folder / "late-\\xfe.md")]
    data = tmp_path / "data"

    async with stdio_client(data, "--watch", str(folder)) as client:
        status = await wait_for_status(client, indexed(2))
        assert [f["path"] for f in status["failed"]] == shown[:1], status
        assert "file name is not valid UTF-8" in status["failed"][0]["error"]
        # One more dropped while the server runs, and a good file after it.
        late = write_raw(folder, b"late-\xfe.md")
        (folder / "good.md").write_text("# Good\n\nThe cormorant census of the estuary.\n")
        await wait_for_hit(client, "cormorant census", "good.md", mode="keyword")
        status = await wait_for_status(client, lambda s: len(s["failed"]) == 2)
        assert status["error"] is None and status["documents"] == 2
        assert status["watching"] and status["watch_problems"] == []

        listing = await call(client, "list_documents")
        entries = {d["path"]: d["status"] for d in listing["documents"]}
        assert entries == {
            shown[0]: "failed", shown[1]: "failed",
            str(folder / "good.md"): "indexed", str(folder / "welcome.md"): "indexed",
        }  # fmt: skip
        report = await call(client, "ingest")
        assert sorted(f["path"] for f in report["failed"]) == shown
        assert "not valid UTF-8" in await error_of(client, "get_document", path=shown[0])
        assert names(await search(client, "greenhouse tomato", mode="keyword")) == ["welcome.md"]

        os.unlink(early)  # deleting one takes its entry away
        status = await wait_for_status(client, lambda s: len(s["failed"]) == 1)
        assert [f["path"] for f in status["failed"]] == shown[1:]
        assert status["error"] is None

    # The command line reads the same folder and index as a writer of its own.
    result = subprocess.run(
        [LLM_ENG, "search", "cormorant", "--mode", "keyword", "--data-dir", str(data),
         "--watch", str(folder)],
        env=server_env(), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "good.md" in result.stdout
    os.unlink(late)


# Resident memory of the server process (VmRSS): 0.7 GiB with the embedding model loaded
# (726 MiB measured at the peak of the runaway-parser test). Parsing happens in worker
# processes, so a hostile file must not move it; a 20 MB file adds its text, its chunks
# and a step's vectors while they wait to be committed (1,012 MiB measured).
SERVER_RSS_MIB = 1024
SERVER_RSS_BIG_FILE_MIB = 1536


async def test_a_file_whose_parser_never_finishes_is_stopped_while_one_dropped_with_it_is_searchable(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "welcome.md").write_text("# Welcome\n\nThe greenhouse tomato rota.\n")
    limits = {
        # No depth limit, so BeautifulSoup's quadratic tree edits on 100,000 nested levels
        # run for hours: only the parse timeout ends them.
        "LLM_ENG_MAX_HTML_DEPTH": "10000000",
        # Thirty seconds, not the default 60, burns a core for less; not ten: the file dropped
        # with it needs a second worker started (its imports), parsed and embedded before the
        # runaway is stopped, and on a busy machine that took over ten seconds.
        "LLM_ENG_PARSE_TIMEOUT_S": "30",
        "LLM_ENG_PARSE_MEMORY_MB": "1024",
    }
    async with stdio_client(tmp_path / "data", "--watch", str(folder), **limits) as client:
        status = await wait_for_status(client, indexed(1))
        with PeakMemory(status["writer_pid"]) as memory:
            (folder / "deep.html").write_bytes(nested_html(100_000))  # 1.1 MB
            (folder / "good.md").write_text("# Good\n\nThe cormorant census of the estuary.\n")
            await wait_for_hit(client, "cormorant census", "good.md", mode="keyword")
            status = await call(client, "index_status")
            assert "deep.html" not in names(status["failed"]), "still being parsed"
            assert status["pending"] >= 1

            status = await wait_for_status(
                client, lambda s: "deep.html" in names(s["failed"]), timeout=600
            )
        error = next(f["error"] for f in status["failed"] if f["path"].endswith("deep.html"))
        assert "longer than 30 s" in error and "(parse_timeout_s)" in error
        assert await search(client, "deep text", mode="keyword") == []
        assert status["documents"] == 2
    print(f"server peak RSS {memory.process_mib:.0f} MiB, parser {memory.child_mib:.0f} MiB")
    assert 0 < memory.process_mib < SERVER_RSS_MIB, memory.process_mib
    assert 0 < memory.child_mib <= 1024, memory.child_mib  # parse_memory_mb caps the parser


async def test_a_20_mb_text_file_is_indexed_in_a_stream_while_one_dropped_with_it_is_searchable(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "welcome.md").write_text("# Welcome\n\nThe greenhouse tomato rota.\n")
    paragraph = (
        "The harbour master logs every vessel that enters the sound before dawn. "
        "Each entry notes the tide, the wind and the name of the pilot on duty.\n\n"
    )
    repeats = 20 * 1048576 // len(paragraph)
    secret = "The quartermaster hid the zanzibarite ledger under the floor.\n\n"
    body = paragraph * (repeats - 20) + secret + paragraph * 20
    # Large chunks: fewer vectors to write, the same streaming path (most chunks repeat,
    # so few are embedded; the whole text is still read, tokenized and stored).
    async with stdio_client(
        tmp_path / "data", "--watch", str(folder), LLM_ENG_CHUNK_SIZE="2048"
    ) as client:
        status = await wait_for_status(client, indexed(1))
        with PeakMemory(status["writer_pid"]) as memory:
            (folder / "big.txt").write_text(body)
            (folder / "good.md").write_text("# Good\n\nThe cormorant census of the estuary.\n")
            await wait_for_hit(client, "cormorant census", "good.md", mode="keyword")
            status = await call(client, "index_status")
            assert status["documents"] == 2, "big.txt is still being read or embedded"

            status = await wait_for_status(client, indexed(3), timeout=1200)
            assert status["failed"] == [] and status["documents"] == 3
        hits = await wait_for_hit(client, "zanzibarite", "big.txt", mode="keyword")
        lines = body.count("\n")
        assert hits[0]["start_line"] > lines * 0.9, (hits[0]["start_line"], lines)
        assert "zanzibarite ledger" in hits[0]["text"]
    print(f"server peak RSS {memory.process_mib:.0f} MiB, parser {memory.child_mib:.0f} MiB")
    assert 0 < memory.process_mib < SERVER_RSS_BIG_FILE_MIB, memory.process_mib
    assert 0 < memory.child_mib <= 2048, memory.child_mib  # parse_memory_mb's default
