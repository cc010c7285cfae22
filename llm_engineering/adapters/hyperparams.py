"""QLoRA hyperparameters: declarative, validated at construction, saved as JSON with each adapter.

Defaults follow the QLoRA paper (Dettmers et al., 2023) and current practice: NF4 with
double quantization and bf16 compute, LoRA r=16, alpha=32, dropout 0.05 on every linear
layer, learning rate 2e-4 with a cosine schedule and 3% warm-up, loss on the assistant's
tokens only. Those suit a 7B+ base; for what the user did not set, the job chooses the
learning rate and a least number of steps from the base model's and the dataset's size
when the model loads (:mod:`llm_engineering.adapters.defaults`).
"""

from __future__ import annotations

import json
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any

from llm_engineering.errors import UserError

__all__ = ["QLoRAConfig"]


@dataclass(frozen=True)
class QLoRAConfig:
    r: int = 16
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    learning_rate: float = 2e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    epochs: float = 3.0
    max_steps: int = 0
    """0 = as many as ``epochs`` take."""
    max_minutes: float = 0.0
    """0 = no time budget; otherwise stop and save the adapter after this many minutes of
    training, counted over every run of the job (a resumed job gets what is left)."""
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_seq_len: int = 512
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    checkpoint_every: int = 10
    """Steps between checkpoints (what a resumed job restarts from)."""
    seed: int = 42
    load_in_4bit: bool = True
    double_quant: bool = True
    quant_type: str = "nf4"
    compute_dtype: str = "bfloat16"
    gradient_checkpointing: bool = True
    completion_only: bool = True
    """Loss on assistant turns only (plain-text examples train on everything)."""
    exploding_loss: float = 100.0
    """A loss above this (or NaN) fails the job."""
    eval_fraction: float = 0.1
    """Share of the examples held out to check the adapter (whole prompts, never a phrasing
    also trained on); 0 = none. Only datasets of 20+ examples are split."""
    eval_every: int = 0
    """Steps between held-out loss reports while training (0 = at the end only)."""
    eval_max_answers: int = 24
    """Most held-out (and as many training) prompts the answer check generates for."""

    def __post_init__(self) -> None:
        problems = []
        if self.r < 1:
            problems.append("r must be >= 1")
        if self.lora_alpha <= 0:
            problems.append("lora_alpha must be > 0")
        if not 0 <= self.lora_dropout < 1:
            problems.append("lora_dropout must be in [0, 1)")
        if not 0 < self.learning_rate < 1:
            problems.append("learning_rate must be in (0, 1)")
        if self.lr_scheduler not in ("cosine", "linear", "constant"):
            problems.append("lr_scheduler must be cosine, linear or constant")
        if not 0 <= self.warmup_ratio < 1:
            problems.append("warmup_ratio must be in [0, 1)")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("give epochs > 0 or max_steps > 0")
        if self.max_steps < 0 or self.max_minutes < 0:
            problems.append("max_steps and max_minutes cannot be negative")
        if self.batch_size < 1 or self.gradient_accumulation < 1:
            problems.append("batch_size and gradient_accumulation must be >= 1")
        if not 16 <= self.max_seq_len <= 32768:
            problems.append("max_seq_len must be in [16, 32768]")
        if self.checkpoint_every < 1:
            problems.append("checkpoint_every must be >= 1")
        if self.quant_type not in ("nf4", "fp4"):
            problems.append("quant_type must be nf4 or fp4")
        if self.compute_dtype not in ("bfloat16", "float16", "float32"):
            problems.append("compute_dtype must be bfloat16, float16 or float32")
        if not 0 <= self.eval_fraction <= 0.5:
            problems.append("eval_fraction must be in [0, 0.5]")
        if self.eval_every < 0 or self.eval_max_answers < 0:
            problems.append("eval_every and eval_max_answers cannot be negative")
        if self.exploding_loss <= 0:
            problems.append("exploding_loss must be > 0")
        if problems:
            raise UserError("invalid hyperparameters: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> QLoRAConfig:
        """Build from user input (JSON types); unknown names and values of the wrong type are
        an error naming the setting and the type it takes.

        A whole number given as a float (``8.0``) is taken for an int setting, and an int for
        a float setting; nothing else is converted (``"8"`` is refused, not guessed at).
        """
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(
                f"unknown hyperparameter(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        types = typing.get_type_hints(cls)
        problems = []
        for name, value in values.items():
            try:
                values[name] = _typed(value, types[name])
            except ValueError as exc:
                problems.append(f"{name} must be {exc}, not {value!r}")
        if problems:
            raise UserError("invalid hyperparameters: " + "; ".join(problems))
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> QLoRAConfig:
        return cls.from_dict(json.loads(text))


def _typed(value: Any, kind: Any) -> Any:
    """``value`` as the field type ``kind``; ValueError names the type expected."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError("true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ValueError("a whole number")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise ValueError("a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError("a string")
    # str | list[str]: target_modules
    if isinstance(value, str) or (
        isinstance(value, list) and value and all(isinstance(v, str) for v in value)
    ):
        return value
    raise ValueError("a string or a list of strings")
