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
import math
import re
import typing
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

from llm_engineering.errors import UserError

__all__ = ["RANGES", "QLoRAConfig", "checked"]

T = TypeVar("T")

RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "r": (1, 1024, True, True),
    "lora_alpha": (0, 4096, False, True),
    "lora_dropout": (0, 1, True, False),
    "learning_rate": (0, 1, False, False),
    "warmup_ratio": (0, 1, True, False),
    "epochs": (0, 1000, True, True),
    "max_steps": (0, 1_000_000, True, True),
    "max_minutes": (0, 10_080, True, True),
    "batch_size": (1, 1024, True, True),
    "gradient_accumulation": (1, 1024, True, True),
    "max_seq_len": (16, 32768, True, True),
    "weight_decay": (0, 1, True, True),
    "max_grad_norm": (0, 1000, True, True),
    "checkpoint_every": (1, 1_000_000, True, True),
    "seed": (0, 2**32 - 1, True, True),
    "exploding_loss": (0, 1_000_000, False, True),
    "eval_fraction": (0, 0.5, True, True),
    "eval_every": (0, 1_000_000, True, True),
    "eval_max_answers": (0, 1000, True, True),
    "replay_examples": (0, 1000, True, True),
    "replay_kl": (0, 100, True, True),
    "kept_prompts": (0, 1000, True, True),
}
"""Each number's range: (low, high, low included, high included). Every value must also be
finite: raw JSON allows NaN and Infinity, which would otherwise fail late in the worker (or
pass, and be written into the adapter's card)."""


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
    replay_examples: int = 0
    """General examples mixed into the training data: packaged prompts with the base
    model's own answers, so the adapter keeps what the base knew (0 = none; at most the
    packaged prompts' count). Chosen when not given (:mod:`llm_engineering.adapters.defaults`)."""
    replay_kl: float = 1.0
    """Weight of the pull toward the base's whole next-token distribution on the replayed
    examples (KL divergence, beside their tokens' loss); 0 = their tokens only. Measured on
    the 135M base and 36 examples of a made-up fact: 0, 1, 4 and 16 kept 33%, 46%, 58% and
    60% of general answers, but from 4 up the fact itself was lost on unseen phrasings (4 of
    6 at 4 through ``llm-eng train``, 0 of 6 at 16), so 1."""
    kept_prompts: int = 48
    """Packaged general prompts the kept check asks the trained adapter, as the base answered
    them (:mod:`llm_engineering.adapters.kept`; at most the 48 packaged); 0 = no kept check.
    With this and ``replay_examples`` both 0 the base answers nothing before training."""

    def __post_init__(self) -> None:
        problems = []
        for name, (low, high, closed_low, closed_high) in RANGES.items():
            value = getattr(self, name)
            if not math.isfinite(value):
                problems.append(f"{name} must be a finite number, not {value}")
                continue
            below = value < low or (value == low and not closed_low)
            above = value > high or (value == high and not closed_high)
            if below or above:
                problems.append(f"{name} must be in {_interval(name)}, not {_number(value)}")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("give epochs > 0 or max_steps > 0")
        if self.lr_scheduler not in ("cosine", "linear", "constant"):
            problems.append("lr_scheduler must be cosine, linear or constant")
        if self.quant_type not in ("nf4", "fp4"):
            problems.append("quant_type must be nf4 or fp4")
        if self.compute_dtype not in ("bfloat16", "float16", "float32"):
            problems.append("compute_dtype must be bfloat16, float16 or float32")
        problems += _target_problems(self.target_modules)
        if problems:
            raise UserError("invalid hyperparameters: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> QLoRAConfig:
        """Build from user input (JSON types); unknown names and values of the wrong type are
        an error naming the setting and the type it takes.

        A whole number given as a float (``8.0``) is taken for an int setting, and an int for
        a float setting; nothing else is converted (``"8"`` is refused, not guessed at).
        """
        return checked(cls, values, "hyperparameter")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> QLoRAConfig:
        return cls.from_dict(json.loads(text))


def checked(cls: type[T], values: dict[str, Any] | None, what: str) -> T:
    """A dataclass of settings from user input (JSON types), as :meth:`QLoRAConfig.from_dict`
    says; ``what`` names a setting in the errors (``hyperparameter``).

    Raises:
        UserError: unknown names, values of the wrong type (or those ``cls`` refuses).
    """
    values = dict(values or {})
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise UserError(
            f"unknown {what}(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    types = typing.get_type_hints(cls)
    problems = []
    for name, value in values.items():
        try:
            values[name] = _typed(value, types[name])
        except ValueError as exc:
            problems.append(f"{name} must be {exc}, not {_shown(value)}")
    if problems:
        raise UserError(f"invalid {what}s: " + "; ".join(problems))
    return cls(**values)


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
            try:
                return float(value)
            except OverflowError:  # a whole number of hundreds of digits
                raise ValueError("a number") from None
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


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"


def _interval(name: str) -> str:
    low, high, closed_low, closed_high = RANGES[name]
    return (
        f"{'[' if closed_low else '('}{_number(low)}, {_number(high)}{']' if closed_high else ')'}"
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _target_problems(target: str | list[str]) -> list[str]:
    """What is wrong with ``target_modules`` by itself (the base's layers are checked when
    the job is started): a string other than ``all-linear`` is a regular expression that
    must match a whole layer name, as peft reads it; list entries are names or name endings."""
    names = [target] if isinstance(target, str) else target
    if any(not name.strip() for name in names):
        return ["target_modules must not be empty names"]
    if isinstance(target, str) and target != "all-linear":
        try:
            re.compile(target)
        except re.error as exc:
            return [f"target_modules {target!r} is not a valid regular expression ({exc})"]
    return []
