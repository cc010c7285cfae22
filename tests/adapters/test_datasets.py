"""Training data: four formats, every bad line reported by number, paths kept inside the allowed folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_engineering.adapters.datasets import (
    MAX_CHARS,
    load_jsonl,
    validate_records,
)
from llm_engineering.errors import DatasetError, UserError


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text(
        "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n"
    )
    return path


CHAT = {
    "messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello."}]
}
ALPACA = {"instruction": "Add.", "input": "2 and 3", "output": "5"}
PROMPT = {"prompt": "Capital of Peru?", "completion": "Lima."}
TEXT = {"text": "Plain text to learn from."}


def test_each_format_is_detected_per_line_and_becomes_chat_messages(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [CHAT, ALPACA, PROMPT, TEXT] * 2)
    dataset = load_jsonl(path)
    assert dataset.count == 8
    assert dataset.formats == {"chat": 2, "alpaca": 2, "prompt_completion": 2, "text": 2}
    alpaca = dataset.examples[1]
    assert alpaca.messages == [
        {"role": "user", "content": "Add.\n\n2 and 3"},
        {"role": "assistant", "content": "5"},
    ]
    assert (
        dataset.examples[3].text == "Plain text to learn from." and not dataset.examples[3].messages
    )
    assert [e.line for e in dataset.examples] == list(range(1, 9))


def test_every_bad_line_is_reported_with_its_number_and_reason(tmp_path: Path) -> None:
    bad_order = {
        "messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]
    }
    ends_with_user = {"messages": [{"role": "user", "content": "a"}]}
    lines: list[object] = [CHAT] * 8 + [
        "{not json",  # 9
        {"instruction": "no output"},  # 10
        bad_order,  # 11
        {"prompt": "p", "completion": "   "},  # 12
        {"text": "x" * (MAX_CHARS + 1)},  # 13
        {"messages": [{"role": "robot", "content": "beep"}]},  # 14
        {"question": "?"},  # 15
        ends_with_user,  # 16
        [1, 2],  # 17
    ]
    with pytest.raises(DatasetError) as caught:
        load_jsonl(write_jsonl(tmp_path / "d.jsonl", lines))
    problems = dict(caught.value.problems)
    assert sorted(problems) == list(range(9, 18))
    assert "bad JSON" in problems[9]
    assert "'output'" in problems[10]
    assert "wrong role order" in problems[11]
    assert "empty" in problems[12]
    assert "too long" in problems[13]
    assert "robot" in problems[14]
    assert "no known fields (found: question)" in problems[15]
    assert "last message must be the assistant's" in problems[16]
    assert "JSON object" in problems[17]
    message = str(caught.value)
    assert "9 of 17 lines" in message and "line 13: too long" in message


def test_blank_lines_are_skipped_but_line_numbers_stay_those_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join([json.dumps(CHAT), "", json.dumps(CHAT)] * 4 + ["{oops"]) + "\n")
    with pytest.raises(DatasetError) as caught:
        load_jsonl(path)
    assert caught.value.problems[0][0] == 13


def test_too_few_examples_and_non_utf8_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="3 examples; a training job needs at least 8"):
        load_jsonl(write_jsonl(tmp_path / "few.jsonl", [CHAT] * 3))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b'{"text": "\xff\xfe"}\n')
    with pytest.raises(UserError, match="not UTF-8"):
        load_jsonl(binary)


def test_the_dataset_hash_depends_on_the_examples_not_on_blank_lines_or_key_order() -> None:
    a = validate_records(enumerate([CHAT, PROMPT] * 4, start=1), "a")
    reordered = {"completion": "Lima.", "prompt": "Capital of Peru?"}
    b = validate_records(enumerate([CHAT, reordered] * 4, start=3), "b")
    c = validate_records(enumerate([CHAT, TEXT] * 4, start=1), "c")
    assert a.sha256 == b.sha256 != c.sha256
