"""How a training job looks while it runs and afterwards: the progress line and its events."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from llm_engineering.adapters.job_view import JobView

__all__ = ["event_line", "job_stage", "training_progress"]

_STAGES = {
    "worker": "starting", "loading": "loading the base model", "chosen": "loading the base model",
    "resumed": "resuming from its checkpoint", "started": "training", "step": "training",
    "checkpoint": "training", "eval": "held-out loss", "saving": "saving the adapter",
    "general": "asking the base the general prompts",
    "checking": "checking its answers", "answer_check": "checking what it kept",
    "kept_check": "exporting the adapter",
    "requeued": "queued again",
}  # fmt: skip
"""What each latest event means the job is doing (the worker's event names)."""


def job_stage(view: JobView, runs_here: bool) -> str:
    """What the job is doing now, in words: ``loading the base model``, ``training``, ..."""
    if view.job.status == "queued":
        return "queued" if runs_here else "queued (another process runs jobs)"
    if view.stage == "finished":  # the worker has ended; its runner has yet to record it
        return view.result.status if view.result else "finishing"
    if view.job.cancel_requested:
        return "cancelling"
    return _STAGES.get(view.stage, view.stage or "starting")


def _figures(view: JobView) -> str:
    parts = [f"step {view.step}/{view.total}"] if view.total else []
    if view.loss is not None:
        parts.append(f"loss {view.loss:.3f}")
    if view.eta_s is not None and view.stage in ("step", "checkpoint"):
        parts.append(f"eta {view.eta_s:.0f}s")
    return "  ".join(parts)


@contextmanager
def training_progress(console: Console | None = None) -> Iterator[Callable[[JobView, bool], None]]:
    """A transient ``stage [bar] step 2/5  loss 1.234  eta 52s`` line on stderr; call it with
    each new view and whether this process runs the jobs."""
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[figures]}"),
        console=console or Console(stderr=True), transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("waiting for the job", total=None, figures="")

        def show(view: JobView, runs_here: bool) -> None:
            progress.update(
                task, description=job_stage(view, runs_here), completed=view.step,
                total=view.total or None, figures=_figures(view), refresh=True,
            )  # fmt: skip

        yield show


def event_line(event: dict[str, Any]) -> str:
    """One of a job's events for a person: local time, then what happened."""
    stamp = event.get("t")
    when = time.localtime(stamp) if isinstance(stamp, int | float) else None
    clock = ""
    if when is not None:
        today = time.strftime("%Y-%m-%d") == time.strftime("%Y-%m-%d", when)
        clock = time.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M:%S", when)
    name = str(event.get("event", "?"))
    fields = {k: v for k, v in event.items() if k not in ("t", "event") and v is not None}
    if name == "step":
        text = (
            f"step {fields.get('step')}/{fields.get('total')}  loss {fields.get('loss', 0):.4f}  "
            f"lr {fields.get('learning_rate', 0):.2e}  {fields.get('tokens_per_s', 0):.0f} tok/s  "
            f"eta {fields.get('eta_s', 0):.0f}s"
        )
    elif name == "chosen":
        chosen = fields.get("chosen") or {}
        values = fields.get("hyperparameters") or {}
        text = "chose " + (", ".join(f"{k} = {values.get(k)}" for k in chosen) or "nothing")
    elif name == "answer_check":
        checks = [f"{k} F1 {v['f1']:.2f}" for k, v in fields.items() if isinstance(v, dict)]
        text = "answer check: " + ", ".join(checks)
        if fields.get("verdict"):
            text += f" ({fields['verdict']})"
    elif name == "kept_check":
        text = (
            f"kept check: {fields.get('kept', 0):.0%} of {fields.get('prompts', 0)} general "
            f"prompts answered as the base does, {fields.get('leaked', 0):.0%} leak the "
            "training answers' names"
        )
        if fields.get("note"):
            text += f" ({fields['note']})"
    else:
        text = "  ".join([name, *(f"{k} {_value(v)}" for k, v in fields.items())])
    return f"{clock}  {text}".strip()


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)
