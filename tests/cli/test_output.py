"""What the commands show a person, rendered by rich as a terminal would show it."""

from __future__ import annotations

import io
import time

from rich.console import Console

from llm_engineering.adapters.job_view import JobView
from llm_engineering.adapters.jobs import Job
from llm_engineering.adapters.records import JobResult
from llm_engineering.cli.job_progress import event_line, training_progress
from llm_engineering.cli.output import job_line


def job(status: str = "running", **changes: object) -> Job:
    values: dict[str, object] = dict(
        id="20260101-000000-abcdef", name="faq", status=status, base_model="m", dataset_sha256=None,
        examples=8, hyperparameters={"max_minutes": 0.5}, created=0.0, started=None,
        finished=None, pid=None, attempts=1, cancel_requested=False, adapter=None, error=None,
    )  # fmt: skip
    values.update(changes)
    return Job(**values)  # type: ignore[arg-type]


def test_the_training_line_names_each_stage_and_never_shows_an_unknown_total() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    with training_progress(console) as show:
        show(JobView(job("queued")), False)
        show(JobView(job(), stage="worker"), True)
        show(JobView(job(), stage="loading"), True)
        show(JobView(job(), step=2, total=5, loss=1.25, eta_s=52, stage="step"), True)
        cancelled = JobResult("cancelled", step=3)
        show(JobView(job(), step=3, total=5, stage="finished", result=cancelled), True)
    shown = screen.getvalue()
    assert "None" not in shown and "0/0" not in shown
    for words in ("queued (another process runs jobs)", "starting", "loading the base model"):
        assert words in shown
    assert "training" in shown and "step 2/5  loss 1.250  eta 52s" in shown
    assert "cancelled" in shown and "finished" not in shown


def test_a_job_stopped_by_its_time_limit_says_so() -> None:
    budget = JobResult("succeeded", step=16, total=30, budget_reached=True)
    line = job_line(JobView(job("succeeded", adapter="faq@1"), 16, 30, result=budget))
    assert "succeeded" in line and "step 16/30" in line
    assert "stopped by the time limit (max_minutes 0.5)" in line
    running = job_line(JobView(job(cancel_requested=True), 2, 5, eta_s=40))
    assert "eta 40s" in running and "cancel requested" in running


def test_events_read_as_local_times_and_words() -> None:
    stamp = time.time()
    step = {"t": stamp, "event": "step", "step": 2, "total": 5, "loss": 1.5, "learning_rate": 1e-3,
            "tokens": 100, "tokens_per_s": 412.4, "elapsed_s": 3.0, "eta_s": 52.3}  # fmt: skip
    clock = time.strftime("%H:%M:%S", time.localtime(stamp))
    assert event_line(step) == f"{clock}  step 2/5  loss 1.5000  lr 1.00e-03  412 tok/s  eta 52s"
    finished = {"t": stamp, "event": "finished", "status": "cancelled", "error": None}
    assert event_line(finished) == f"{clock}  finished  status cancelled"
    old = time.mktime((2020, 1, 2, 3, 4, 5, 0, 0, -1))
    assert event_line({"t": old, "event": "saving", "step": 30}) == (
        "2020-01-02 03:04:05  saving  step 30"
    )
