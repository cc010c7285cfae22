"""Did the adapter learn? Held-out examples, their loss, and an answer check.

The held-out slice is taken by prompt, never by line: a dataset that repeats one question
with several answers (or one answer under several questions' copies) would otherwise check
the adapter on prompts it was trained on. The answer check generates greedily for held-out
prompts and compares with their references (exact match and SQuAD's token F1); the same
check on as many training prompts gives the training fit to compare against.
"""

from __future__ import annotations

import json
import random
import re
import string
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llm_engineering.adapters.datasets import Example

__all__ = [
    "AnswerCheck",
    "answer_check",
    "eval_loss",
    "normalize_answer",
    "split_heldout",
    "token_f1",
    "verdict",
    "words_f1",
]

MIN_TO_SPLIT = 20
"""Datasets smaller than this are trained whole (nothing held out)."""


def prompt_key(example: Example) -> str:
    """What the model is asked: every message but the last (the answer); text whole."""
    if example.messages:
        return json.dumps(example.messages[:-1], sort_keys=True)
    return example.text


def split_heldout(
    examples: Sequence[Example], fraction: float, seed: int
) -> tuple[list[Example], list[Example]]:
    """(train, held out): whole prompts, chosen by ``seed``, about ``fraction`` of the lines.

    Nothing is held out from fewer than :data:`MIN_TO_SPLIT` examples, or when fewer than
    three distinct prompts exist (one would be all the model ever saw of it).
    """
    groups: dict[str, list[Example]] = defaultdict(list)
    for example in examples:
        groups[prompt_key(example)].append(example)
    if fraction <= 0 or len(examples) < MIN_TO_SPLIT or len(groups) < 3:
        return list(examples), []
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    wanted = max(2, round(len(examples) * fraction))
    held: set[str] = set()
    count = 0
    for key in keys:
        if count >= wanted or len(held) + 1 >= len(groups):
            break
        held.add(key)
        count += len(groups[key])
    train = [e for e in examples if prompt_key(e) not in held]
    return train, [e for e in examples if prompt_key(e) in held]


def normalize_answer(text: str) -> list[str]:
    """SQuAD's answer normalization: lower case, no punctuation or articles, as words."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def token_f1(answer: str, reference: str) -> float:
    """SQuAD's token F1 (lower case, no punctuation or articles)."""
    return words_f1(normalize_answer(answer), normalize_answer(reference))


def words_f1(got: Sequence[str], want: Sequence[str]) -> float:
    """Token F1 of two normalized word lists (1.0 when both are empty)."""
    common = sum((Counter(got) & Counter(want)).values())
    if not got or not want or common == 0:
        return float(list(got) == list(want))
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


@dataclass
class AnswerCheck:
    prompts: int = 0
    exact: float = 0.0
    """Share of answers equal to a reference (normalized)."""
    f1: float = 0.0
    """Mean over prompts of the best token F1 against that prompt's references."""
    samples: list[dict[str, Any]] = field(default_factory=list)
    """The first few: question, reference, answer, f1."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "exact": round(self.exact, 4),
            "f1": round(self.f1, 4),
            "samples": self.samples,
        }


def answer_check(
    model: Any, tokenizer: Any, examples: Sequence[Example], device: str, limit: int
) -> AnswerCheck:
    """Greedy answers for up to ``limit`` distinct chat prompts of ``examples``, scored."""
    import torch

    references: dict[str, list[str]] = defaultdict(list)
    prompts: dict[str, list[dict[str, str]]] = {}
    for example in examples:
        if not example.messages:
            continue  # plain text has no prompt to answer
        key = prompt_key(example)
        references[key].append(example.messages[-1]["content"])
        prompts.setdefault(key, example.messages[:-1])
    keys = list(prompts)[:limit]
    check = AnswerCheck(prompts=len(keys))
    if not keys:
        return check
    model.eval()
    exact = f1 = 0.0
    for key in keys:
        text = tokenizer.apply_chat_template(
            prompts[key], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
        longest = max(
            len(tokenizer(r, add_special_tokens=False)["input_ids"]) for r in references[key]
        )
        with torch.no_grad():
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=min(96, longest + 16),
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
        answer = tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
        scores = [token_f1(answer, reference) for reference in references[key]]
        best = max(scores)
        f1 += best
        exact += float(
            any(normalize_answer(answer) == normalize_answer(r) for r in references[key])
        )
        if len(check.samples) < 5:
            question = prompts[key][-1]["content"] if prompts[key] else ""
            reference = references[key][scores.index(best)]
            check.samples.append(
                {
                    "question": question,
                    "reference": reference,
                    "answer": answer,
                    "f1": round(best, 3),
                }
            )
    check.exact, check.f1 = exact / len(keys), f1 / len(keys)
    return check


def eval_loss(model: Any, data: Sequence[Any], pad_id: int, device: str, batch_size: int) -> float:
    """Mean loss over encoded held-out examples (weighted by their loss tokens)."""
    import torch

    from llm_engineering.adapters.encoding import pad_batch

    model.eval()
    total, tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(data), batch_size):
            batch = pad_batch(data[start : start + batch_size], pad_id, device)
            counted = int((batch["labels"][:, 1:] != -100).sum())
            if counted:
                total += float(model(**batch).loss) * counted
                tokens += counted
    model.train()
    return total / tokens if tokens else float("nan")


def verdict(heldout: AnswerCheck | None, train: AnswerCheck | None) -> str | None:
    """One line when the answer check says the adapter did not learn what it was taught."""
    if train is not None and train.prompts and train.f1 < 0.5:
        return (
            f"the adapter answers its own training prompts poorly (token F1 {train.f1:.2f}): "
            "it did not learn the examples; train more steps (max_steps) or a higher learning_rate"
        )
    if (
        heldout is not None
        and heldout.prompts
        and train is not None
        and train.prompts
        and heldout.f1 < train.f1 - 0.35
    ):
        return (
            f"held-out prompts are answered far worse (token F1 {heldout.f1:.2f}) than "
            f"training prompts ({train.f1:.2f}): the adapter memorized the phrasings it saw; "
            "add more varied phrasings of each fact"
        )
    return None
