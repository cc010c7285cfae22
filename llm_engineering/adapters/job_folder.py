"""A training job's folder, ``jobs/ID/``: every file in it named once, with its readers and writers.

The service writes the request before the job is queued: ``job.json`` (what to train, a
:class:`~llm_engineering.adapters.records.JobSpec`), ``dataset.jsonl`` (the validated examples)
and ``eval.jsonl`` (those held out). The worker reads it and writes the rest:
``events.jsonl`` as it goes (:mod:`~llm_engineering.adapters.events`), ``checkpoints/last/``,
``adapter/`` (``peft/`` and ``adapter.gguf``, what the registry takes in), ``loss.png`` and,
however it stops, ``result.json`` (a :class:`~llm_engineering.adapters.records.JobResult`);
its output goes to ``worker.log``. ``cancel``, present, asks a running worker to stop at its
next step. The folder is the job's durable record: its row in ``state.sqlite`` can be made
again from it (:mod:`~llm_engineering.adapters.job_rows`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_engineering.adapters.datasets import Example
from llm_engineering.adapters.events import EventLog, EventTail, read_events
from llm_engineering.adapters.records import JobResult, JobSpec
from llm_engineering.storage import write_whole

__all__ = ["JobFolder"]


@dataclass(frozen=True)
class JobFolder:
    """``jobs/ID/`` of one job. Only the service (the request), the worker (its progress, the
    adapter and the result), the runner (the worker's log, a requeue event) and a cancel
    (the ``cancel`` flag) write here."""

    SPEC = "job.json"
    DATASET = "dataset.jsonl"
    HELDOUT = "eval.jsonl"
    EVENTS = "events.jsonl"
    RESULT = "result.json"
    CANCEL = "cancel"
    WORKER_LOG = "worker.log"
    LOSS_PLOT = "loss.png"
    TUNING = "retrieval.json"
    """A retrieval job's request (:mod:`llm_engineering.adapters.retrieval_jobs`), in place of ``job.json``."""
    TUNING_RESULT = "retrieval-result.json"

    path: Path

    @property
    def id(self) -> str:
        return self.path.name

    # -- where each file is -------------------------------------------------------------

    @property
    def spec_file(self) -> Path:
        return self.path / self.SPEC

    @property
    def events_file(self) -> Path:
        return self.path / self.EVENTS

    @property
    def result_file(self) -> Path:
        return self.path / self.RESULT

    @property
    def checkpoint(self) -> Path:
        """The checkpoint a resumed run starts from (a folder)."""
        return self.path / "checkpoints" / "last"

    @property
    def worker_log(self) -> Path:
        return self.path / self.WORKER_LOG

    @property
    def loss_plot_file(self) -> Path:
        return self.path / self.LOSS_PLOT

    @property
    def peft(self) -> Path:
        """The trained adapter as peft saved it (a folder)."""
        return self.path / "adapter" / "peft"

    @property
    def gguf(self) -> Path:
        """The adapter exported for llama.cpp (absent when the base is not a GGUF)."""
        return self.path / "adapter" / "adapter.gguf"

    # -- the request --------------------------------------------------------------------

    def create(self) -> None:
        self.path.mkdir(parents=True)

    def write_request(
        self, spec: JobSpec, examples: Sequence[Example], heldout: Sequence[Example]
    ) -> None:
        """What the worker reads: the spec, the examples to train on and those held out."""
        _write_examples(self.path / self.DATASET, examples)
        _write_examples(self.path / self.HELDOUT, heldout)
        self.write_spec(spec)

    def write_spec(self, spec: JobSpec) -> None:
        self.spec_file.write_text(spec.to_json())

    def has_spec(self) -> bool:
        return self.spec_file.is_file()

    def spec(self) -> JobSpec:
        """Its ``job.json``.

        Raises:
            OSError, ValueError, KeyError, TypeError, UserError: it cannot be read, or holds
                values this version refuses.
        """
        return JobSpec.from_json(self.spec_file.read_text(encoding="utf-8"))

    def spec_values(self) -> dict[str, Any]:
        """Its ``job.json`` as plain JSON, unchecked (for what reads only a few keys)."""
        values: dict[str, Any] = json.loads(self.spec_file.read_text(encoding="utf-8"))
        return values

    def examples(self) -> list[Example]:
        return _read_examples(self.path / self.DATASET)

    def heldout(self) -> list[Example]:
        """The held-out examples ([] for a job queued before they existed)."""
        return _read_examples(self.path / self.HELDOUT)

    # -- while it runs ------------------------------------------------------------------

    def event_log(self) -> EventLog:
        """A writer appending to its events (only one process may hold one at a time)."""
        return EventLog(self.events_file)

    def events(self) -> list[dict[str, Any]]:
        """Its events, oldest first (a half-written last line is skipped)."""
        return read_events(self.events_file)

    def events_text(self) -> str:
        """Its events as written so far ('' before its worker has started)."""
        path = self.events_file
        return path.read_text(encoding="utf-8") if path.is_file() else ""

    def events_stamp(self) -> tuple[int, int]:
        """The events' size and modification time: changes whenever one is appended."""
        try:
            stat = self.events_file.stat()
        except FileNotFoundError:
            return (0, 0)
        return (stat.st_size, stat.st_mtime_ns)

    def tail(self, offset: int = 0) -> EventTail:
        """Its events from byte ``offset`` on, read as they are appended."""
        return EventTail(self.events_file, offset)

    def request_cancel(self) -> None:
        (self.path / self.CANCEL).touch()

    @property
    def cancelled(self) -> bool:
        """Whether a cancel was asked for."""
        return (self.path / self.CANCEL).exists()

    # -- how it ended -------------------------------------------------------------------

    def tuning_result(self) -> dict[str, Any] | None:
        """What a retrieval job decided (the tuner's result), once it has."""
        path = self.path / self.TUNING_RESULT
        values: dict[str, Any] | None = (
            json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        )
        return values

    def write_result(self, result: JobResult) -> None:
        write_whole(self.result_file, result.to_json())

    def clear_result(self) -> None:
        """Forget an earlier run's result, before a new run starts."""
        self.result_file.unlink(missing_ok=True)

    def result(self) -> JobResult | None:
        """The worker's result, or None while there is none (or it cannot be read)."""
        path = self.result_file
        if not path.is_file():
            return None
        try:
            return JobResult.from_json(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, TypeError):
            return None

    def loss_plot(self) -> Path | None:
        """``loss.png`` once the worker has written it."""
        plot = self.loss_plot_file
        return plot if plot.is_file() else None


def _write_examples(path: Path, examples: Sequence[Example]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            row = {**example.to_json(), "line": example.line}
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _read_examples(path: Path) -> list[Example]:
    if not path.is_file():
        return []
    with path.open(encoding="utf-8") as handle:
        return [Example(**json.loads(line)) for line in handle if line.strip()]
