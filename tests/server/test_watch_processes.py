"""Process-level guarantees of the watched folder: start-up, crashes, two servers on one index."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.conftest import LLM_ENG, server_env
from tests.server.helpers import names, search, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

# Small chunks: several embedding batches in a few hundred files, quickly.
SMALL_CHUNKS = {"LLM_ENG_CHUNK_SIZE": "48", "LLM_ENG_CHUNK_OVERLAP": "8"}


def many_files(folder: Path, count: int, words: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        body = " ".join(f"w{i}n{j}" for j in range(words))
        (folder / f"doc{i:04}.md").write_text(f"# Document {i}\n\n{body}\n")
    return folder


def clean_index_ids(folder: Path, data_dir: Path) -> set[str]:
    """Chunk ids of a fresh, uninterrupted index of ``folder`` (built by the CLI)."""
    result = subprocess.run(
        [LLM_ENG, "ingest", str(folder), "--data-dir", str(data_dir)],
        env=server_env(**SMALL_CHUNKS),
        capture_output=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return index_ids(data_dir)


def index_ids(data_dir: Path) -> set[str]:
    """Chunk ids in ``state.sqlite``; empty while the writer has not made its schema yet.

    One read transaction, with a long busy timeout: it may run while a server writes.
    """
    import sqlite3

    path = data_dir / "state.sqlite"
    if not path.exists():
        return set()
    db = sqlite3.connect(path, timeout=120)
    try:
        db.execute("BEGIN")
        made = db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='chunks'")
        rows = db.execute("SELECT id FROM chunks").fetchall() if made.fetchone() else []
        db.execute("COMMIT")
    finally:
        db.close()
    ids = [row[0] for row in rows]
    assert len(ids) == len(set(ids))
    return set(ids)


def chroma_ids(data_dir: Path) -> list[str]:
    code = (
        "import sys, json, chromadb;"
        f"c = chromadb.PersistentClient(path={str(data_dir / 'chroma')!r}).get_collection('documents');"
        "print(json.dumps(c.get(include=[])['ids']))"
    )
    import json
    import sys

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=server_env()
    )
    return list(json.loads(result.stdout))


async def test_the_server_answers_tools_and_searches_while_a_big_folder_is_still_indexing(
    tmp_path: Path,
) -> None:
    # ~15,000 small chunks: indexing them takes far longer than answering, on any machine.
    # How many seconds the first answer takes is measured in benchmarks/watch_latency.py.
    total = 2000
    folder = many_files(tmp_path / "big", total, words=60)
    async with stdio_client(tmp_path / "data", "--watch", str(folder), **SMALL_CHUNKS) as client:
        tools = await client.list_tools()
        assert {t.name for t in tools.tools} >= {"search_docs", "index_status"}
        result = await client.call_tool("search_docs", {"query": "document", "mode": "keyword"})
        assert not result.is_error, result.content
        assert result.structured_content is not None
        # both answers came back before the folder was indexed: it is still being indexed now
        status = await wait_for_status(
            client, lambda s: s["pending"] > 0 or s["documents"] == total
        )
        assert status["pending"] > 0 and status["documents"] < total, status


async def test_kill_9_during_a_bulk_index_is_repaired_at_the_next_start(tmp_path: Path) -> None:
    folder = many_files(tmp_path / "bulk", 120, words=60)  # 818 chunks: two steps or more
    data_dir = tmp_path / "data"
    process = subprocess.Popen(
        [LLM_ENG, "serve", "--data-dir", str(data_dir), "--watch", str(folder)],
        env=server_env(**SMALL_CHUNKS),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # kill it once some files are in, well before all are
        deadline = time.monotonic() + 300
        # A step embeds at most 512 texts (pending.BATCH), so the one that passes 100 leaves
        # at least 200 of the 818 chunks to the restart, and the kill comes within 0.1 s.
        while len(index_ids(data_dir)) < 100:
            assert process.poll() is None, f"the server exited with {process.returncode}"
            assert time.monotonic() < deadline, "no 100 chunks were indexed within 300 s"
            await anyio.sleep(0.1)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    interrupted = index_ids(data_dir)
    assert len(interrupted) > 0

    async with stdio_client(data_dir, "--watch", str(folder), **SMALL_CHUNKS) as client:
        status = await wait_for_status(
            client, lambda s: s["documents"] == 120 and s["pending"] == 0
        )
        assert len(index_ids(data_dir)) > len(interrupted), "the restart had work left to do"
        assert status["failed"] == []
    repaired = index_ids(data_dir)
    assert repaired == clean_index_ids(folder, tmp_path / "clean")
    vectors = chroma_ids(data_dir)
    assert len(vectors) == len(set(vectors)) and set(vectors) == repaired


async def test_two_servers_share_one_index_with_one_writer_and_take_over(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "first.md").write_text("# First\n\nThe first file talks about ibises.\n")
    data_dir = tmp_path / "data"
    opened, release, closed = anyio.Event(), anyio.Event(), anyio.Event()
    box: dict[str, Client] = {}

    async def first_server() -> None:
        # its own task: a client's context must be left by the task that entered it
        async with stdio_client(data_dir, "--watch", str(folder)) as client:
            box["a"] = client
            opened.set()
            await release.wait()
        closed.set()

    async with anyio.create_task_group() as group:
        group.start_soon(first_server)
        await opened.wait()
        a = box["a"]
        await wait_for_status(a, lambda s: s["documents"] == 1 and s["pending"] == 0)
        async with stdio_client(data_dir, "--watch", str(folder)) as b:
            status_a = (await a.call_tool("index_status", {})).structured_content
            status_b = (await b.call_tool("index_status", {})).structured_content
            assert status_a["role"] == "writer" and status_b["role"] == "reader"
            assert (
                status_b["read_only"] is True and status_b["writer_pid"] == status_a["writer_pid"]
            )
            result = await b.call_tool("ingest", {})
            assert result.is_error and "another llm-eng process" in result.content[0].text

            # the writer indexes a new file; the reader finds it too
            (folder / "second.md").write_text(
                "# Second\n\nThe second file talks about flamingos.\n"
            )
            await wait_for_status(a, lambda s: s["documents"] == 2 and s["pending"] == 0)
            assert names(await search(b, "flamingos", mode="dense", top_k=1)) == ["second.md"]
            assert names(await search(b, "flamingos", mode="keyword")) == ["second.md"]

            release.set()  # the first server exits
            await closed.wait()
            # the second takes over: it becomes the writer and watches the folder itself
            await wait_for_status(b, lambda s: s["role"] == "writer" and s["watching"])
            (folder / "third.md").write_text("# Third\n\nThe third file talks about storks.\n")
            await wait_for_status(b, lambda s: s["documents"] == 3 and s["pending"] == 0)
            assert names(await search(b, "storks", mode="keyword")) == ["third.md"]
    ids = index_ids(data_dir)
    vectors = chroma_ids(data_dir)
    assert len(vectors) == len(set(vectors)) == len(ids) == 3 and set(vectors) == ids


def test_cli_ingest_refuses_while_a_server_writes(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\ntext\n")
    data_dir = tmp_path / "data"
    server = subprocess.Popen(
        [LLM_ENG, "serve", "--data-dir", str(data_dir), "--watch", str(folder)],
        env=server_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        lock = data_dir / "writer.lock"
        while not (lock.exists() and lock.read_text().strip()):
            assert server.poll() is None, f"the server exited with {server.returncode}"
            assert time.monotonic() < deadline, "the server wrote no pid to writer.lock in 180 s"
            time.sleep(0.05)
        result = subprocess.run(
            [LLM_ENG, "ingest", str(folder), "--data-dir", str(data_dir)],
            env=server_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 1
        assert f"pid {server.pid}" in result.stderr and "another llm-eng process" in result.stderr
    finally:
        os.kill(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
