"""Training data: JSONL in four shapes, checked line by line before a job is queued.

Accepted, detected per line:

* chat: ``{"messages": [{"role": "system"|"user"|"assistant", "content": "..."}, ...]}``
  (an optional system message first, then user and assistant turns alternating, ending
  with the assistant);
* alpaca: ``{"instruction": "...", "input": "...", "output": "..."}`` (input optional);
* prompt/completion: ``{"prompt": "...", "completion": "..."}``;
* text: ``{"text": "..."}`` (trained on whole, with no prompt masking).

Everything becomes a list of chat messages (text examples stay plain text). Every bad
line is reported with its number and the reason; nothing is queued until all are good.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_engineering.errors import DatasetError, UserError

__all__ = [
    "Example",
    "ValidatedDataset",
    "load_jsonl",
    "system_prompt_of",
    "validate_records",
]

MAX_CHARS = 32_000
"""An example longer than this (about 8k tokens) is refused rather than silently truncated."""
MIN_EXAMPLES = 8


@dataclass
class Example:
    """One training example: chat messages, or plain text (``messages`` empty)."""

    messages: list[dict[str, str]] = field(default_factory=list)
    text: str = ""
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages} if self.messages else {"text": self.text}


@dataclass
class ValidatedDataset:
    examples: list[Example]
    sha256: str
    formats: dict[str, int]
    source: str

    @property
    def count(self) -> int:
        return len(self.examples)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"'{name}' must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"'{name}' is empty")
    return value


def _from_record(record: Any) -> tuple[Example, str]:
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError("'messages' must be a non-empty list")
        cleaned: list[dict[str, str]] = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or "role" not in message or "content" not in message:
                raise ValueError(f"message {i + 1} needs 'role' and 'content'")
            role = message["role"]
            if role not in ("system", "user", "assistant"):
                raise ValueError(
                    f"message {i + 1} has role {role!r}; use system, user or assistant"
                )
            cleaned.append(
                {"role": role, "content": _text(message["content"], f"messages[{i}].content")}
            )
        turns = cleaned[1:] if cleaned[0]["role"] == "system" else cleaned
        expected = ["user", "assistant"] * (len(turns) // 2 + 1)
        if not turns or [m["role"] for m in turns] != expected[: len(turns)]:
            order = " → ".join(m["role"] for m in cleaned)
            raise ValueError(
                f"wrong role order ({order}): after an optional system message, user and assistant must alternate"
            )
        if turns[-1]["role"] != "assistant":
            raise ValueError(
                "the last message must be the assistant's (there is nothing to learn otherwise)"
            )
        return Example(messages=cleaned), "chat"
    if "instruction" in record or "output" in record:
        instruction = _text(record.get("instruction"), "instruction")
        extra = record.get("input") or ""
        if not isinstance(extra, str):
            raise ValueError("'input' must be a string")
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        output = _text(record.get("output"), "output")
        return Example(
            messages=[{"role": "user", "content": prompt}, {"role": "assistant", "content": output}]
        ), "alpaca"
    if "prompt" in record or "completion" in record:
        prompt = _text(record.get("prompt"), "prompt")
        completion = _text(record.get("completion"), "completion")
        return Example(
            messages=[
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": completion},
            ]
        ), "prompt_completion"
    if "text" in record:
        return Example(text=_text(record["text"], "text")), "text"
    keys = ", ".join(sorted(map(str, record))) or "none"
    raise ValueError(
        f"no known fields (found: {keys}); use messages, instruction/output, prompt/completion or text"
    )


def _bad_json(error: json.JSONDecodeError) -> str:
    """Where a line's JSON breaks; a line cut short says where it ends, since the error's
    column (where a string started, or one past the end) does not show that by itself."""
    where = "" if error.msg.endswith(" at") else " at"
    where += (
        f" column {error.colno}"
        if error.lineno == 1
        else f" line {error.lineno} column {error.colno}"
    )
    cut = error.msg.startswith("Unterminated") or error.pos >= len(error.doc)
    ends = f"; the line ends at character {len(error.doc)}" if cut else ""
    return f"bad JSON ({error.msg}{where}{ends})"


def validate_records(
    records: Iterable[tuple[int, Any]], source: str, min_examples: int = MIN_EXAMPLES
) -> ValidatedDataset:
    """Check and convert (line number, parsed JSON or a JSON error) pairs.

    Raises:
        DatasetError: some lines are bad (all of them are listed), or there are too few.
    """
    examples: list[Example] = []
    problems: list[tuple[int, str]] = []
    formats: Counter[str] = Counter()
    total = 0
    for line, record in records:
        total += 1
        if isinstance(record, json.JSONDecodeError):
            problems.append((line, _bad_json(record)))
            continue
        try:
            example, kind = _from_record(record)
        except ValueError as exc:
            problems.append((line, str(exc)))
            continue
        size = len(example.text) + sum(len(m["content"]) for m in example.messages)
        if size > MAX_CHARS:
            problems.append((line, f"too long ({size:,} characters; at most {MAX_CHARS:,})"))
            continue
        example.line = line
        examples.append(example)
        formats[kind] += 1
    if problems:
        raise DatasetError(source, problems, total)
    if len(examples) < min_examples:
        raise UserError(
            f"{source}: {len(examples)} examples; a training job needs at least {min_examples}"
        )
    canonical = "\n".join(
        json.dumps(e.to_json(), sort_keys=True, ensure_ascii=False) for e in examples
    )
    return ValidatedDataset(
        examples, hashlib.sha256(canonical.encode()).hexdigest(), dict(formats), source
    )


def load_jsonl(path: Path, min_examples: int = MIN_EXAMPLES) -> ValidatedDataset:
    """Read and validate a JSONL file (blank lines are skipped).

    Raises:
        DatasetError, UserError: bad lines, too few examples, or not UTF-8 text.
    """

    def lines() -> Iterable[tuple[int, Any]]:
        try:
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        # Without its newline: an error past the end stays on this line.
                        yield number, json.loads(line.rstrip())
                    except json.JSONDecodeError as exc:
                        yield number, exc
        except UnicodeDecodeError as exc:
            raise UserError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc

    return validate_records(lines(), str(path), min_examples)


def system_prompt_of(examples: Iterable[Example]) -> str | None:
    """The system message every chat example opens with; None when there is none or they differ.

    An adapter answers best in the format it was trained in, so answers without passages
    use this one (and no system message of ours when it is None).
    """
    found: set[str | None] = set()
    for example in examples:
        if example.messages:
            first = example.messages[0]
            found.add(first["content"] if first["role"] == "system" else None)
    return found.pop() if len(found) == 1 else None
