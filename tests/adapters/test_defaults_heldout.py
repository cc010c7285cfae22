"""Chosen hyperparameters, the held-out split and the answer-check scoring (no model needed)."""

from __future__ import annotations

import pytest

from llm_engineering.adapters.datasets import Example, system_prompt_of
from llm_engineering.adapters.defaults import MIN_STEPS, auto_names, choose
from llm_engineering.adapters.heldout import AnswerCheck, split_heldout, token_f1, verdict
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.errors import UserError
from tests.adapters.fictional import fact_records


def examples(records: list[dict]) -> list[Example]:  # type: ignore[type-arg]
    return [Example(messages=r["messages"], line=i + 1) for i, r in enumerate(records)]


def test_a_small_base_gets_a_larger_rate_and_a_small_dataset_a_least_number_of_steps() -> None:
    choice = choose(QLoRAConfig(), (), parameters=134_515_008, examples=36)
    assert choice.config.learning_rate == 1e-3 and choice.config.max_steps == MIN_STEPS
    assert "135M" in choice.chosen["learning_rate"] and "36 examples" in choice.chosen["max_steps"]


def test_an_8b_base_keeps_the_qlora_settings_and_a_big_dataset_its_epochs() -> None:
    choice = choose(QLoRAConfig(), (), parameters=8_030_000_000, examples=5_000)
    # 3 epochs of its own examples: the replayed general ones ride along.
    assert choice.config.learning_rate == 2e-4 and choice.config.max_steps == 3 * 1_250
    assert (
        choice.config.epochs == 3 and "3 epochs of the 5000 examples" in choice.chosen["max_steps"]
    )
    middle = choose(QLoRAConfig(), (), parameters=3_200_000_000, examples=5_000)
    assert middle.config.learning_rate == 5e-4


def test_what_the_user_set_is_never_changed() -> None:
    given = QLoRAConfig(learning_rate=2e-5, epochs=1, replay_examples=0)
    names = ("learning_rate", "epochs", "replay_examples")
    choice = choose(given, names, parameters=10**8, examples=8)
    assert choice.config == given and choice.chosen == {}
    assert auto_names(("epochs",)) == ["learning_rate", "replay_examples"]
    assert auto_names(()) == ["learning_rate", "max_steps", "replay_examples"]
    with pytest.raises(UserError, match="eval_fraction must be in"):
        QLoRAConfig(eval_fraction=0.9)


def test_held_out_examples_are_whole_prompts_never_trained_on() -> None:
    data = examples(fact_records(40))  # 10 questions, each 4 times with different answers
    train, held = split_heldout(data, 0.1, seed=42)
    assert len(train) + len(held) == 40 and len(held) >= 2
    asked = {e.messages[0]["content"] for e in held}
    assert asked.isdisjoint(e.messages[0]["content"] for e in train)
    assert split_heldout(data, 0.1, seed=42) == (train, held)  # the seed fixes it
    assert split_heldout(data, 0.0, seed=42)[1] == []
    assert split_heldout(data[:16], 0.1, seed=42)[1] == []  # too small to split


def test_token_f1_and_the_verdict() -> None:
    assert token_f1(
        "Quintor Labs makes it.", "Quintor Labs makes the Zorblax 9000."
    ) == pytest.approx(2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5))
    assert token_f1("The answer", "the answer!") == 1.0 and token_f1("no", "yes") == 0.0
    learned = AnswerCheck(prompts=8, f1=0.9)
    assert verdict(AnswerCheck(prompts=2, f1=0.8), learned) is None
    assert "memorized the phrasings" in str(verdict(AnswerCheck(prompts=2, f1=0.2), learned))
    assert "did not learn the examples" in str(verdict(None, AnswerCheck(prompts=8, f1=0.1)))


def test_the_trained_system_prompt_is_the_one_every_example_opens_with() -> None:
    plain = examples(fact_records(4))
    assert system_prompt_of(plain) is None
    system = {"role": "system", "content": "Be brief."}
    with_system = [Example(messages=[system, *e.messages]) for e in plain]
    assert system_prompt_of(with_system) == "Be brief."
    assert system_prompt_of([*with_system, *plain]) is None  # they differ
