"""A job's two records: :class:`JobSpec` (what to train) and :class:`JobResult` (how it ended).

The service writes the spec before a job is queued; the worker reads it, and writes the
result when it stops, whatever the reason; the job runner reads that to record the job's end
and register its adapter (where each lies: :class:`~llm_engineering.adapters.job_folder.JobFolder`).
Both are plain dataclasses whose JSON keys are the field names, so folders written by
earlier versions read unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from llm_engineering.adapters.estimate import Estimate
from llm_engineering.adapters.hyperparams import QLoRAConfig

__all__ = ["DatasetSummary", "JobResult", "JobSpec", "ResultStatus"]

ResultStatus = Literal["succeeded", "failed", "cancelled", "interrupted"]

# What a succeeded result has always held, even where the value is null.
_SUCCEEDED_ALWAYS = frozenset(
    ("first_loss", "final_loss", "best_loss", "time_to_first_step_s", "gguf_error")
)


@dataclass(frozen=True)
class DatasetSummary:
    """The validated dataset a job trains on (its examples are in the job's folder)."""

    source: str
    sha256: str
    examples: int
    formats: dict[str, int]


@dataclass(frozen=True)
class JobSpec:
    """What to train: everything the worker needs besides the examples."""

    id: str
    name: str
    base_model: str
    base_cache: str
    """Where GGUF bases are kept converted for training (one folder per GGUF)."""
    hyperparameters: QLoRAConfig
    dataset: DatasetSummary
    given: tuple[str, ...] | None = None
    """Hyperparameters the user set; the rest are chosen when the model loads. None (a job
    queued by an older version): every value is used as it is."""
    eval_examples: int = 0
    """Examples held out (split off the dataset, or given apart)."""
    system_prompt: str | None = None
    """The system message every chat example starts with (None: none, or they differ)."""
    estimate: Estimate | None = None
    """Its planned steps and training time when it was queued (None: queued before estimates)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "base_model": self.base_model,
            "base_cache": self.base_cache,
            "hyperparameters": self.hyperparameters.to_dict(),
            "dataset": asdict(self.dataset),
            "given": None if self.given is None else list(self.given),
            "eval_examples": self.eval_examples,
            "system_prompt": self.system_prompt,
            "estimate": self.estimate.to_dict() if self.estimate else None,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> JobSpec:
        return cls(
            id=values["id"],
            name=values["name"],
            base_model=values["base_model"],
            base_cache=values["base_cache"],
            hyperparameters=QLoRAConfig.from_dict(values["hyperparameters"]),
            dataset=DatasetSummary(**values["dataset"]),
            given=None if values.get("given") is None else tuple(values["given"]),
            eval_examples=int(values.get("eval_examples", 0)),
            system_prompt=values.get("system_prompt"),
            estimate=Estimate.from_dict(values["estimate"]) if values.get("estimate") else None,
        )

    @classmethod
    def from_json(cls, text: str) -> JobSpec:
        return cls.from_dict(json.loads(text))


@dataclass
class JobResult:
    """How a worker ended.

    ``succeeded`` fills the training figures; ``failed`` gives ``error``; ``interrupted``
    gives ``reason`` (the job resumes from its last checkpoint); ``cancelled`` only ``step``.
    On disk a field left at None is left out, as the worker has always written it.
    """

    status: ResultStatus
    step: int | None = None
    """Optimizer steps done (absent on a failure)."""
    total: int | None = None
    error: str | None = None
    reason: str | None = None
    budget_reached: bool | None = None
    first_loss: float | None = None
    """Mean loss over the first epoch's worth of steps (an epoch of the user's examples)."""
    final_loss: float | None = None
    """Mean loss over the last epoch's worth of steps (an epoch of the user's examples)."""
    best_loss: float | None = None
    train_tokens: int | None = None
    device: str | None = None
    base_source: str | None = None
    """The transformers model folder (or hub id) the job trained on."""
    base_gguf: str | None = None
    """The GGUF the base came from ('' = not a GGUF base)."""
    base_gguf_sha256: str | None = None
    seconds: float | None = None
    time_to_first_step_s: float | None = None
    peak_rss_mib: float | None = None
    peak_gpu_mib: float | None = None
    libraries: dict[str, str] | None = None
    gguf_error: str | None = None
    """Why the adapter has no GGUF export (it is still registered with its peft weights)."""
    export: dict[str, Any] | None = None
    """What the GGUF export wrote: tensor pairs, rank, alpha."""
    hyperparameters: dict[str, Any] | None = None
    """What the job trained with, the chosen values included."""
    chosen: dict[str, str] | None = None
    """Hyperparameters chosen (not given), each with why."""
    eval_loss: float | None = None
    """Mean loss on the held-out examples at the end."""
    answer_check: dict[str, Any] | None = None
    """``heldout`` and ``train``: greedy answers scored against the references."""
    verdict: str | None = None
    """Set when the answer check says the adapter did not learn what it was taught."""
    replayed: int | None = None
    """General examples (the base's own answers to packaged prompts) trained with the data."""
    kept_check: dict[str, Any] | None = None
    """General prompts answered by the base and by the adapter: ``kept`` and ``leaked``
    shares, the words looked for, samples (:mod:`llm_engineering.adapters.kept`)."""
    kept_note: str | None = None
    """Set when the adapter forgot too much of what the base knew, with what to change."""

    def metrics(self) -> dict[str, Any]:
        """The figures an adapter card keeps: those the worker reported."""
        names = (
            "first_loss", "final_loss", "best_loss", "seconds", "time_to_first_step_s",
            "peak_rss_mib", "peak_gpu_mib", "device", "budget_reached", "eval_loss",
            "answer_check", "verdict", "chosen", "replayed", "kept_check", "kept_note",
        )  # fmt: skip
        written = self.to_dict()
        return {name: written[name] for name in names if name in written}

    def to_dict(self) -> dict[str, Any]:
        kept = _SUCCEEDED_ALWAYS if self.status == "succeeded" else frozenset()
        return {k: v for k, v in asdict(self).items() if v is not None or k in kept}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> JobResult:
        """Keys this version does not know (a newer worker's) are ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_json(cls, text: str) -> JobResult:
        return cls.from_dict(json.loads(text))
