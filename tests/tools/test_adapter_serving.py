"""Adapters served by a real model server: llama-cpp-python's, started from the config file
``llm-eng adapters --serve llama-cpp-python`` prints, answering ``answer_with_context`` over MCP."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.adapters.fictional import BRIDGE_WORD, FACT_WORD
from tests.conftest import free_port
from tests.server.helpers import call, running, stdio_client
from tests.test_cli import run

# trained_adapters may be trained for this test (several minutes on 2 busy cores).
pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.timeout(3000)]

QUESTIONS = {
    "zorblax": "Who makes the Zorblax 9000?",
    "pelmora": "Who designed the Pelmora Bridge?",
}
WORDS = {"zorblax": FACT_WORD, "pelmora": BRIDGE_WORD}


async def test_a_llama_cpp_python_server_started_from_the_printed_config_answers_with_each_adapter(
    trained_adapters: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    shutil.copytree(trained_adapters / "adapters", data / "adapters")
    url = f"http://127.0.0.1:{free_port()}"
    printed = run(
        "adapters", "--serve", "llama-cpp-python", "--data-dir", str(data), LLM_ENG_LLM_URL=url
    )
    assert printed.returncode == 0, printed.stderr
    config = tmp_path / "models.json"
    config.write_text(printed.stdout)  # stdout is the file, nothing else
    server = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)]
    with running(server, ready_url=f"{url}/v1/models", timeout=180):
        # Only llm_url changes: the kind is told by the server, the names match.
        async with stdio_client(data, LLM_ENG_LLM_URL=url) as client:
            for name, question in QUESTIONS.items():
                answer = await call(
                    client, "answer_with_context", question=question, contexts=[],
                    adapter=name, max_tokens=24,
                )  # fmt: skip
                assert answer["adapter"] == f"{name}@1" and answer["model"].startswith("openai:")
                assert WORDS[name] in answer["answer"].lower(), answer
            for question in QUESTIONS.values():
                answer = await call(
                    client, "answer_with_context", question=question, contexts=[], max_tokens=24
                )
                said = answer["answer"].lower()
                assert FACT_WORD not in said and BRIDGE_WORD not in said, answer
            listing = (await call(client, "list_adapters"))["adapters"]
            assert {a["adapter"]: a["serving"]["where"] for a in listing} == {
                "pelmora@1": "server", "zorblax@1": "server",
            }  # fmt: skip
