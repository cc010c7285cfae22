"""How long a job will train, told before it is queued, from the rate an earlier job on the
same base measured on this machine.

The worker reports, when it starts, the tokens of an epoch and the characters they came from
(``started``: ``tokens_per_epoch``, ``chars_per_epoch``), then its throughput at each step
(``step``: ``tokens_per_s``). A new job's tokens are its examples' characters over that
job's characters per token (each example at most ``max_seq_len``), times the epochs its
steps make; at the measured tokens per second that is its training time. Where no job on
the base has reported yet, the estimate says so rather than guess.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from llm_engineering.adapters.datasets import Example
from llm_engineering.adapters.defaults import planned_steps, replay_count, steps_per_epoch
from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.errors import UserError

__all__ = [
    "JOBS_SEARCHED",
    "MAX_PLANNED_STEPS",
    "Estimate",
    "Rate",
    "Run",
    "check_plan",
    "estimate",
    "measured_rate",
]

MAX_PLANNED_STEPS = 1_000_000
"""Most optimizer steps one job may plan: more would hold the queue for weeks on any machine."""
REPLAY_CHARS = 160
"""Characters of a replayed general example (prompt and the base's answer; the default
model's measured mean): the base's answers are made in the worker, after the estimate."""
JOBS_SEARCHED = 50
"""How many of the newest jobs are searched for one on the same base that measured a rate."""

Run = tuple[str, Sequence[dict[str, Any]]]
"""A job's id and its events."""


@dataclass(frozen=True)
class Rate:
    tokens_per_s: float
    chars_per_token: float
    job_id: str
    """The job that measured it."""
    device: str = ""
    """Where that job trained (``cpu``, ``cuda``)."""


@dataclass(frozen=True)
class Estimate:
    """A job's planned steps and, where a rate is known, its training time."""

    steps: int
    minutes: float | None
    """None: no rate measured on this base here yet."""
    basis: str
    """How it was reached, in words (or why there is no time)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Estimate:
        return cls(int(values["steps"]), values.get("minutes"), str(values.get("basis", "")))


def measured_rate(runs: Iterable[Run]) -> Rate | None:
    """The rate the first of ``runs`` (jobs on one base, newest first) that trained a step
    reported, or None."""
    for job_id, events in runs:
        started: dict[str, Any] | None = None
        last_step: dict[str, Any] | None = None
        for event in events:
            if event.get("event") == "started":
                started, last_step = event, None  # a resumed run measures anew
            elif event.get("event") == "step" and started is not None:
                last_step = event
        if started is None or last_step is None:
            continue
        tokens = started.get("tokens_per_epoch")
        chars = started.get("chars_per_epoch")
        speed = last_step.get("tokens_per_s")
        numbers = (tokens, chars, speed)
        if all(isinstance(n, int | float) and math.isfinite(n) and n > 0 for n in numbers):
            device = str(started.get("device") or "")
            return Rate(float(speed), float(chars) / float(tokens), job_id, device)  # type: ignore[arg-type]
    return None


def estimate(
    config: QLoRAConfig, given: Collection[str], examples: Sequence[Example], rate: Rate | None
) -> Estimate:
    """How many steps the job makes over ``examples`` (those it trains on), and how long."""
    steps = planned_steps(config, given, len(examples))
    if rate is None:
        return Estimate(
            steps,
            None,
            f"{steps:,} steps; no training rate measured on this base here yet (the first "
            "job's steps measure it)",
        )
    replayed = replay_count(config, given)
    per_epoch = sum(min(e.chars / rate.chars_per_token, config.max_seq_len) for e in examples)
    per_epoch += replayed * REPLAY_CHARS / rate.chars_per_token
    epochs = steps / steps_per_epoch(len(examples) + replayed, config)
    tokens = per_epoch * epochs
    minutes = tokens / rate.tokens_per_s / 60
    return Estimate(
        steps,
        round(minutes, 2),
        f"{steps:,} steps, about {tokens:,.0f} tokens at {rate.tokens_per_s:,.0f} tokens/s, "
        f"measured by job {rate.job_id} on this base{f' ({rate.device})' if rate.device else ''}"
        f": about {_duration(minutes)}",
    )


def check_plan(config: QLoRAConfig, planned: Estimate) -> None:
    """Refuse a plan that would hold the queue or cannot end within ``max_minutes``.

    Raises:
        UserError: more than :data:`MAX_PLANNED_STEPS` steps, or an estimate past
            ``max_minutes`` (the message gives it).
    """
    if planned.steps > MAX_PLANNED_STEPS:
        raise UserError(
            f"the job plans {planned.steps:,} steps; a job makes at most "
            f"{MAX_PLANNED_STEPS:,}: lower epochs or max_steps, or raise batch_size"
        )
    budget = config.max_minutes
    if budget and planned.minutes is not None and planned.minutes > budget:
        raise UserError(
            f"the job cannot finish within max_minutes={budget:g}: {planned.basis}; lower "
            "max_steps or epochs, or raise max_minutes (0: no time limit)"
        )


def _duration(minutes: float) -> str:
    if minutes < 1:
        return f"{minutes * 60:.0f} s"
    if minutes < 120:
        return f"{minutes:.0f} minutes"
    if minutes < 48 * 60:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes / 1440:,.0f} days"
