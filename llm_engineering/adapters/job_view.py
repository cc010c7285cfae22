"""What a job looks like from outside: its row plus the progress its worker reported."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm_engineering.adapters.damaged import UNREADABLE, Damaged, damaged
from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.jobs import ACTIVE, Job
from llm_engineering.adapters.records import JobResult, JobSpec
from llm_engineering.errors import UserError

__all__ = ["JobView"]


@dataclass
class JobView:
    """A job with its progress as its worker last reported it."""

    job: Job
    step: int = 0
    total: int = 0
    loss: float | None = None
    """While it runs, the latest step's training loss; once it has succeeded, its final loss:
    the mean over the last epoch, the figure its adapter's card, ``get_job``, the CLI and the
    dashboard all show (one step's loss jumps about; a final figure should not)."""
    learning_rate: float | None = None
    tokens_per_s: float | None = None
    eta_s: float | None = None
    stage: str = ""
    hyperparameters: dict[str, Any] | None = None
    """What it trains with, once the worker has chosen what the user did not set."""
    chosen: dict[str, str] = field(default_factory=dict)
    eval_loss: float | None = None
    """The latest held-out loss (once it has succeeded, the final one, as the card's)."""
    spec: JobSpec | None = None
    """What was asked (None while the job is still being validated, or when damaged)."""
    damaged: Damaged | None = None
    """Set when its spec cannot be read; the rest of the view still is."""
    events: list[dict[str, Any]] = field(default_factory=list)
    result: JobResult | None = None
    loss_plot: Path | None = None
    tuning: dict[str, Any] | None = None
    """A retrieval job's decision once it has ended: switched or kept, why, both indexes'
    held-out scores, the shadow build (:mod:`llm_engineering.retrieval.tuner`)."""

    @classmethod
    def read(cls, job: Job, folder: JobFolder, tail: int = 10) -> JobView:
        """``job`` with the progress in its folder's events, result and loss plot.

        Args:
            tail: How many of the latest events to keep in ``events`` (0: none).
        """
        events = folder.events()
        view = cls(job=job, events=events[-tail:] if tail else [])
        for event in events:
            if event.get("event") == "step":  # .get: a line edited by hand shows what it has
                view.step = event.get("step", view.step)
                view.total = event.get("total", view.total)
                view.loss = event.get("loss")
                view.learning_rate = event.get("learning_rate")
                view.tokens_per_s = event.get("tokens_per_s")
                view.eta_s = event.get("eta_s")
            elif event.get("event") == "chosen":
                view.hyperparameters = event.get("hyperparameters")
                view.chosen = event.get("chosen") or {}
            elif event.get("event") == "eval":
                view.eval_loss = event.get("eval_loss")
            elif event.get("event") in ("started", "resumed"):
                view.step = event.get("step", view.step)
                view.total = event.get("total", view.total)
            view.stage = str(event.get("event", ""))
        if job.status not in ACTIVE:
            view.eta_s = None
        view.result = folder.result()
        if view.result is not None and view.result.status == "succeeded":
            view.loss = view.result.final_loss if view.result.final_loss is not None else view.loss
            view.eval_loss = (
                view.result.eval_loss if view.result.eval_loss is not None else view.eval_loss
            )
        if folder.has_spec():
            try:
                view.spec = folder.spec()
            # Values this version refuses (UserError) too: the row and events still show.
            except (*UNREADABLE, UserError) as exc:
                view.damaged = damaged(f"job {job.id}", folder.spec_file, exc)
        view.loss_plot = folder.loss_plot()
        view.tuning = folder.tuning_result()
        return view

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``result`` with the keys its worker wrote."""
        data = asdict(self)
        data["result"] = self.result.to_dict() if self.result is not None else None
        data["spec"] = self.spec.to_dict() if self.spec is not None else None
        data["loss_plot"] = str(self.loss_plot) if self.loss_plot else None
        return data
