"""job.json and result.json: the typed records read what earlier versions wrote, and write it back the same."""

from __future__ import annotations

import json
from pathlib import Path

from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.records import JobResult

SUCCEEDED = {
    "status": "succeeded", "step": 2, "total": 2, "budget_reached": False, "first_loss": 2.5,
    "final_loss": 1.5, "best_loss": 1.4, "train_tokens": 456, "device": "cpu",
    "base_source": "/data/base_models/ab12", "base_gguf": "/models/m.gguf",
    "base_gguf_sha256": "ab" * 32, "seconds": 31.2, "time_to_first_step_s": None,
    "peak_rss_mib": 900.5, "libraries": {"torch": "2.13.0"}, "gguf_error": None,
    "export": {"pairs": 210, "rank": 8, "alpha": 16.0},
}  # fmt: skip


def test_each_kind_of_result_written_by_the_worker_round_trips_with_the_same_keys(
    tmp_path: Path,
) -> None:
    for written in (
        SUCCEEDED,
        {"status": "failed", "error": "TrainingFailed: the loss became nan", "peak_rss_mib": 1.0},
        {"status": "interrupted", "step": 4, "reason": "signal 15", "peak_rss_mib": 2.0},
        {"status": "cancelled", "step": 3, "peak_rss_mib": 2.0},
    ):
        (tmp_path / "result.json").write_text(json.dumps(written))
        result = JobFolder(tmp_path).result()
        assert result is not None and result.status == written["status"]
        JobFolder(tmp_path).write_result(result)
        assert json.loads((tmp_path / "result.json").read_text()) == written


def test_an_adapter_card_keeps_only_the_metrics_the_worker_reported() -> None:
    metrics = JobResult.from_dict(SUCCEEDED).metrics()
    assert "peak_gpu_mib" not in metrics  # a CPU job reports none
    assert metrics["time_to_first_step_s"] is None and metrics["budget_reached"] is False


def test_a_missing_or_half_written_result_reads_as_none(tmp_path: Path) -> None:
    assert JobFolder(tmp_path).result() is None
    (tmp_path / "result.json").write_text('{"status": "succ')
    assert JobFolder(tmp_path).result() is None


def test_a_job_spec_round_trips_with_its_hyperparameters_resolved(tmp_path: Path) -> None:
    written = {
        "id": "20260101-120000-abcdef", "name": "faq", "base_model": "smollm2-135m-instruct",
        "base_cache": "/data/base_models", "hyperparameters": QLoRAConfig(r=8).to_dict(),
        "dataset": {"source": "records", "sha256": "cd" * 32, "examples": 12, "formats": {"chat": 12}},
    }  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(written, indent=2))
    spec = JobFolder(tmp_path).spec()  # written by a version before held-out examples
    assert spec.hyperparameters.r == 8 and spec.dataset.examples == 12
    assert spec.given is None and spec.eval_examples == 0 and spec.system_prompt is None
    estimate = {"steps": 30, "minutes": 0.5, "basis": "30 steps, about 2,400 tokens"}
    newer = {
        **written, "given": ["r"], "eval_examples": 2, "system_prompt": "Be brief.",
        "estimate": estimate,
    }  # fmt: skip
    (tmp_path / "job.json").write_text(json.dumps(newer))
    spec = JobFolder(tmp_path).spec()
    assert spec.given == ("r",) and json.loads(spec.to_json()) == newer
    assert spec.estimate is not None and spec.estimate.minutes == 0.5
