"""The retrieval evaluation: BEIR files in, standard metrics out (ir-measures)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from llm_engineering.errors import UserError
from llm_engineering.index_store.evaluation import (
    fold_to_documents,
    load_qrels,
    load_queries,
    score_run,
)
from llm_engineering.index_store.query.search import Hit
from tests.conftest import LLM_ENG, server_env

DOCS = {
    "d1": ("Kangaroos", "Kangaroos are marsupials that hop across the Australian outback."),
    "d2": ("Penguins", "Penguins are flightless birds that swim in the cold Antarctic sea."),
    "d3": ("Volcanoes", "A volcano erupts when magma rises through the crust."),
    "d4": ("Bread", "Bread is baked from flour, water and yeast."),
    "d5": ("Comets", "Comets are icy bodies that grow a tail near the sun."),
    "d/6": ("Tea", "Green tea is made from unoxidised leaves."),
}
QUERIES = {
    "q1": "marsupials hopping in Australia",
    "q2": "birds that cannot fly and swim in Antarctica",
    "q3": "magma eruption",
    "q4": "how green tea is made",
    "q5": "not judged",
}
QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1}, "q3": {"d3": 1}, "q4": {"d/6": 1}}


def write_beir(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus.jsonl"
    corpus.write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items())
    )
    queries = folder / "queries.jsonl"
    queries.write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items())
    )
    qrels = folder / "qrels.tsv"
    qrels.write_text(
        "query-id\tcorpus-id\tscore\n"
        + "".join(f"{q}\t{d}\t{r}\n" for q, ds in QRELS.items() for d, r in ds.items())
    )
    return {"corpus": corpus, "queries": queries, "qrels": qrels}


def test_loaders_read_beir_files_and_point_at_bad_lines(tmp_path: Path) -> None:
    files = write_beir(tmp_path)
    assert load_qrels(files["qrels"]) == QRELS
    assert load_queries(files["queries"])["q3"] == "magma eruption"
    bad = tmp_path / "bad.tsv"
    bad.write_text("query-id\tcorpus-id\tscore\nq1\td1\n")
    with pytest.raises(UserError, match="line 2"):
        load_qrels(bad)
    bad_queries = tmp_path / "bad.jsonl"
    bad_queries.write_text('{"_id": "a", "text": "x"}\nnot json\n')
    with pytest.raises(UserError, match="line 2"):
        load_queries(bad_queries)


def test_chunks_fold_into_documents_by_their_best_chunk() -> None:
    def hit(name: str) -> Hit:
        return Hit(chunk_id=name, path=f"/x/{name}.md", rel_path=name, title="", text="", score=0.0)

    run = fold_to_documents(
        [hit("a"), hit("b"), hit("a"), hit("c")], {"a.md": "A", "b.md": "B", "c.md": "C"}
    )
    assert sorted(run, key=lambda d: -run[d]) == ["A", "B", "C"]


def test_scores_come_from_ir_measures_and_missing_queries_count_as_zero() -> None:
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    perfect = score_run({"q1": {"d1": 1.0}, "q2": {"d2": 1.0}}, qrels)
    assert perfect == {"nDCG@10": 1.0, "R@10": 1.0, "R@100": 1.0, "RR@10": 1.0}
    half = score_run({"q1": {"d1": 1.0}}, qrels)
    assert half["nDCG@10"] == pytest.approx(0.5)
    second = score_run({"q1": {"dx": 2.0, "d1": 1.0}}, {"q1": {"d1": 1}})
    assert second["RR@10"] == pytest.approx(0.5)


@pytest.mark.slow
def test_eval_command_reports_every_mode_and_reuses_its_index(tmp_path: Path) -> None:
    files = write_beir(tmp_path / "beir")
    command = [
        LLM_ENG, "eval", "retrieval", "--corpus", str(files["corpus"]), "--queries", str(files["queries"]),
        "--qrels", str(files["qrels"]), "--cache-dir", str(tmp_path / "cache"), "--json",
        "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    first = subprocess.run(command, env=server_env(), capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    results = {r["mode"]: r for r in json.loads(first.stdout)}
    assert set(results) == {"dense", "keyword", "hybrid", "hybrid+rerank"}
    for result in results.values():
        assert set(result["metrics"]) == {"nDCG@10", "R@10", "R@100", "RR@10"}
        assert result["metrics"]["R@10"] == 1.0  # six documents: everything is in the top 10
    assert results["hybrid"]["metrics"]["nDCG@10"] > 0.8
    assert results["hybrid+rerank"]["extra"]["reranker"].startswith("offline:")
    indexes = list((tmp_path / "cache").iterdir())
    second = subprocess.run(command, env=server_env(), capture_output=True, text=True, timeout=300)
    assert second.returncode == 0
    assert list((tmp_path / "cache").iterdir()) == indexes  # the same cached index
    assert json.loads(second.stdout)[2]["metrics"] == results["hybrid"]["metrics"]
