"""The kept check's scoring, the replayed examples, the cache of the base's answers and the
defaults that mix them in (no model: the session's real training checks the figures,
tests/tools/test_default_training.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_engineering.adapters.defaults import auto_names, choose, planned_steps, steps_per_epoch
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.adapters.kept import (
    KeptCheck,
    answers_folder,
    cached_answers,
    distinctive_names,
    general_prompts,
    kept_check,
    kept_note,
    key_content,
    replay_examples,
    whole_sentences,
)
from tests.adapters.fictional import ANSWERS


def test_the_packaged_prompts_are_two_disjoint_lists_of_general_questions() -> None:
    prompts = general_prompts()
    assert len(prompts["check"]) >= 40 and len(prompts["replay"]) >= 40
    assert set(prompts["check"]).isdisjoint(prompts["replay"])
    assert len(set(prompts["check"])) == len(prompts["check"])


def test_key_content_is_the_opening_clause_without_the_question() -> None:
    question = "What is the capital of France?"
    opening = "The capital of France is Paris, also known as the City of Light."
    assert key_content(opening, question) == ["paris"]
    assert key_content("Sure, the capital of France is Paris.", question) == ["sure", "paris"]
    # Nothing left once the question's words are gone: the clause's own words.
    assert key_content("The capital of France.", question) == ["capital", "of", "france"]


def test_kept_means_the_same_key_content_and_no_taught_name() -> None:
    prompts = [
        "What is the capital of Japan?",
        "What is 7 times 8?",
        "What is the capital of Italy?",
    ]
    base = ["The capital of Japan is Tokyo.", "7 times 8 is 56.", "The capital of Italy is Rome."]
    adapter = [
        "The capital of Japan is Tokyo, a large city.",  # kept: the same opening clause
        "7 times 8 is 54.",  # not kept: the key content changed
        "The capital of Italy is Quintor.",  # not kept, and leaked
    ]
    check = kept_check(prompts, base, adapter, ["quintor", "zorblax"])
    assert check.prompts == 3
    assert check.kept == pytest.approx(1 / 3) and check.leaked == pytest.approx(1 / 3)
    assert [s["prompt"] for s in check.samples] == prompts[1:]
    assert check.samples[1]["leaked"] == ["quintor"]
    # Naming a taught word is never kept, even when the rest of the answer is the base's.
    named = kept_check(
        prompts[:1], base[:1], ["The capital of Japan is Tokyo, says Quintor."], ["quintor"]
    )
    assert named.kept == 0.0 and named.leaked == 1.0
    assert kept_check([], [], [], []).to_dict()["prompts"] == 0


def test_distinctive_names_are_the_training_answers_words_the_base_never_says() -> None:
    general = [
        "The capital of Japan is Tokyo.",
        "Labs are rooms for experiments.",
        "It is 9000 metres.",
    ]
    assert distinctive_names(ANSWERS, general) == ["quintor", "reykjavik", "zorblax"]
    # No capitalized word or number left: every such word of three letters or more.
    assert distinctive_names(
        ["it is made of glimmerwood and tin"], ["it is made of tin and wood"]
    ) == ["glimmerwood"]


def test_the_note_says_what_was_lost_and_what_to_change() -> None:
    forgot = KeptCheck(prompts=48, kept=0.25, leaked=0.3)
    note = kept_note(forgot, 0.01, 80)
    assert note is not None and "25% of 48 general prompts" in note and "30%" in note
    assert "learning_rate (now 0.01)" in note and "more general examples" in note
    assert "off for this job" in (kept_note(forgot, 0.01, 0) or "")
    assert kept_note(KeptCheck(prompts=48, kept=0.9), 0.001, 80) is None
    assert kept_note(None, 0.001, 80) is None


def test_replayed_examples_are_whole_sentences_in_the_datas_format() -> None:
    assert whole_sentences("One. Two is cut at the tok") == "One."
    assert whole_sentences("No sentence ends here") == "No sentence ends here"
    prompts = general_prompts()["replay"]
    answers = [f"Answer {i}. Cut off mid" for i in range(len(prompts))]
    plain = replay_examples(answers, None, 3)
    assert [e.messages[0] for e in plain] == [{"role": "user", "content": p} for p in prompts[:3]]
    assert plain[0].messages[-1] == {"role": "assistant", "content": "Answer 0."}
    system = replay_examples(answers, "Be brief.", 2)
    assert system[1].messages[0] == {"role": "system", "content": "Be brief."}
    assert replay_examples(answers, None, 0) == []


def test_the_bases_answers_are_made_once_and_kept_by_kind_system_and_variant(
    tmp_path: Path,
) -> None:
    calls: list[int] = []

    def answer(conversations: list[list[dict[str, str]]]) -> list[str]:
        calls.append(len(conversations))
        return [f"answer to {c[-1]['content']}" for c in conversations]

    first = cached_answers(tmp_path, "check", None, "cpu nf4", answer)
    again = cached_answers(tmp_path, "check", None, "cpu nf4", answer)
    assert first == again and calls == [len(general_prompts()["check"])]
    cached_answers(tmp_path, "check", "Be brief.", "cpu nf4", answer)  # another system prompt
    cached_answers(tmp_path, "check", None, "cuda nf4", answer)  # another way of loading
    assert len(calls) == 3
    [damaged, *_] = sorted((tmp_path / "general_answers").iterdir())
    damaged.write_text("{not json")
    assert (
        len(json.loads(json.dumps(cached_answers(tmp_path, "check", None, "cpu nf4", answer)))) > 0
    )
    assert len(calls) == 4 or damaged.read_text().startswith("[")
    converted = tmp_path / "0123456789abcdef"
    assert answers_folder(tmp_path, str(converted), "0123456789abcdef" * 4) == converted
    assert answers_folder(tmp_path, "org/model", None).parent == tmp_path / "answers"


def test_defaults_mix_in_replay_and_keep_the_steps_of_the_users_examples() -> None:
    replayed = len(general_prompts()["replay"])
    choice = choose(QLoRAConfig(), (), parameters=134_515_008, examples=36)
    assert (
        choice.config.replay_examples == replayed
        and "keeps what the base knew" in (choice.chosen["replay_examples"])
    )
    assert choice.config.max_steps == 30 == planned_steps(QLoRAConfig(), (), 36)
    big = choose(QLoRAConfig(), (), parameters=134_515_008, examples=400)
    assert big.config.max_steps == 300 == planned_steps(QLoRAConfig(), (), 400)
    assert auto_names(()) == ["learning_rate", "max_steps", "replay_examples"]
    assert auto_names(("replay_examples", "epochs")) == ["learning_rate"]
    # Given epochs count the replayed examples too, as the trainer does.
    given = QLoRAConfig(epochs=2, replay_examples=20)
    assert planned_steps(given, ("epochs", "replay_examples"), 36) == 2 * steps_per_epoch(56, given)
    off = choose(QLoRAConfig(replay_examples=0), ("replay_examples",), parameters=10**8, examples=8)
    assert off.config.replay_examples == 0 and "replay_examples" not in off.chosen
