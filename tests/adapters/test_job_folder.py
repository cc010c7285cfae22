"""A job folder's layout has one owner: its file names are written in job_folder.py alone, and
what lies outside adapters/ sees jobs and adapters through TrainingService only."""

from __future__ import annotations

import ast
from pathlib import Path

import llm_engineering
from llm_engineering.adapters.job_folder import JobFolder

PACKAGE = Path(llm_engineering.__file__).parent
OWNER = PACKAGE / "adapters" / "job_folder.py"
FILE_NAMES = {
    JobFolder.SPEC, JobFolder.DATASET, JobFolder.HELDOUT, JobFolder.EVENTS, JobFolder.RESULT,
    JobFolder.WORKER_LOG, JobFolder.LOSS_PLOT,
}  # fmt: skip
SERVICE_INSIDES = {"store", "registry", "resolver", "JobStore", "JobFolder", "AdapterRegistry"}


def spelled(root: Path, names: set[str]) -> list[str]:
    """``path:line name`` for each string constant in code under ``root`` that is one of
    ``names`` (docstrings and descriptions that mention a name do not count)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(root)}:{node.lineno} {node.value}")
    return found


def reached_into(root: Path, names: set[str]) -> list[str]:
    """``path:line name`` for each attribute or import of one of ``names`` outside ``adapters/``."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.is_relative_to(root / "adapters"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in names:
                found.append(f"{path.relative_to(root)}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom):
                found += [
                    f"{path.relative_to(root)}:{node.lineno} {alias.name}"
                    for alias in node.names
                    if alias.name in names
                ]
    return found


def test_the_file_names_of_a_job_folder_are_spelled_in_job_folder_alone() -> None:
    elsewhere = [
        place
        for place in spelled(PACKAGE, FILE_NAMES)
        if not place.startswith("adapters/job_folder")
    ]
    assert elsewhere == []
    assert len(spelled(OWNER.parent, FILE_NAMES)) == len(FILE_NAMES)


def test_nothing_outside_adapters_reaches_past_the_training_service() -> None:
    assert reached_into(PACKAGE, SERVICE_INSIDES) == []


def test_a_succeeded_job_shows_the_final_loss_its_card_shows_and_a_running_one_its_last_step(
    tmp_path: Path,
) -> None:
    """One loss figure (issue 29, item 3): the card said 0.0921 (the last epoch's mean) while
    the job page and the CLI said 0.123 (the last step's)."""
    from llm_engineering.adapters.events import EventLog
    from llm_engineering.adapters.job_view import JobView
    from llm_engineering.adapters.jobs import JobStore
    from llm_engineering.adapters.records import JobResult
    from llm_engineering.cli.output import job_line

    store = JobStore(tmp_path)
    job, folder = store.create("faq", "base", {})
    log = EventLog(folder.events_file)
    for step, loss in enumerate([0.9, 0.08, 0.0642, 0.123], start=1):
        log.emit("step", step=step, total=4, loss=loss)
    log.emit("eval", step=4, eval_loss=0.31)
    log.close()
    running = JobView.read(store.get(job.id), folder)
    assert running.loss == 0.123 and running.eval_loss == 0.31
    folder.write_result(JobResult("succeeded", step=4, total=4, final_loss=0.0921, eval_loss=0.3))
    store.update(job.id, status="succeeded")
    done = JobView.read(store.get(job.id), folder)
    assert done.loss == 0.0921 and done.eval_loss == 0.3
    assert "loss 0.092" in job_line(done) and done.to_dict()["loss"] == 0.0921
    store.close()
