"""Hyperparameters the user did not set, chosen from the base model's and the dataset's size.

QLoRA's usual settings (learning rate 2e-4, 3 epochs) are tuned for 7B+ bases and thousands
of examples. On the packaged 135M model a few dozen examples of a fact trained that way end
with a falling loss and an adapter that does not know the fact (36 steps, loss 3.7 -> 0.18,
0 of 4 phrasings answered). Small bases need a larger rate and small datasets a least number
of steps; what was chosen, and why, is reported with the job and kept on the adapter's card.

That rate teaches the fact and breaks the rest: trained on 36 examples of who makes a made-up
teapot, the 135M base answered "The capital of Japan is Reykjavik." Every job not told
otherwise trains the base's own answers to the packaged general prompts with its data
(``replay_examples``, :mod:`llm_engineering.adapters.kept`); the steps stay those of the
user's examples, the replayed ones ride along.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, replace

from llm_engineering.adapters.hyperparams import QLoRAConfig

__all__ = [
    "Choice",
    "auto_names",
    "choose",
    "describe_size",
    "planned_steps",
    "replay_count",
    "steps_per_epoch",
]

SMALL_BASE = 1_500_000_000
"""Below this many parameters a base gets ``SMALL_RATE``."""
MEDIUM_BASE = 4_500_000_000
SMALL_RATE = 1e-3
MEDIUM_RATE = 5e-4
MIN_STEPS = 30
"""A dataset too small to make this many steps in its epochs is trained this many."""


@dataclass(frozen=True)
class Choice:
    config: QLoRAConfig
    chosen: dict[str, str]
    """Name -> why, for each value chosen rather than given."""


def auto_names(given: Collection[str]) -> list[str]:
    """The hyperparameters :func:`choose` may set, given what the user set."""
    names = [] if "learning_rate" in given else ["learning_rate"]
    names = names if {"max_steps", "epochs"} & set(given) else [*names, "max_steps"]
    return names if "replay_examples" in given else [*names, "replay_examples"]


def replay_count(config: QLoRAConfig, given: Collection[str]) -> int:
    """General examples the job mixes in: what was given, else every packaged replay prompt."""
    if "replay_examples" in given:
        return config.replay_examples
    from llm_engineering.adapters.kept import general_prompts

    return len(general_prompts()["replay"])


def planned_steps(config: QLoRAConfig, given: Collection[str], examples: int) -> int:
    """The optimizer steps a job on ``examples`` (the user's, held-out ones excluded) makes:
    given ``max_steps``, or ``epochs`` over the examples and the replayed ones together;
    else the epochs of the user's examples alone, at least :data:`MIN_STEPS`."""
    if config.max_steps and "max_steps" in given:
        return config.max_steps
    if {"max_steps", "epochs"} & set(given):
        mixed = examples + replay_count(config, given)
        return config.max_steps or math.ceil(steps_per_epoch(mixed, config) * config.epochs)
    return max(MIN_STEPS, math.ceil(steps_per_epoch(examples, config) * config.epochs))


def steps_per_epoch(examples: int, config: QLoRAConfig) -> int:
    """Optimizer steps in one pass over ``examples``, as the trainer counts them."""
    micro = math.ceil(examples / config.batch_size)
    return max(1, math.ceil(micro / config.gradient_accumulation))


def describe_size(parameters: int) -> str:
    return f"{parameters / 1e9:.1f}B" if parameters >= 1e9 else f"{parameters / 1e6:.0f}M"


def choose(
    config: QLoRAConfig, given: Collection[str], *, parameters: int, examples: int
) -> Choice:
    """``config`` with what the user did not set (names not in ``given``) chosen.

    Args:
        parameters: The base model's parameter count.
        examples: Training examples (after the held-out split).
    """
    changes: dict[str, float | int] = {}
    chosen: dict[str, str] = {}
    size = describe_size(parameters)
    if "learning_rate" not in given:
        if parameters < SMALL_BASE:
            rate, why = SMALL_RATE, f"a {size} base learns a few dozen examples at 1e-3"
        elif parameters < MEDIUM_BASE:
            rate, why = MEDIUM_RATE, f"a {size} base: between the small-model and QLoRA rates"
        else:
            rate, why = config.learning_rate, f"a {size} base: the QLoRA paper's rate"
        changes["learning_rate"] = rate
        chosen["learning_rate"] = why
    if not {"max_steps", "epochs"} & set(given):
        steps = math.ceil(steps_per_epoch(examples, config) * config.epochs)
        changes["max_steps"] = max(steps, MIN_STEPS)
        chosen["max_steps"] = (
            f"{examples} examples make {steps} steps in {config.epochs:g} epochs; "
            f"a small dataset is trained at least {MIN_STEPS} steps"
            if steps < MIN_STEPS
            else f"{config.epochs:g} epochs of the {examples} examples"
        ) + "; the replayed general examples ride along"
    if "replay_examples" not in given:
        count = replay_count(config, given)
        changes["replay_examples"] = count
        chosen["replay_examples"] = (
            f"the base's own answers to {count} general prompts are trained with the data, "
            "so the adapter keeps what the base knew"
        )
    return Choice(replace(config, **changes), chosen)  # type: ignore[arg-type]
