"""Grounded answers: the real model for the end-to-end paths, a scripted one for the edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_engineering.errors import UserError
from llm_engineering.generation.answer import Answerer
from llm_engineering.generation.grounding import NOT_FOUND
from llm_engineering.generation.models import GeneratorCache
from tests.generation.fakes import ScriptedGenerator

FACT = "The Zephyr-9 espresso machine costs 1,249 euros and ships from Lyon within five days."


@pytest.fixture(scope="module")
def generators(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from llm_engineering.config import load_settings

    cache = GeneratorCache(load_settings(data_dir=tmp_path_factory.mktemp("gen"), llm_n_ctx=2048))
    yield cache
    cache.close()


@pytest.fixture
def indexed(service_factory, mixed_folder: Path):  # type: ignore[no-untyped-def]
    (mixed_folder / "pricing.md").write_text(f"# Zephyr-9 price list\n\n{FACT}\n")
    service = service_factory()
    service.ingest([mixed_folder])
    return service


def test_the_answer_states_the_fact_and_cites_its_file(generators, indexed) -> None:  # type: ignore[no-untyped-def]
    tokens: list[str] = []
    result = Answerer(generators.get, indexed).answer(
        "How much does the Zephyr-9 cost?", max_tokens=60, on_token=tokens.append
    )
    assert result.status == "answered" and result.grounded
    assert "1,249" in result.answer
    assert [Path(c.path).name for c in result.citations] == ["pricing.md"]
    assert result.citations[0].text.strip().endswith(FACT)
    assert "".join(tokens).strip() == result.model_answer
    assert result.prompt_tokens > 0 and 0 < result.completion_tokens <= 60
    assert len(result.passages) >= 1 and result.model.startswith("llama.cpp:")


def test_caller_passages_skip_retrieval(generators) -> None:  # type: ignore[no-untyped-def]
    result = Answerer(generators.get, index=None).answer(
        "What is the secret code?",
        contexts=["Bananas are yellow.", "The secret code is 4417."],
        max_tokens=40,
    )
    assert result.status == "answered" and "4417" in result.answer
    assert [c.n for c in result.citations] == [2] and result.citations[0].path is None
    assert result.retrieval_ms < 5


def test_passages_about_something_else_are_not_in_context_whatever_the_model_says(
    generators,
) -> None:  # type: ignore[no-untyped-def]
    result = Answerer(generators.get, index=None).answer(
        "What is the capital of Peru?",
        contexts=["Bananas are yellow.", "Bread needs yeast."],
        max_tokens=40,
    )
    assert result.status == "not_in_context" and not result.grounded
    assert result.citations == [] and result.answer == NOT_FOUND
    assert [p.text for p in result.passages] == ["Bananas are yellow.", "Bread needs yeast."]
    assert result.model_answer  # the model's own words are kept for the caller


def test_no_passages_at_all_means_the_model_answers_from_its_own_knowledge(
    generators, service_factory
) -> None:  # type: ignore[no-untyped-def]
    for answerer, contexts in (
        (Answerer(generators.get, None), []),
        (Answerer(generators.get, service_factory()), None),
    ):
        result = answerer.answer("Who wrote Romeo and Juliet?", contexts=contexts, max_tokens=30)
        assert result.status == "no_context" and result.grounded is False and result.citations == []
        assert result.passages == [] and "own knowledge" in result.notes[0]


def test_an_over_long_context_is_packed_into_the_window(tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from llm_engineering.config import load_settings

    small = GeneratorCache(load_settings(data_dir=tmp_path, llm_n_ctx=512))
    long_passages = [
        ("Filler sentence about nothing in particular. " * 60).strip() for _ in range(5)
    ]
    result = Answerer(small.get, None).answer(
        "What is the code?", contexts=["The code is 77.", *long_passages], max_tokens=64
    )
    assert result.prompt_tokens + result.completion_tokens <= 512
    assert any("left out" in note or "shortened" in note for note in result.notes)
    assert len(result.passages) < 6
    small.close()


def test_the_models_refusal_is_never_taken_at_its_word() -> None:
    """Whether the passages hold the answer is for the passages to say, not the model."""
    refusal = "The passages do not contain the answer [1]."
    result = Answerer(lambda _: ScriptedGenerator(refusal), None).answer(
        "What is the code?", contexts=["Bananas are yellow."]
    )
    assert result.status == "not_in_context" and result.citations == []
    assert result.answer == NOT_FOUND and result.model_answer == refusal
    result = Answerer(lambda _: ScriptedGenerator(refusal), None).answer(
        "What is the door code?", contexts=["Bananas are yellow. The door code is 4417."]
    )
    assert result.status == "extracted" and result.answer == "The door code is 4417."
    assert [(c.n, c.how, c.text) for c in result.citations] == [(1, "extract", result.answer)]


def test_markers_become_citations_and_markers_to_missing_passages_are_dropped() -> None:
    generator = ScriptedGenerator("It is 4417 [2] [7].")
    result = Answerer(lambda _: generator, None).answer(
        "Code?", contexts=["Bananas.", "The code is 4417."]
    )
    assert [(c.n, c.how) for c in result.citations] == [(2, "marker")]
    assert "[7]" in result.notes[0]
    sent = generator.sent[0][1]["content"]
    # numbered by rank, listed best-last so the best passage sits next to the question
    assert (
        sent.index("[2]\nThe code is 4417.")
        < sent.index("[1]\nBananas.")
        < sent.index("Question: Code?")
    )


def test_bad_arguments_are_clear_errors() -> None:
    generator = ScriptedGenerator("x", context_window=200)
    answerer = Answerer(lambda _: generator, None)
    with pytest.raises(UserError, match="question is empty"):
        answerer.answer("  ")
    with pytest.raises(UserError, match="unknown adapter 'mine'"):
        answerer.answer("Q?", adapter="mine")
    with pytest.raises(UserError, match="lower max_tokens"):
        answerer.answer("Q?", contexts=["text"], max_tokens=190)
