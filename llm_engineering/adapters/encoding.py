"""Training examples as token ids with loss labels, and padded batches of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from llm_engineering.adapters.datasets import Example
from llm_engineering.errors import TrainingFailed

__all__ = ["Encoded", "encode_examples", "pad_batch"]


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    """-100 where no loss is taken (the prompt, and padding)."""
    anchored: bool = False
    """A replayed general example (the base's own answer): trained toward the base's whole
    next-token distribution too (``replay_kl``), not only its tokens."""


def encode_examples(
    examples: Sequence[Example], tokenizer: Any, max_len: int, completion_only: bool
) -> list[Encoded]:
    """Token ids with labels, using the tokenizer's chat template.

    With ``completion_only``, only the assistant turns (and their end-of-turn token) carry
    loss: each turn's span is found by rendering the conversation up to it.
    """
    encoded = []
    for example in examples:
        if not example.messages:
            ids = tokenizer(example.text, add_special_tokens=True)["input_ids"][:max_len]
            encoded.append(Encoded(ids, list(ids)))
            continue
        ids = _chat_ids(tokenizer, example.messages, add_generation_prompt=False)
        labels = [-100] * len(ids) if completion_only else list(ids)
        if completion_only:
            for i, message in enumerate(example.messages):
                if message["role"] != "assistant":
                    continue
                start = len(_chat_ids(tokenizer, example.messages[:i], add_generation_prompt=True))
                end = len(
                    _chat_ids(tokenizer, example.messages[: i + 1], add_generation_prompt=False)
                )
                labels[start:end] = ids[start:end]
        ids, labels = ids[:max_len], labels[:max_len]
        if all(label == -100 for label in labels):
            raise TrainingFailed(
                f"example on line {example.line} leaves no assistant tokens within max_seq_len={max_len}; "
                "raise max_seq_len or shorten the prompt"
            )
        encoded.append(Encoded(ids, labels))
    return encoded


def _chat_ids(
    tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool
) -> list[int]:
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def pad_batch(items: Sequence[Encoded], pad_id: int, device: str) -> dict[str, Any]:
    """Right-pad ``items`` to the longest into input_ids, attention_mask and labels tensors."""
    import torch

    width = max(len(item.input_ids) for item in items)
    ids = [item.input_ids + [pad_id] * (width - len(item.input_ids)) for item in items]
    labels = [item.labels + [-100] * (width - len(item.labels)) for item in items]
    mask = [[1] * len(item.input_ids) + [0] * (width - len(item.input_ids)) for item in items]
    return {
        "input_ids": torch.tensor(ids, device=device),
        "attention_mask": torch.tensor(mask, device=device),
        "labels": torch.tensor(labels, device=device),
    }
