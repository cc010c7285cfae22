"""Fine-tuning jobs over MCP that outlive their server, and cancelling one, with real parts: the
packaged model trains with QLoRA on the CPU in a worker process (the default hyperparameters are
proven in test_default_training.py)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.adapters.fictional import fact_records
from tests.adapters.trained import wait_for_job
from tests.conftest import LLM_ENG, free_port
from tests.server.helpers import call, error_of, running

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


def serve_http(data_dir: Path, port: int) -> list[str]:
    return [LLM_ENG, "serve", "--http", "--port", str(port), "--data-dir", str(data_dir)]


@pytest.mark.timeout(2400)
async def test_a_job_survives_a_killed_server_and_a_cancelled_job_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # No answer check, kept check or replay (the defaults' are proven in
    # test_default_training.py).
    resumable = {
        "learning_rate": 1e-3, "max_steps": 6, "checkpoint_every": 2, "eval_max_answers": 0,
        "replay_examples": 0, "kept_prompts": 0,
    }  # fmt: skip
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with running(serve_http(data_dir, port), ready_url=url) as server:
        async with Client(url) as client:
            started = await call(
                client, "start_qlora_job", adapter_name="resumed", records=fact_records(16),
                hyperparameters=resumable,
            )  # fmt: skip
            job_id = started["job_id"]
            await wait_for_job(client, job_id, lambda job: job["step"] >= 3, timeout=600)
            events = (data_dir / "jobs" / job_id / "events.jsonl").read_text().splitlines()
            [worker] = [json.loads(e)["pid"] for e in events if '"worker"' in e]
            # Below the server's priority (train_nice = 10): searches and answers come first.
            assert (
                os.getpriority(os.PRIO_PROCESS, worker)
                == os.getpriority(os.PRIO_PROCESS, server.pid) + 10
            )
        server.kill()  # kill -9: no chance to stop the worker
        server.wait()
    folder = data_dir / "jobs" / job_id
    deadline = time.monotonic() + 300
    while not (folder / "result.json").is_file():  # the orphaned worker saves and exits
        # result.json is written to a temporary name and renamed: once it exists it is whole
        assert time.monotonic() < deadline, (
            "no result.json: the worker kept running 300 s without its server"
        )
        await anyio.sleep(0.2)
    stopped = json.loads((folder / "result.json").read_text())
    assert stopped["status"] == "interrupted" and stopped["step"] >= 3

    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    with running(serve_http(data_dir, port), ready_url=url):
        async with Client(url) as client:
            job = await wait_for_job(client, job_id)
            assert job["status"] == "succeeded" and job["attempts"] == 2, job
            assert job["adapter"] == "resumed@1"
            events = [
                json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()
            ]
            [resumed] = [e for e in events if e["event"] == "resumed"]
            assert resumed["step"] >= 2, "it went on from a checkpoint, not from the start"
            steps = [e["step"] for e in events if e["event"] == "step"]
            assert steps[-1] == 6 and len(steps) < 6 + stopped["step"]

            long = await call(
                client, "start_qlora_job", adapter_name="cancelled", records=fact_records(16),
                hyperparameters={"max_steps": 500},
            )  # fmt: skip
            await wait_for_job(client, long["job_id"], lambda job: job["step"] >= 1, timeout=600)
            await call(client, "cancel_job", job_id=long["job_id"])
            job = await wait_for_job(client, long["job_id"], timeout=600)
            assert job["status"] == "cancelled" and job["step"] < 500 and job["adapter"] is None
            adapters = (await call(client, "list_adapters"))["adapters"]
            assert [a["adapter"] for a in adapters] == ["resumed@1"]
            message = await error_of(client, "cancel_job", job_id=long["job_id"])
            assert "already ended (cancelled)" in message
