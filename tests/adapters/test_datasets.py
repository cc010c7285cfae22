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


# Validates in a process of its own, with its address space capped (a reader that holds a
# 2 GB line fails there rather than taking the machine's memory), and reports how far each
# validation raised the process's peak resident memory.
BOUNDED = """
import json, resource, sys
from pathlib import Path
from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.errors import UserError

folder = Path(sys.argv[1])
training = TrainingService(Settings(data_dir=folder / "data", train_roots=[folder]))
found = {}
for name in sys.argv[2:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        training.start_job("big", str(folder / name))
        error = None
    except UserError as exc:
        error = str(exc)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    found[name] = {"error": error, "grew_mib": grew / 1024}
print(json.dumps(found))
"""


def test_a_huge_sparse_dataset_is_refused_at_once_and_a_huge_line_is_skipped_in_bounded_memory(
    tmp_path: Path,
) -> None:
    import resource
    import subprocess
    import sys

    good = "".join(json.dumps(CHAT) + "\n" for _ in range(10)).encode()
    with (tmp_path / "long_line.jsonl").open("wb") as handle:
        handle.write(good)
        handle.seek(60 * 2**20, 1)  # a hole: 60 MB of NUL bytes on one line, no disk used
        handle.write(b"\n" + good)
    with (tmp_path / "sparse.jsonl").open("wb") as handle:
        handle.write(good)
        handle.truncate(2 * 2**30)  # what `truncate -s 2G` makes of it

    def capped() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))

    done = subprocess.run(
        [sys.executable, "-c", BOUNDED, str(tmp_path), "long_line.jsonl", "sparse.jsonl"],
        capture_output=True, text=True, timeout=300, preexec_fn=capped,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout)
    long_line, sparse = found["long_line.jsonl"], found["sparse.jsonl"]
    assert "line 11: longer than 1,024 KB (train_line_max_kb)" in long_line["error"]
    assert "1 of 21 lines" in long_line["error"]
    assert long_line["grew_mib"] < 16, long_line  # the 60 MB line was never held
    assert (
        "is 2,048 MB; a training dataset is at most 64 MB (train_dataset_max_mb)"
        in (sparse["error"])
    )
    assert sparse["grew_mib"] < 16, sparse


def test_more_examples_or_bad_lines_than_the_limits_stop_validation_early(tmp_path: Path) -> None:
    from llm_engineering.adapters.datasets import MAX_PROBLEMS_KEPT, DatasetLimits

    limits = DatasetLimits(max_examples=50)
    with pytest.raises(UserError, match=r"more than 50 examples; .*train_max_examples"):
        load_jsonl(write_jsonl(tmp_path / "many.jsonl", [CHAT] * 51), limits=limits)
    assert load_jsonl(write_jsonl(tmp_path / "fifty.jsonl", [CHAT] * 50), limits=limits).count == 50
    with pytest.raises(DatasetError) as caught:
        load_jsonl(write_jsonl(tmp_path / "bad.jsonl", ["{"] * (MAX_PROBLEMS_KEPT + 500)))
    assert len(caught.value.problems) == MAX_PROBLEMS_KEPT
    assert f"{MAX_PROBLEMS_KEPT + 500:,} of {MAX_PROBLEMS_KEPT + 500:,} lines" in str(caught.value)
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(DatasetError, match="line 9: nested too deeply"):
        load_jsonl(write_jsonl(tmp_path / "deep.jsonl", [CHAT] * 8 + [deep]))
