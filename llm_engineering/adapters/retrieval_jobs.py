"""Retrieval tuning as a job: queued like a QLoRA job, run by the process that writes the index.

A QLoRA job trains in a worker process of its own. Tuning the embedding model ends by
building a collection and switching the live index over, which only the index's writer may
do (embedded Chroma has one writing process), so its jobs run in that process: the server
(:class:`RetrievalJobs`, started with the indexer) or ``llm-eng tune-retrieval`` when no
server runs. Everything else is the job system's: the row in ``jobs`` (kind ``retrieval``),
the folder with its request and events, ``get_job``, ``cancel_job``, ``resume_job``, the
dashboard's job page and its loss chart.

A run the process stops (a server going down) is queued again and starts over when the
writer runs jobs next (tuning takes minutes; no checkpoint is kept); one cancelled stops at
its next step or batch and switches nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from llm_engineering.adapters.hyperparams import checked
from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.jobs import Job, JobStore
from llm_engineering.adapters.records import JobResult
from llm_engineering.errors import LlmEngError, UserError
from llm_engineering.index_store.service import IndexService
from llm_engineering.retrieval.contrastive import TuneConfig
from llm_engineering.retrieval.pairs import corpus_pairs, load_user_pairs, split_heldout
from llm_engineering.retrieval.tuner import RetrievalTuner, TuningOptions

__all__ = ["RetrievalJobs", "queue_tuning", "tuning_config"]

log = logging.getLogger(__name__)

REQUEST = JobFolder.TUNING
RESULT = JobFolder.TUNING_RESULT
PAIRS = "pairs.jsonl"
MAX_RESUMES = 2


def tuning_config(given: dict[str, Any] | None) -> TuneConfig:
    """``TuneConfig`` with the values given (JSON types); unknown names, values of the wrong type
    and values out of range are refused, each named."""
    return checked(TuneConfig, given, "tuning setting")


def queue_tuning(
    store: JobStore,
    index: IndexService,
    *,
    pairs: Path | None = None,
    name: str = "retrieval",
    min_gain: float = 0.01,
    heldout_fraction: float = 0.2,
    settings: dict[str, Any] | None = None,
    questions: int = 0,
    hard_negatives: bool = False,
) -> Job:
    """Check the request now (every bad line of ``pairs`` named), then queue it.

    Raises:
        UserError: bad settings, too few pairs, or a pairs file with bad lines (DatasetError).
    """
    config = tuning_config(settings)
    if not 0 < heldout_fraction < 1:
        raise UserError("heldout_fraction must be between 0 and 1")
    if pairs is not None:
        if questions:
            raise UserError("questions are written for tuning without pairs of your own: give one")
        roots = [*index.settings.watch, *map(Path, index.ledger.roots())]
        found, sha = load_user_pairs(pairs, index.ledger, roots)
        split_heldout(found, heldout_fraction)
    else:
        found, sha = corpus_pairs(index.ledger), None
        if len(found) + questions < 20:
            raise UserError(
                f"the documents' titles and headings give only {len(found)} usable pair(s); "
                "give pairs of your own (a JSONL of query and positives), or ask the local "
                "model to write questions (questions=200)"
            )
    options = TuningOptions(
        None, heldout_fraction, min_gain, hard_negatives=hard_negatives, config=config,
        questions=questions,
    )  # fmt: skip
    values = {**asdict(options), "pairs_path": str(pairs) if pairs else None, "name": name}
    job, folder = store.create(name, index.live.label, asdict(config), kind="retrieval")
    if pairs is not None:
        shutil.copyfile(pairs, folder.path / PAIRS)
    (folder.path / REQUEST).write_text(json.dumps(values, indent=2), encoding="utf-8")
    store.update(job.id, status="queued", dataset_sha256=sha, examples=len(found))
    return store.get(job.id)


def _options(folder: JobFolder) -> TuningOptions:
    values = json.loads((folder.path / REQUEST).read_text(encoding="utf-8"))
    pairs = folder.path / PAIRS
    return TuningOptions(
        pairs if pairs.is_file() else None,
        values["heldout_fraction"],
        values["min_gain"],
        values["max_pairs"],
        values["hard_negatives"],
        TuneConfig(**values["config"]),
        values.get("pairs_path"),
        values.get("questions", 0),
    )


class RetrievalJobs:
    """Runs queued retrieval jobs one at a time, while this process writes the index.

    Args:
        index: The index (this process its writer, or waiting to become it).
        store: The jobs.
        ready: Whether the index may be tuned now (the server waits for its start-up reconcile).
    """

    def __init__(
        self,
        index: IndexService,
        store: JobStore,
        ready: Callable[[], bool] = lambda: True,
        poll_s: float = 1.0,
    ):
        self.index = index
        self.store = store
        self.ready = ready
        self.poll_s = poll_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._current: str | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="retrieval-jobs", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop a run at its next step (it is queued again) and the loop."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.index.is_writer and self.ready():
                    self.tick()
            except Exception:
                log.exception("retrieval jobs")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def tick(self) -> bool:
        """Requeue runs a stopped process left, then run the oldest queued job to its end.

        Returns:
            Whether a job ran.
        """
        for job in self.store.jobs(["running"], limit=100, kind="retrieval"):
            if job.id != self._current:
                self._stopped(job, "the process running it stopped")
        queued = self.store.jobs(["queued"], limit=100, kind="retrieval")
        if not queued or self._stopping.is_set():
            return False
        self.run(queued[-1])
        return True

    def _stopped(self, job: Job, reason: str) -> None:
        events = self.store.folder(job.id).event_log()
        try:
            if job.attempts <= MAX_RESUMES:
                self.store.update(job.id, only_if=["running"], status="queued", pid=None)
                events.emit("requeued", reason=reason, attempt=job.attempts)
            else:
                self.store.update(
                    job.id, status="interrupted", finished=time.time(), pid=None,
                    error=f"stopped {job.attempts} times, last because {reason}; resume it",
                )  # fmt: skip
        finally:
            events.close()

    def run(self, job: Job) -> None:
        """Run ``job`` here, now, to its end (the CLI calls this when no server runs)."""
        folder = self.store.folder(job.id)
        if not self.store.update(
            job.id, only_if=["queued"], status="running", started=job.started or time.time(),
            attempts=job.attempts + 1, pid=os.getpid(), error=None,
        ):  # fmt: skip
            return  # cancelled meanwhile
        self._current = job.id
        folder.clear_result()
        events = folder.event_log()
        events.emit("started", attempt=job.attempts + 1, model=self.index.live.label)
        stop = threading.Event()
        watching = threading.Thread(target=self._watch, args=(folder, stop), daemon=True)
        watching.start()
        try:
            tuner = RetrievalTuner(self.index, lambda event, v: events.emit(event, **v), stop)
            result = tuner.run(_options(folder))
        except LlmEngError as exc:
            self._end(job, folder, JobResult("failed", error=str(exc)), status="failed")
            events.emit("failed", error=str(exc))
            return
        except Exception as exc:
            log.exception("retrieval job %s", job.id)
            self._end(job, folder, JobResult("failed", error=repr(exc)), status="failed")
            events.emit("failed", error=repr(exc))
            return
        finally:
            stop.set()
            self._current = None
            events.close()
        if result.status == "cancelled" and not folder.cancelled:
            self._stopped(self.store.get(job.id), "the process running it stopped")
            return
        if result.status == "cancelled":
            self._end(job, folder, JobResult("cancelled", reason=result.reason), "cancelled")
            return
        (folder.path / RESULT).write_text(json.dumps(result.to_dict(), indent=2), encoding="utf-8")
        training = result.training
        ended = JobResult(
            "succeeded", step=training.get("steps"), total=training.get("total_steps"),
            final_loss=training.get("final_loss"), seconds=training.get("seconds"),
        )  # fmt: skip
        self._end(
            job, folder, ended, "succeeded",
            adapter=f"retrieval-v{result.version}" if result.status == "switched" else None,
            error=None if result.status == "switched" else result.reason,
        )  # fmt: skip

    def _watch(self, folder: JobFolder, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            if folder.cancelled or self._stopping.is_set():
                stop.set()

    def _end(self, job: Job, folder: JobFolder, result: JobResult, status: str, **row: Any) -> None:
        folder.write_result(result)
        with contextlib.suppress(LlmEngError):
            self.store.update(
                job.id, status=status, finished=time.time(), pid=None,
                **({"error": result.error} if status == "failed" else row),
            )  # fmt: skip
