"""A job's event log: following it from a byte offset as its worker appends to it."""

from __future__ import annotations

import json
from pathlib import Path

from llm_engineering.adapters.events import EventTail


def test_the_tail_reads_only_whole_appended_lines_and_resumes_at_its_offset(
    tmp_path: Path,
) -> None:
    path = tmp_path / "events.jsonl"
    tail = EventTail(path)
    assert tail.read() == []  # no file yet
    with path.open("a") as handle:
        handle.write(json.dumps({"event": "step", "step": 1, "loss": 2.0}) + "\n")
        handle.write('{"event": "step", "st')  # a line still being written
        handle.flush()
        assert [e["step"] for e in tail.read()] == [1]
        first_offset = tail.offset
        assert tail.read() == []
        handle.write('ep": 2, "loss": 1.5}\nnot json\n')
        handle.flush()
    assert [e["step"] for e in tail.read()] == [2]
    assert tail.offset == path.stat().st_size
    again = EventTail(path, first_offset)  # a browser reconnecting with Last-Event-ID
    assert [e["step"] for e in again.read_all()] == [2]
