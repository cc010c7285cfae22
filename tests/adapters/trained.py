"""Two adapters of the default model, each taught its own made-up fact, trained for real."""

from __future__ import annotations

from pathlib import Path

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from tests.adapters.fictional import bridge_records, fact_records

# 24 steps at 1e-3 teach the 135M base either fact word for word (16 examples, batch 4);
# 6 are not enough to make it say the fact reliably.
HYPERPARAMETERS = {"max_steps": 24, "learning_rate": 1e-3, "eval_fraction": 0}
TIMEOUT_S = 2700


def train_two(data_dir: Path) -> Path:
    """Register ``zorblax@1`` (who makes the Zorblax 9000) and ``pelmora@1`` (who designed the
    Pelmora Bridge) in ``data_dir``; returns it."""
    training = TrainingService(Settings(data_dir=data_dir))
    training.start_runner()
    try:
        jobs = [
            training.start_job(
                "zorblax", records=fact_records(16), hyperparameters=HYPERPARAMETERS
            ),
            training.start_job(
                "pelmora", records=bridge_records(16), hyperparameters=HYPERPARAMETERS
            ),
        ]
        for job in jobs:
            view = training.follow(job.id, timeout=TIMEOUT_S)
            assert view.job.status == "succeeded", (
                f"training job {job.id} ({job.name}) did not succeed within {TIMEOUT_S} s: "
                f"{view.job.status}, step {view.step}/{view.total}, {view.job.error}"
            )
    finally:
        training.close()
    return data_dir
