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

What one validation holds in memory is bounded (:class:`DatasetLimits`): a file larger than
``train_dataset_max_mb`` is refused before it is read, a line longer than
``train_line_max_kb`` is reported and skipped a piece at a time, validation stops past
``train_max_examples`` records, and only the first :data:`MAX_PROBLEMS_KEPT` bad lines are kept.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from llm_engineering.errors import DatasetError, UserError

if TYPE_CHECKING:
    from llm_engineering.config import Settings

__all__ = [
    "DatasetLimits",
    "Example",
    "ValidatedDataset",
    "load_jsonl",
    "system_prompt_of",
    "validate_records",
]

MAX_CHARS = 32_000
"""An example longer than this (about 8k tokens) is refused rather than silently truncated."""
MIN_EXAMPLES = 8
MAX_PROBLEMS_KEPT = 1000
"""Bad lines listed in full; past this they are only counted (a file of 64 MB of bad lines
would otherwise hold millions of messages)."""
_SKIP_CHUNK = 2**16


@dataclass(frozen=True)
class DatasetLimits:
    """How much of a dataset one validation reads: the defaults are the settings' defaults.

    With them, starting a job raised a process's peak memory by 131 MB for 100,000 short
    chat examples (24 MB), 98 MB for 64 MB of 32,000-character ones, 42 MB for 100,000
    one-word lines; without ``max_examples``, 64 MB of one-word lines (3.2 million) took 1.4 GB.
    """

    max_bytes: int = 64 * 2**20
    max_line_bytes: int = 2**20
    max_examples: int = 100_000

    @classmethod
    def of(cls, settings: Settings) -> DatasetLimits:
        return cls(
            max_bytes=int(settings.train_dataset_max_mb * 2**20),
            max_line_bytes=int(settings.train_line_max_kb * 2**10),
            max_examples=settings.train_max_examples,
        )


@dataclass(frozen=True)
class _BadLine:
    """A line refused before it is parsed (too long to read, nested too deep)."""

    reason: str


@dataclass
class Example:
    """One training example: chat messages, or plain text (``messages`` empty)."""

    messages: list[dict[str, str]] = field(default_factory=list)
    text: str = ""
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"messages": self.messages} if self.messages else {"text": self.text}

    @property
    def chars(self) -> int:
        """Characters of text it holds (its messages' contents, or its text)."""
        return len(self.text) + sum(len(m["content"]) for m in self.messages)


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
    records: Iterable[tuple[int, Any]],
    source: str,
    min_examples: int = MIN_EXAMPLES,
    limits: DatasetLimits | None = None,
) -> ValidatedDataset:
    """Check and convert (line number, parsed JSON or a JSON error) pairs.

    Raises:
        DatasetError: some lines are bad (all of them are counted, the first
            :data:`MAX_PROBLEMS_KEPT` listed), or there are too few.
        UserError: more records than ``limits.max_examples``.
    """
    limits = limits or DatasetLimits()
    examples: list[Example] = []
    problems: list[tuple[int, str]] = []
    bad = 0
    formats: Counter[str] = Counter()
    digest = hashlib.sha256()
    total = 0
    for line, record in records:
        total += 1
        if total > limits.max_examples:
            if problems:  # what is wrong with the lines read so far comes first
                raise DatasetError(source, problems, total - 1, bad)
            raise UserError(
                f"{source}: more than {limits.max_examples:,} examples; a training job takes at "
                f"most {limits.max_examples:,} (train_max_examples): split the data, or raise "
                "the setting"
            )
        try:
            example, kind = _example_of(record)
        except ValueError as exc:
            bad += 1
            if len(problems) < MAX_PROBLEMS_KEPT:
                problems.append((line, str(exc)))
            continue
        example.line = line
        # The canonical form, one example a line: hashed as it comes, never joined whole.
        canonical = json.dumps(example.to_json(), sort_keys=True, ensure_ascii=False)
        digest.update((("\n" if examples else "") + canonical).encode())
        examples.append(example)
        formats[kind] += 1
    if problems:
        raise DatasetError(source, problems, total, bad)
    if len(examples) < min_examples:
        raise UserError(
            f"{source}: {len(examples)} examples; a training job needs at least {min_examples}"
        )
    return ValidatedDataset(examples, digest.hexdigest(), dict(formats), source)


def _example_of(record: Any) -> tuple[Example, str]:
    """The example in one record; ValueError says why it is not one."""
    if isinstance(record, _BadLine):
        raise ValueError(record.reason)
    if isinstance(record, json.JSONDecodeError):
        raise ValueError(_bad_json(record))
    example, kind = _from_record(record)
    size = example.chars
    if size > MAX_CHARS:
        raise ValueError(f"too long ({size:,} characters; at most {MAX_CHARS:,})")
    return example, kind


def load_jsonl(
    path: Path, min_examples: int = MIN_EXAMPLES, limits: DatasetLimits | None = None
) -> ValidatedDataset:
    """Read and validate a JSONL file (blank lines are skipped), one bounded line at a time.

    Raises:
        DatasetError, UserError: bad lines, too few or too many examples, a file larger than
            ``limits.max_bytes``, or not UTF-8 text.
    """
    limits = limits or DatasetLimits()
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise UserError(
            f"{path} is {_mb(size)}; a training dataset is at most {_mb(limits.max_bytes)} "
            "(train_dataset_max_mb): split it, or raise the setting"
        )
    return validate_records(_lines(path, limits), str(path), min_examples, limits)


def _lines(path: Path, limits: DatasetLimits) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON, a JSON error or a :class:`_BadLine`) for each non-blank line."""
    longest = limits.max_line_bytes
    with path.open("rb") as handle:
        offset = 0  # where the line starts, for the byte a decoding error names
        for number in itertools.count(1):
            raw = handle.readline(longest + 1)
            if not raw:
                return
            if len(raw) > longest and not raw.endswith(b"\n"):
                length = len(raw) + _skip_rest_of_line(handle)
                offset += length
                yield (
                    number,
                    _BadLine(
                        f"longer than {longest // 1024:,} KB (train_line_max_kb): {length:,} bytes"
                    ),
                )
                continue
            start, offset = offset, offset + len(raw)
            if offset > limits.max_bytes:  # it grew while being read
                raise UserError(f"{path} grew past {_mb(limits.max_bytes)} while it was read")
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise UserError(
                    f"{path} is not UTF-8 text ({exc.reason} at byte {start + exc.start})"
                ) from exc
            try:
                # Without its newline: an error past the end stays on this line.
                yield number, json.loads(text.rstrip())
            except json.JSONDecodeError as exc:
                yield number, exc
            except RecursionError:
                yield number, _BadLine("nested too deeply to be a training example")


def _skip_rest_of_line(handle: BinaryIO) -> int:
    """Read past the end of the current line a piece at a time; returns the bytes skipped."""
    skipped = 0
    while True:
        piece = handle.readline(_SKIP_CHUNK)
        skipped += len(piece)
        if not piece or piece.endswith(b"\n"):
            return skipped


def _mb(size: int) -> str:
    return f"{size / 2**20:,.1f} MB" if size % 2**20 else f"{size // 2**20:,} MB"


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
