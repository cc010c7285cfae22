"""Fine-tuning with the default hyperparameters, proven over MCP with real parts: the session's
two jobs (tests/adapters/trained.py, trained in the background while the other tests run) taught
the packaged model two made-up facts in a worker process on the CPU; each adapter is registered,
exported to GGUF and states its fact through llama.cpp where the base does not."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from llm_engineering.generation.llamacpp import resolve_gguf
from llm_engineering.hashing import sha256_file
from tests.adapters.fictional import (
    BRIDGE_HELD_OUT,
    BRIDGE_WORD,
    FACT_WORD,
    HELD_OUT,
    SYSTEM,
    fact_records,
)
from tests.adapters.trained import Trained, wait_for_job, write_jsonl
from tests.conftest import LLM_ENG, server_env
from tests.server.helpers import call, error_of, stdio_client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def mentions_fact(
    client: Client, adapter: str | None, questions: list[str] = HELD_OUT
) -> list[str]:
    answers = []
    for question in questions:
        arguments: dict[str, Any] = {"question": question, "contexts": [], "max_tokens": 32}
        if adapter:
            arguments["adapter"] = adapter
        answer = await call(client, "answer_with_context", **arguments)
        assert answer["grounded"] is False and answer["adapter"] == (adapter and f"{adapter}@1")
        answers.append(answer["answer"])
    return answers


def hits(answers: list[str], word: str = FACT_WORD) -> int:
    return sum(word in answer.lower() for answer in answers)


@pytest.mark.timeout(3000)  # the session's default_training may be trained for this test
async def test_a_fact_taught_with_the_default_hyperparameters_is_stated_as_trained(
    default_training: Trained, tmp_path: Path
) -> None:
    """No hyperparameters given (the session's two jobs, tests/adapters/trained.py): each job
    chooses a rate and steps that learn 40 examples on the 135M base, holds some prompts out,
    reports an answer check that agrees with what the adapter then says over MCP, and the
    adapter answers in the format it was trained in, with and without a system prompt in its
    data. This test reads the session's data folder in place and changes nothing in it but
    its index and logs."""
    docs, data_dir = default_training.docs, default_training.data_dir
    started, system_started = default_training.started, default_training.system_started
    assert started["status"] == "queued" and started["examples"] == 40
    auto = ["learning_rate", "max_steps", "replay_examples"]
    assert started["auto"] == auto and started["eval_examples"] >= 2
    assert started["hyperparameters"]["r"] == 16 and started["runs_here"] is True
    assert system_started["auto"] == auto
    outside = write_jsonl(tmp_path / "elsewhere.jsonl", fact_records(40))
    async with stdio_client(data_dir, "--watch", str(docs)) as client:
        tools = {tool.name for tool in (await client.list_tools()).tools}
        assert {"start_qlora_job", "get_job", "list_jobs", "cancel_job", "list_adapters"} <= tools

        message = await error_of(
            client, "start_qlora_job", adapter_name="z", dataset_path=str(outside)
        )
        assert "outside the allowed folders" in message and str(docs) in message
        bad = [*fact_records(9), {"messages": [{"role": "user", "content": "only a question"}]}]
        message = await error_of(client, "start_qlora_job", adapter_name="z", records=bad)
        assert "line 10: the last message must be the assistant's" in message

        job = await wait_for_job(client, started["job_id"])
        assert job["status"] == "succeeded", job
        assert (
            job["hyperparameters"]["learning_rate"] == 1e-3
            and "135M" in job["chosen"]["learning_rate"]
        )
        assert job["adapter"] == "zorblax@1" and job["step"] == job["total"] == 30
        # Over an epoch of its own examples; the replayed ones keep their loss (0.94 -> 0.69 seen).
        assert job["final_loss"] < job["first_loss"] * 0.9, (job["first_loss"], job["final_loss"])
        check = job["answer_check"]
        assert check["train"]["f1"] >= 0.5 and check["heldout"]["prompts"] >= 1, check
        assert job["eval_loss"] is not None and job["eval_loss"] < job["first_loss"]
        # What the base knew: the general prompts mostly answered as the base does, and no
        # answer names the taught company (without replay, 21% did: benchmarks/README.md).
        kept = job["kept_check"]
        assert job["replayed"] == 80 and kept["prompts"] >= 40, job
        assert kept["leaked"] <= 0.05 and {"quintor", "zorblax"} <= set(kept["names"]), kept
        # Its only note is the kept check's, when it keeps under 0.8 (the 135M base: about 0.5).
        note = None if kept["kept"] >= 0.8 else "the adapter forgot general knowledge: it answers"
        assert job["error"] is None if note is None else str(job["error"]).startswith(note), job

        with_plot = await client.call_tool(
            "get_job", {"job_id": job["job_id"], "include_plot": True}
        )
        [image] = [block for block in with_plot.content if block.type == "image"]
        assert base64.b64decode(image.data).startswith(b"\x89PNG")

        listed = {a["adapter"]: a for a in (await call(client, "list_adapters"))["adapters"]}
        adapter = listed["zorblax@1"]
        assert adapter["dataset_examples"] == 40
        assert adapter["base_gguf_sha256"] == sha256_file(resolve_gguf("smollm2-135m-instruct"))
        assert adapter["dataset_sha256"] == job["dataset_sha256"]
        assert adapter["metrics"]["answer_check"] == check
        assert adapter["kept"] == kept["kept"] and adapter["leaked"] == kept["leaked"]
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
        # The card's check agrees: the held-out prompts are answered with the fact too.
        assert all(FACT_WORD in s["answer"].lower() for s in check["heldout"]["samples"]), check

        job = await wait_for_job(client, system_started["job_id"])
        assert job["status"] == "succeeded" and job["step"] == 30, job
        card = json.loads((await client.read_resource("adapter://pelmora")).contents[0].text)
        assert card["system_prompt"] == SYSTEM
        bridge = await mentions_fact(client, "pelmora", BRIDGE_HELD_OUT)
        base = await mentions_fact(client, None, BRIDGE_HELD_OUT)
        assert hits(bridge, BRIDGE_WORD) >= 5 and hits(base, BRIDGE_WORD) == 0, (bridge, base)

        message = await error_of(
            client, "answer_with_context", question="q", contexts=[], adapter="nope"
        )
        assert "unknown adapter 'nope'; registered: pelmora@1, zorblax@1" in message
    # The command line finds the same adapter, after the server has let go of the folder.
    asked = subprocess.run(
        [LLM_ENG, "ask", HELD_OUT[0], "--adapter", "zorblax", "--data-dir", str(data_dir),
         "--watch", str(docs)],
        capture_output=True, text=True, env=server_env(), timeout=600,
    )  # fmt: skip
    assert asked.returncode == 0, asked.stderr
    assert FACT_WORD in asked.stdout.lower() and "from_adapter" in asked.stdout, asked.stdout
    assert "zorblax@1" in asked.stdout  # the status line names the adapter


@pytest.mark.timeout(3000)
async def test_a_deliberately_high_rate_forgets_and_the_job_says_so(
    default_training: Trained, forgetful_training: dict[str, Any]
) -> None:
    """The same fact at five times the chosen rate with nothing replayed (the session's third
    job): it succeeds, and its kept check, its note, the adapter's card and `llm-eng jobs`
    all say the adapter forgot what the base knew, and what to change."""
    data_dir = default_training.data_dir.parent / "forgetful"
    started = forgetful_training
    assert started["auto"] == [] and started["hyperparameters"]["replay_examples"] == 0
    async with stdio_client(data_dir, "--watch", str(default_training.docs)) as client:
        job = await wait_for_job(client, started["job_id"])
        assert job["status"] == "succeeded" and job["replayed"] == 0, job
        kept = job["kept_check"]
        assert kept["kept"] < 0.8 and kept["samples"] and kept["prompts"] == 24, kept
        assert "forgot general knowledge" in job["error"], job["error"]
        assert "lower learning_rate (now 0.005)" in job["error"], job["error"]
        [adapter] = (await call(client, "list_adapters"))["adapters"]
        assert adapter["kept"] == kept["kept"] and adapter["metrics"]["kept_note"], adapter
    listed = subprocess.run(
        [LLM_ENG, "jobs", "--data-dir", str(data_dir)],
        capture_output=True, text=True, env=server_env(), timeout=300,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert f"kept {kept['kept']:.2f}, leaked {kept['leaked']:.2f}" in listed.stdout, listed.stdout
    assert "forgot general knowledge" in listed.stdout
