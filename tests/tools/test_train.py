"""Fine-tuning over MCP, end to end with real parts: the packaged model trains with QLoRA on the
CPU in a worker process, the adapter is registered, exported to GGUF and answers through llama.cpp."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from llm_engineering.generation.llamacpp import resolve_gguf
from llm_engineering.index_store.hashing import sha256_file
from tests.adapters.fictional import FACT_WORD, HELD_OUT, fact_records
from tests.conftest import LLM_ENG, describe, free_port, server_env
from tests.server.helpers import call, error_of, running, stdio_client, wait_for_status

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def wait_for_job(
    client: Client, job_id: str, done: Any = None, timeout: float = 1800
) -> dict[str, Any]:
    """Poll get_job until ``done(job)`` (default: the job has ended)."""
    ended = done or (lambda job: job["status"] not in ("validating", "queued", "running"))
    job: dict[str, Any] | None = None
    try:
        with anyio.fail_after(timeout):
            while True:
                job = await call(client, "get_job", job_id=job_id, wait_s=0 if done else 20)
                if ended(job):
                    return job
                await anyio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(
            f"job {job_id} never satisfied {describe(ended)} within {timeout} s; last: {job}"
        ) from None


SYSTEM = "You are the support assistant of a kitchenware shop. Answer in one sentence."


async def mentions_fact(client: Client, adapter: str | None) -> list[str]:
    answers = []
    for question in HELD_OUT:
        arguments: dict[str, Any] = {"question": question, "contexts": [], "max_tokens": 32}
        if adapter:
            arguments["adapter"] = adapter
        answer = await call(client, "answer_with_context", **arguments)
        assert answer["grounded"] is False and answer["adapter"] == (adapter and f"{adapter}@1")
        answers.append(answer["answer"])
    return answers


def hits(answers: list[str]) -> int:
    return sum(FACT_WORD in answer.lower() for answer in answers)


@pytest.mark.timeout(2400)
async def test_a_fact_taught_with_the_default_hyperparameters_is_stated_as_trained(
    tmp_path: Path,
) -> None:
    """No hyperparameters given: the job chooses a rate and steps that learn 40 examples on the
    135M base, holds some prompts out, reports an answer check that agrees with what the
    adapter then says over MCP, and the adapter answers in the format it was trained in, with
    and without a system prompt in its data."""
    docs = tmp_path / "docs"
    dataset = write_jsonl(docs / "training" / "zorblax.jsonl", fact_records(40))
    with_system = [
        {"messages": [{"role": "system", "content": SYSTEM}, *record["messages"]]}
        for record in fact_records(40)
    ]
    outside = write_jsonl(tmp_path / "elsewhere.jsonl", fact_records(40))
    (docs / "office.md").write_text("# Office\n\nThe office closes at 6 pm on Fridays.\n")
    data_dir = tmp_path / "data"
    async with stdio_client(data_dir, "--watch", str(docs)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"start_qlora_job", "get_job", "list_jobs", "cancel_job", "list_adapters"} <= tools
        await wait_for_status(client, lambda status: status["documents"] >= 1)

        message = await error_of(
            client, "start_qlora_job", adapter_name="z", dataset_path=str(outside)
        )
        assert "outside the allowed folders" in message and str(docs) in message
        bad = [*fact_records(9), {"messages": [{"role": "user", "content": "only a question"}]}]
        message = await error_of(client, "start_qlora_job", adapter_name="z", records=bad)
        assert "line 10: the last message must be the assistant's" in message

        started = await call(
            client, "start_qlora_job", adapter_name="zorblax", dataset_path=str(dataset)
        )
        assert started["status"] == "queued" and started["examples"] == 40
        assert started["auto"] == ["learning_rate", "max_steps"] and started["eval_examples"] >= 2
        assert started["hyperparameters"]["r"] == 16 and started["runs_here"] is True
        system_job = await call(
            client, "start_qlora_job", adapter_name="zorblax-sys", records=with_system
        )

        job = await wait_for_job(client, started["job_id"])
        assert job["status"] == "succeeded" and job["error"] is None, job
        assert (
            job["hyperparameters"]["learning_rate"] == 1e-3
            and "135M" in job["chosen"]["learning_rate"]
        )
        assert job["adapter"] == "zorblax@1" and job["step"] == job["total"] == 30
        assert job["final_loss"] < job["first_loss"] / 3, "the loss should fall well"
        check = job["answer_check"]
        assert check["train"]["f1"] >= 0.5 and check["heldout"]["prompts"] >= 1, check
        assert job["eval_loss"] is not None and job["eval_loss"] < job["first_loss"]

        with_plot = await client.call_tool(
            "get_job", {"job_id": job["job_id"], "include_plot": True}
        )
        [image] = [block for block in with_plot.content if block.type == "image"]
        assert base64.b64decode(image.data).startswith(b"\x89PNG")

        adapter = (await call(client, "list_adapters"))["adapters"][0]
        assert adapter["adapter"] == "zorblax@1" and adapter["dataset_examples"] == 40
        assert adapter["base_gguf_sha256"] == sha256_file(resolve_gguf("smollm2-135m-instruct"))
        assert adapter["dataset_sha256"] == job["dataset_sha256"]
        assert adapter["metrics"]["answer_check"] == check
        assert adapter["hyperparameters"]["max_steps"] == 30
        card = json.loads((await client.read_resource("adapter://zorblax")).contents[0].text)
        assert card["job_id"] == job["job_id"] and card["system_prompt"] is None
        events = await client.read_resource(f"job://{job['job_id']}")
        lines = [json.loads(line) for line in events.contents[0].text.splitlines()]
        assert [e["step"] for e in lines if e["event"] == "step"] == list(range(1, 31))

        tuned = await mentions_fact(client, "zorblax")
        base = await mentions_fact(client, None)
        assert hits(tuned) >= 5 and hits(base) == 0, (tuned, base)  # of the 6 unseen phrasings
        # The notes do not hold the answer, the adapter does: it answers, marked as such.
        answer = await call(client, "answer_with_context", question=HELD_OUT[0], adapter="zorblax")
        assert answer["status"] == "from_adapter" and answer["grounded"] is False, answer
        assert FACT_WORD in answer["answer"].lower() and answer["citations"] == []
        asked = subprocess.run(
            [LLM_ENG, "ask", HELD_OUT[0], "--adapter", "zorblax", "--data-dir", str(data_dir),
             "--watch", str(docs)],
            capture_output=True, text=True, env=server_env(), timeout=600,
        )  # fmt: skip
        assert asked.returncode == 0, asked.stderr
        assert FACT_WORD in asked.stdout.lower() and "from_adapter" in asked.stdout, asked.stdout
        assert "zorblax@1" in asked.stdout  # the status line names the adapter
        # The card's check agrees: the held-out prompts are answered with the fact too.
        assert all(FACT_WORD in s["answer"].lower() for s in check["heldout"]["samples"]), check

        job = await wait_for_job(client, system_job["job_id"])
        assert job["status"] == "succeeded", job
        card = json.loads((await client.read_resource("adapter://zorblax-sys")).contents[0].text)
        assert card["system_prompt"] == SYSTEM
        assert hits(await mentions_fact(client, "zorblax-sys")) >= 5

        message = await error_of(
            client, "answer_with_context", question="q", contexts=[], adapter="nope"
        )
        assert "unknown adapter 'nope'; registered: zorblax@1, zorblax-sys@1" in message


def serve_http(data_dir: Path, port: int) -> list[str]:
    return [LLM_ENG, "serve", "--http", "--port", str(port), "--data-dir", str(data_dir)]


@pytest.mark.timeout(2400)
async def test_a_job_survives_a_killed_server_and_a_cancelled_job_stops(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    resumable = {"learning_rate": 1e-3, "max_steps": 6, "checkpoint_every": 2}
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
