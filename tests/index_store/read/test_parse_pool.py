"""Parse worker processes: a runaway parser is stopped, a slow file holds only its worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_engineering.index_store.read.parse_pool import ParseConfig, ParsePool, ParseRequest
from llm_engineering.index_store.read.readers import ReadLimits
from tests.index_store.ingest.test_hostile_files import nested_html

# Past any nesting limit: BeautifulSoup's tree edits on 100,000 levels take hours.
UNBOUNDED = ParseConfig(64, 8, None, ReadLimits(max_html_depth=10**7))
GENEROUS = 600.0  # seconds: a bound that only a hang reaches


@pytest.fixture
def pools() -> Iterator:  # type: ignore[type-arg]
    opened: list[ParsePool] = []

    def make(workers: int, memory_mb: int = 2048) -> ParsePool:
        pool = ParsePool(workers, memory_mb * 1048576)
        opened.append(pool)
        return pool

    yield make
    for pool in opened:
        pool.close()


def files(folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "deep.html").write_bytes(nested_html(100_000))
    (folder / "note.md").write_text("# Note\n\nThe beekeeper counts the hives at noon.\n")
    return folder / "deep.html", folder / "note.md"


def test_a_file_past_its_time_is_failed_naming_parse_timeout_s_and_its_worker_replaced(
    pools, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    deep, note = files(tmp_path)
    pool = pools(1)
    pool.start(UNBOUNDED)  # started and configured before the file: its 3 s are parsing
    assert pool.running == 1
    slow = pool.submit(ParseRequest(deep, UNBOUNDED, timeout_s=3, max_bytes=10**8))
    after = pool.submit(ParseRequest(note, UNBOUNDED, timeout_s=GENEROUS, max_bytes=10**8))
    result = slow.result(timeout=GENEROUS)
    assert result.status == "failed"
    assert result.error is not None and "(parse_timeout_s)" in result.error
    assert "longer than 3 s" in result.error
    parsed = after.result(timeout=GENEROUS)  # by the worker that replaced the stopped one
    assert parsed.status == "parsed" and parsed.title == "Note"
    assert "beekeeper" in parsed.chunks[0].text and parsed.chunks[0].start_line == 1


def test_a_slow_file_holds_one_worker_while_another_parses_the_rest(pools, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    deep, note = files(tmp_path)
    pool = pools(2)
    # Files that never wait for a busy worker are all parsed by the first one.
    for _ in range(3):
        request = ParseRequest(note, UNBOUNDED, timeout_s=GENEROUS, max_bytes=10**8)
        assert pool.submit(request).result(timeout=GENEROUS).status == "parsed"
    assert pool.running == 1
    # One that waits behind a slow file starts the second.
    slow = pool.submit(ParseRequest(deep, UNBOUNDED, timeout_s=GENEROUS, max_bytes=10**8))
    quick = pool.submit(ParseRequest(note, UNBOUNDED, timeout_s=GENEROUS, max_bytes=10**8))
    assert quick.result(timeout=GENEROUS).status == "parsed"
    assert not slow.done() and pool.running == 2  # still parsing; closing the pool stops it


def test_a_parser_past_its_memory_cap_is_failed_naming_parse_memory_mb(
    pools, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    sparse = tmp_path / "huge.txt"
    with sparse.open("wb") as handle:  # 1.5 GiB that take no disk: reading them does
        handle.truncate(3 * 512 * 1048576)
    _, note = files(tmp_path / "more")
    pool = pools(1, memory_mb=1024)
    size = sparse.stat().st_size
    result = pool.submit(ParseRequest(sparse, UNBOUNDED, GENEROUS, max_bytes=size)).result()
    assert result.status == "failed" and result.error is not None
    assert "1024 MiB a parser may use (parse_memory_mb)" in result.error
    parsed = pool.submit(ParseRequest(note, UNBOUNDED, GENEROUS, max_bytes=10**8)).result()
    assert parsed.status == "parsed"


def test_an_unchanged_file_is_not_parsed_and_a_vanished_one_is_missing(
    pools, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, note = files(tmp_path)
    pool = pools(1)
    first = pool.submit(ParseRequest(note, UNBOUNDED, GENEROUS, 10**8)).result()
    again = pool.submit(ParseRequest(note, UNBOUNDED, GENEROUS, 10**8, first.sha256)).result()
    assert again.status == "unchanged" and again.sha256 == first.sha256 and not again.chunks
    grown = pool.submit(ParseRequest(note, UNBOUNDED, GENEROUS, max_bytes=10)).result()
    assert grown.error is not None and "(max_file_size_mb)" in grown.error
    note.unlink()
    assert pool.submit(ParseRequest(note, UNBOUNDED, GENEROUS, 10**8)).result().status == (
        "missing"
    )
