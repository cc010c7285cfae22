"""The OpenAI-compatible backend against a real server: llama-cpp-python's, on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from llm_engineering.errors import ModelLoadError
from llm_engineering.generation.answer import Answerer
from llm_engineering.generation.openai_compat import OpenAICompatibleGenerator
from llm_engineering.packaged import packaged_gguf
from tests.conftest import free_port
from tests.server.helpers import running

pytestmark = pytest.mark.slow

KEY = "test-key-123"


@pytest.fixture(scope="module")
def server_url() -> Iterator[str]:
    port = free_port()
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(packaged_gguf()), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--api_key", KEY,
    ]  # fmt: skip
    with running(command, ready_url=f"http://127.0.0.1:{port}/v1/models", timeout=120):
        yield f"http://127.0.0.1:{port}"


def test_it_streams_a_chat_completion_with_usage(server_url: str) -> None:
    generator = OpenAICompatibleGenerator(server_url, api_key=KEY, context_window=2048)
    assert generator.model == "smollm2" and generator.name == f"openai:smollm2@{server_url}"
    pieces: list[str] = []
    completion = generator.chat(
        [{"role": "user", "content": "Say hello in French."}],
        max_tokens=20,
        temperature=0.0,
        on_token=pieces.append,
    )
    assert completion.text and "".join(pieces) == completion.text
    assert completion.prompt_tokens > 0 and 0 < completion.completion_tokens <= 20
    assert completion.first_token_ms is not None
    generator.close()


def test_answers_come_through_it_too(server_url: str) -> None:
    generator = OpenAICompatibleGenerator(f"{server_url}/v1", model="smollm2", api_key=KEY)
    result = Answerer(lambda _: generator, None).answer(
        "What is the secret code?",
        contexts=["Bananas are yellow.", "The secret code is 4417."],
        max_tokens=40,
    )
    assert result.status == "answered" and "4417" in result.answer
    assert result.model.startswith("openai:smollm2@")
    generator.close()


def test_a_wrong_key_or_no_server_is_a_clear_error(server_url: str) -> None:
    with pytest.raises(ModelLoadError, match="API key"):
        OpenAICompatibleGenerator(server_url, api_key="wrong")
    with pytest.raises(ModelLoadError, match="cannot reach"):
        OpenAICompatibleGenerator(f"http://127.0.0.1:{free_port()}")
