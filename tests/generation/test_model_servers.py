"""Adapters on model servers at ``llm_url``: vLLM, llama.cpp's llama-server, plain OpenAI.

vLLM (it needs a GPU) and llama-server (no binary is installed here) cannot run on these
machines: these tests talk to a local stand-in that replays their protocol
(``tests/generation/replay.py``, ``protocol/*.json``) and check what we send. Where a
``llama-server`` binary is on PATH, the llama-server test also runs against it for real,
started with what ``llm-eng adapters --serve llama-server`` prints, with two trained
adapters. llama-cpp-python's own server runs here: ``test_served_adapters.py``.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_engineering.adapters.launch import launch
from llm_engineering.adapters.service import TrainingService
from llm_engineering.adapters.serving import availability
from llm_engineering.config import Settings
from llm_engineering.errors import UserError
from llm_engineering.generation.answer import Answerer
from llm_engineering.generation.models import GeneratorCache
from tests.adapters.fictional import ANSWERS, BRIDGE_ANSWERS, BRIDGE_WORD, FACT_WORD
from tests.adapters.registered import add_adapter
from tests.conftest import free_port, wait_until
from tests.generation.replay import Replay, replaying
from tests.server.helpers import running

ZORBLAX_Q = "Who makes the Zorblax 9000?"
PELMORA_Q = "Who designed the Pelmora Bridge?"
BASE_REPLY = "I am not sure which product or bridge you mean."


def answerer(settings: Settings) -> tuple[Answerer, GeneratorCache, TrainingService]:
    training = TrainingService(settings)
    generators = GeneratorCache(settings)
    return (
        Answerer.from_settings(settings, generators, None, adapters=training.resolve_adapter),
        generators,
        training,
    )


def said(answerer: Answerer, question: str, adapter: str | None = None) -> str:
    result = answerer.answer(question, contexts=[], adapter=adapter, max_tokens=24)
    assert result.adapter == (f"{adapter.partition('@')[0]}@1" if adapter else None)
    return result.answer.lower()


@pytest.fixture(params=["replay", "llama-server"])
def llama_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Settings, Replay | None]]:
    """Settings pointing at a llama-server that serves zorblax@1 and pelmora@1."""
    data = tmp_path / "data"
    if request.param == "replay":
        cards = [add_adapter(data, "zorblax"), add_adapter(data, "pelmora")]
        paths = [str(Path(card.path) / "adapter.gguf") for card in cards]
        replies = {paths[0]: ANSWERS[0], paths[1]: BRIDGE_ANSWERS[0], "": BASE_REPLY}
        with replaying(Replay("llama-server", replies, lora_paths=paths)) as replay:
            yield Settings(data_dir=data, llm_url=replay.url), replay
        return
    if shutil.which("llama-server") is None:
        pytest.skip("no llama-server binary on PATH (its protocol is tested with the replay)")
    shutil.copytree(request.getfixturevalue("trained_adapters") / "adapters", data / "adapters")
    url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(data_dir=data, llm_url=url)
    training = TrainingService(settings)
    command = launch("llama-server", settings, training.resolver, training.adapters()).text
    with running(shlex.split(command), ready_url=f"{url}/health"):
        wait_until(lambda: _healthy(url), "llama-server has loaded the model", 180)
        yield settings, None


def _healthy(url: str) -> bool:
    return httpx.get(f"{url}/health", timeout=5).status_code == 200


@pytest.mark.timeout(3000)  # the real server's run may train trained_adapters first
def test_llama_server_answers_each_adapter_by_the_id_its_path_has_there(
    llama_server: tuple[Settings, Replay | None],
) -> None:
    settings, replay = llama_server
    answers, generators, _ = answerer(settings)
    assert FACT_WORD in said(answers, ZORBLAX_Q, "zorblax")
    assert BRIDGE_WORD in said(answers, PELMORA_Q, "pelmora")
    base = said(answers, ZORBLAX_Q) + said(answers, PELMORA_Q)
    assert FACT_WORD not in base and BRIDGE_WORD not in base, base
    assert getattr(generators.get(), "kind", None) == "llama-server"  # told by /v1/models
    if replay is not None:
        # Each adapter by the id GET /lora-adapters gives its path; the base with none.
        assert [chat["lora"] for chat in replay.chats()] == [
            [{"id": 0, "scale": 1.0}], [{"id": 1, "scale": 1.0}], [], [],
        ]  # fmt: skip
        assert {chat["model"] for chat in replay.chats()} == {"smollm2-135m-instruct"}
    generators.close()


@pytest.fixture
def vllm(tmp_path: Path) -> Iterator[tuple[Settings, Replay]]:
    """Settings pointing at vLLM (which sees our adapters folder at /srv/llm-eng/adapters)."""
    data = tmp_path / "data"
    add_adapter(data, "zorblax")
    replies = {"smollm2-135m-instruct": BASE_REPLY, "zorblax@1": ANSWERS[0]}
    with replaying(Replay("vllm", replies)) as replay:
        yield (
            Settings(
                data_dir=data,
                llm_url=f"{replay.url}/v1",
                llm_server_adapters_path="/srv/llm-eng/adapters",
            ),
            replay,
        )


def test_vllm_gets_an_adapter_by_its_served_name_loads_a_new_one_and_unloads_it_on_delete(
    vllm: tuple[Settings, Replay],
) -> None:
    settings, replay = vllm
    answers, generators, training = answerer(settings)
    [card] = training.adapters()
    before = availability(training.resolver, generators, [card])[0]
    assert before.where == "server" and "on first use" in before.detail
    assert FACT_WORD in said(answers, ZORBLAX_Q, "zorblax")
    assert FACT_WORD in said(answers, ZORBLAX_Q, "zorblax@1")  # loaded once
    assert BASE_REPLY.lower() == said(answers, ZORBLAX_Q)
    loads = [r.body for r in replay.requests if r.path == "/v1/load_lora_adapter"]
    assert loads == [
        {"lora_name": "zorblax@1", "lora_path": "/srv/llm-eng/adapters/zorblax/1/peft"}
    ]
    assert [chat["model"] for chat in replay.chats()] == [
        "zorblax@1", "zorblax@1", "smollm2-135m-instruct",
    ]  # fmt: skip
    assert all("lora" not in chat for chat in replay.chats())
    after = availability(training.resolver, generators, [card])[0]
    assert after.where == "server" and "served as zorblax@1" in after.detail

    deleted = training.delete_adapter("zorblax@1", "zorblax@1")
    assert generators.release(deleted) == []
    unloads = [r.body for r in replay.requests if r.path == "/v1/unload_lora_adapter"]
    assert unloads == [{"lora_name": "zorblax@1"}] and replay.loaded == {}
    generators.close()


def test_a_vllm_server_without_run_time_updates_says_how_to_start_it(
    vllm: tuple[Settings, Replay],
) -> None:
    settings, replay = vllm
    replay.runtime_updates = False
    answers, generators, _ = answerer(settings)
    with pytest.raises(UserError) as refused:
        said(answers, ZORBLAX_Q, "zorblax")
    message = str(refused.value)
    assert "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True" in message
    assert "--lora-modules zorblax@1=/srv/llm-eng/adapters/zorblax/1/peft" in message
    assert replay.chats() == []  # nothing was asked of the base in its place
    generators.close()


def test_an_adapter_of_another_base_is_refused_with_both_names(
    vllm: tuple[Settings, Replay], tmp_path: Path
) -> None:
    settings, replay = vllm
    replay.base = {"id": "meta-llama/Llama-3.1-8B-Instruct", "root": "/models/Llama-3.1-8B"}
    answers, generators, _ = answerer(settings)
    with pytest.raises(UserError) as refused:
        said(answers, ZORBLAX_Q, "zorblax")
    assert (
        "adapter zorblax@1 was trained on smollm2-135m-instruct, but the vllm server at "
        f"{replay.url} serves meta-llama/Llama-3.1-8B-Instruct"
    ) in str(refused.value)
    assert not [r for r in replay.requests if r.path == "/v1/load_lora_adapter"]
    generators.close()


def test_a_plain_openai_server_serves_no_adapters_and_says_which_kinds_do(
    vllm: tuple[Settings, Replay],
) -> None:
    settings, _ = vllm
    plain = settings.model_copy(update={"llm_server": "openai"})
    answers, generators, training = answerer(plain)
    assert BASE_REPLY.lower() == said(answers, ZORBLAX_Q)
    with pytest.raises(UserError) as refused:
        said(answers, ZORBLAX_Q, "zorblax")
    message = str(refused.value)
    assert "serves no adapters" in message
    assert "vLLM, llama.cpp's llama-server and llama-cpp-python's server" in message
    [where] = availability(training.resolver, generators, training.adapters())
    assert where.where == "none" and "plain OpenAI-compatible" in where.detail
    generators.close()


def test_without_a_server_each_version_says_whether_llama_cpp_here_can_serve_it(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    add_adapter(data, "zorblax")
    add_adapter(
        data, "hf-only", base_model="HuggingFaceTB/SmolLM2-360M", base_sha256="", gguf=False
    )
    add_adapter(data, "other-gguf", base_model="other", base_sha256="ab" * 32)
    settings = Settings(data_dir=data)
    training = TrainingService(settings)
    generators = GeneratorCache(settings)
    found = availability(training.resolver, generators, training.adapters())
    where = {
        card.spec: f.where + ": " + f.detail
        for card, f in zip(training.adapters(), found, strict=True)
    }
    assert where["zorblax@1"].startswith("in_process: loads on first use")
    assert where["hf-only@1"].startswith("none: ") and "not a GGUF model" in where["hf-only@1"]
    assert (
        where["other-gguf@1"].startswith("none: ")
        and "trained on the GGUF" in where["other-gguf@1"]
    )
    assert generators.loaded is None  # listing loads no model
