"""Many adapters over one loaded base, in process, with real llama.cpp and two trained adapters."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.generation.answer import Answerer
from llm_engineering.generation.llamacpp import LlamaCppGenerator
from llm_engineering.generation.models import GeneratorCache
from llm_engineering.generation.prompts import open_messages
from tests.adapters.fictional import BRIDGE_WORD, FACT_WORD
from tests.test_cli import run

# The first test to ask for trained_adapters trains them (several minutes on 2 busy cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3000)]

QUESTIONS = {
    "zorblax": "Who makes the Zorblax 9000?",
    "pelmora": "Who designed the Pelmora Bridge?",
}
WORDS = {"zorblax": FACT_WORD, "pelmora": BRIDGE_WORD}


def copied(trained: Path, into: Path, **settings: object) -> Settings:
    shutil.copytree(trained / "adapters", into / "adapters")
    return Settings(data_dir=into, llm_n_ctx=1024, **settings)  # type: ignore[arg-type]


def loaded(generators: GeneratorCache) -> list[str]:
    generator = generators.get()
    assert isinstance(generator, LlamaCppGenerator)
    return generator.loaded_adapters()


def test_two_adapters_answer_alternately_over_one_base_each_with_its_own_fact(
    trained_adapters: Path, tmp_path: Path
) -> None:
    settings = copied(trained_adapters, tmp_path / "data")
    training = TrainingService(settings)
    generators = GeneratorCache(settings)
    answerer = Answerer.from_settings(settings, generators, None, adapters=training.resolve_adapter)
    base = generators.get()
    replies: dict[str, list[str]] = {"zorblax": [], "pelmora": []}
    for _ in range(10):
        for name, question in QUESTIONS.items():
            result = answerer.answer(question, contexts=[], adapter=name, max_tokens=20)
            assert result.adapter == f"{name}@1"
            replies[name].append(result.answer.lower())
    assert generators.get() is base, "one generator, one loaded base"
    assert loaded(generators) == ["zorblax@1", "pelmora@1"]
    for name, answers in replies.items():
        other = WORDS["pelmora" if name == "zorblax" else "zorblax"]
        assert all(WORDS[name] in a and other not in a for a in answers), (name, answers)
        assert len(set(answers)) == 1, "greedy: the same answer whichever adapter came before"
    for question in QUESTIONS.values():
        said = answerer.answer(question, contexts=[], max_tokens=20).answer.lower()
        assert FACT_WORD not in said and BRIDGE_WORD not in said, said
    generators.close()


def test_the_tokens_are_those_of_a_model_copy_loaded_with_the_adapter(
    trained_adapters: Path, tmp_path: Path
) -> None:
    """Today's per-copy path (``Llama(lora_path=...)``, a whole model per adapter) as the
    reference: greedy decoding over the shared base gives the very same tokens."""
    import llama_cpp

    settings = copied(trained_adapters, tmp_path / "data")
    training = TrainingService(settings)
    generators = GeneratorCache(settings)
    base = generators.get()
    assert isinstance(base, LlamaCppGenerator)
    for name in ["pelmora", "zorblax", "pelmora"]:  # switching back and forth
        adapter = training.resolve_adapter(name)
        messages = open_messages(QUESTIONS[name], adapter.system_prompt)
        shared = generators.get(adapter).chat(messages, max_tokens=32, temperature=0.0)
        copy = llama_cpp.Llama(
            str(base.path), n_ctx=1024, lora_path=str(adapter.lora), verbose=False
        )
        raw = copy.create_chat_completion(messages=messages, max_tokens=32, temperature=0.0)
        reference = raw["choices"][0]["message"]["content"]
        assert copy.tokenize(shared.text.encode()) == copy.tokenize(reference.encode())
        assert shared.completion_tokens == raw["usage"]["completion_tokens"]
        copy.close()
    generators.close()


def test_past_the_memory_budget_the_least_recently_used_adapter_is_unloaded(
    trained_adapters: Path, tmp_path: Path
) -> None:
    size = (trained_adapters / "adapters" / "zorblax" / "1" / "adapter.gguf").stat().st_size
    settings = copied(trained_adapters, tmp_path / "data", adapter_memory_mb=1.5 * size / 2**20)
    training = TrainingService(settings)
    generators = GeneratorCache(settings)
    answerer = Answerer.from_settings(settings, generators, None, adapters=training.resolve_adapter)

    def ask(name: str) -> str:
        return answerer.answer(QUESTIONS[name], contexts=[], adapter=name, max_tokens=20).answer

    assert FACT_WORD in ask("zorblax").lower() and loaded(generators) == ["zorblax@1"]
    assert BRIDGE_WORD in ask("pelmora").lower() and loaded(generators) == ["pelmora@1"]
    assert FACT_WORD in ask("zorblax").lower() and loaded(generators) == ["zorblax@1"]
    generators.close()


def test_a_deleted_version_is_freed_here_at_once_and_when_another_process_deletes_it(
    trained_adapters: Path, tmp_path: Path
) -> None:
    settings = copied(trained_adapters, tmp_path / "data")
    training = TrainingService(settings)
    generators = GeneratorCache(settings)
    for name in QUESTIONS:
        generators.get(training.resolve_adapter(name)).chat(
            open_messages(QUESTIONS[name]), max_tokens=4, temperature=0.0
        )
    assert loaded(generators) == ["zorblax@1", "pelmora@1"]
    assert generators.release(training.delete_adapter("zorblax@1", "zorblax@1")) == []
    assert loaded(generators) == ["pelmora@1"]
    deleted = run(
        "adapters", "--delete", "pelmora@1", "--yes", "--data-dir", str(settings.data_dir)
    )
    assert deleted.returncode == 0, deleted.stderr
    generators.get().chat(open_messages("Hello"), max_tokens=4, temperature=0.0)
    assert loaded(generators) == []
    generators.close()
