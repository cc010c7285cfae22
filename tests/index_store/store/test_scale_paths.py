"""The per-query and per-page paths stay flat as the index grows: counts come from the
triggers' tallies, listings seek to their cursor, and every statement they run is checked
by its query plan (a full scan of the files or chunks is what made a page or a status cost
time linear in the index: benchmarks/scale.py measures it at 1M chunks).

A few thousand rows are enough: SQLite's plan does not depend on the size."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llm_engineering.index_store.query.listing import list_documents
from llm_engineering.index_store.store.keyword import KeywordIndex, analyze
from llm_engineering.index_store.store.ledger import ChunkRow, FileRow, Ledger
from llm_engineering.storage import Storage, prefix_sql

FILES = 1500
ROOT = "/docs"


def rows(n: int, status: str = "indexed") -> tuple[FileRow, list[ChunkRow]]:
    path = f"{ROOT}/section-{n % 7}/doc-{n:05d}.md"
    row = FileRow(path, ROOT, path[len(ROOT) + 1 :], "md", 100, 10**18 + n * 1000, "s", status)
    chunks = [
        ChunkRow(f"{path}#{i}", path, i, f"h{n}-{i}", f"walrus {n} kelp forest note {i}")
        for i in range(2)
    ]
    return row, chunks


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    storage = Storage(tmp_path_factory.mktemp("scale") / "state.sqlite")
    ledger = Ledger(storage)
    for n in range(FILES):
        row, chunks = rows(n, "failed" if n % 50 == 0 else "indexed")
        ledger.replace_file(row, chunks if row.status == "indexed" else [])
    storage.db.execute("ANALYZE")
    yield ledger
    storage.close()


@contextmanager
def statements(db: sqlite3.Connection) -> Iterator[list[str]]:
    """The SQL ``db`` runs inside the block, parameters filled in."""
    seen: list[str] = []
    db.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        db.set_trace_callback(None)


def plan(db: sqlite3.Connection, sql: str) -> list[str]:
    return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]


def scans(db: sqlite3.Connection, work: Callable[[], object]) -> dict[str, list[str]]:
    """Each SELECT ``work`` ran, with the plan steps that read a whole table of the index
    (``SCAN files``/``SCAN chunks``, aliased or not, or in index order)."""
    with statements(db) as seen:
        work()
    found: dict[str, list[str]] = {}
    for sql in seen:
        if not sql.lstrip().upper().startswith("SELECT"):
            continue
        full = [step for step in plan(db, sql) if re.match(r"SCAN (files|chunks|f|c)\b", step)]
        found[sql] = full
    return found


def uri(path: str) -> str:
    return "doc://" + path


def test_the_tallies_count_what_the_tables_hold_through_every_kind_of_write(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    ledger = Ledger(storage)

    def truth() -> dict[str, int]:
        db = storage.db
        return {
            "documents": db.execute("SELECT count(*) FROM files WHERE status = 'indexed'").fetchone()[0],
            "failed": db.execute("SELECT count(*) FROM files WHERE status = 'failed'").fetchone()[0],
            "chunks": db.execute("SELECT count(*) FROM chunks").fetchone()[0],
        }  # fmt: skip

    for n in range(20):
        ledger.replace_file(*rows(n))
    assert ledger.counts() == truth() == {"documents": 20, "failed": 0, "chunks": 40}
    failed, _ = rows(3, "failed")
    ledger.replace_file(failed, [])  # written again as failed: an update of its status
    again, chunks = rows(4)
    ledger.replace_file(again, chunks[:1])  # written again, one chunk fewer
    ledger.remove_files([rows(5)[0].path, rows(6)[0].path])
    ledger.touch(rows(7)[0].path, 5, 5)
    assert ledger.counts() == truth() == {"documents": 17, "failed": 1, "chunks": 33}
    ledger.clear()
    assert ledger.counts() == truth() == {"documents": 0, "failed": 0, "chunks": 0}
    storage.close()


def test_a_status_and_bm25s_document_count_read_no_table_of_files_or_chunks(
    ledger: Ledger,
) -> None:
    db = ledger.db
    with statements(db) as seen:
        counts = ledger.counts()
        _, total = KeywordIndex(ledger.storage).document_frequency(analyze("walrus kelp"))
    assert counts == {"documents": FILES - FILES // 50, "failed": FILES // 50, "chunks": total}
    assert total == 2 * (FILES - FILES // 50)
    touched = [
        step
        for sql in seen
        if sql.lstrip().upper().startswith("SELECT")
        for step in plan(db, sql)
        if re.match(r"(SCAN|SEARCH) (files|chunks)\b", step)
    ]
    assert seen and not touched, (seen, touched)


@pytest.mark.parametrize("sort", ["path", "modified"])
def test_a_page_deep_in_the_listing_seeks_to_its_cursor_instead_of_scanning(
    ledger: Ledger, sort: str
) -> None:
    db = ledger.db
    pages = []
    cursor = None
    for _ in range(3):
        page = list_documents(ledger, [Path(ROOT)], uri, sort=sort, limit=400, cursor=cursor)
        pages.append(page)
        cursor = page.next_cursor
    assert cursor is not None and pages[0].totals == {
        "indexed": FILES - FILES // 50, "pending": 0, "failed": FILES // 50,
    }  # fmt: skip
    listed = [d.path for p in pages for d in p.documents]
    assert len(listed) == len(set(listed)) == 1200
    found = scans(
        db, lambda: list_documents(ledger, [Path(ROOT)], uri, sort=sort, limit=50, cursor=cursor)
    )
    assert found and all(not steps for steps in found.values()), found


def test_a_first_page_reads_the_files_in_index_order_and_stops_at_its_limit(
    ledger: Ledger,
) -> None:
    for sort in ("path", "modified"):
        found = scans(ledger.db, lambda by=sort: list_documents(ledger, [Path(ROOT)], uri, sort=by))
        for sql, steps in found.items():
            # In index order (no sort of the whole table), LIMIT stops it after one page.
            assert all("USING" in step for step in steps), (sql, steps)
            assert "USE TEMP B-TREE" not in " ".join(plan(ledger.db, sql)), sql


@pytest.mark.parametrize("prefix", [f"{ROOT}/section-3/", "section-3/", "section-3/doc-0001"])
def test_a_path_prefix_is_a_range_the_index_seeks_to(ledger: Ledger, prefix: str) -> None:
    page = list_documents(ledger, [Path(ROOT)], uri, path_prefix=prefix, limit=500)
    expected = [
        rows(n)[0].path
        for n in range(FILES)
        if rows(n)[0].path.startswith(prefix) or rows(n)[0].rel_path.startswith(prefix)
    ]
    listed = [d.path for d in page.documents]
    assert sorted(listed) == sorted(expected) and listed, (prefix, listed[:3])
    found = scans(ledger.db, lambda: list_documents(ledger, [Path(ROOT)], uri, path_prefix=prefix))
    counting = [sql for sql in found if "count(" in sql]
    assert counting and all(not found[sql] for sql in counting), found


@pytest.mark.parametrize("prefix", ["a", "abc", "ab\U0010ffff", "\U0010ffff", "a\ud7ff", ""])
def test_prefix_ranges_hold_exactly_the_texts_that_start_with_the_prefix(prefix: str) -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (p TEXT PRIMARY KEY)")
    texts = [
        "a", "ab", "abc", "abd", "ab\U0010ffff", "ab\U0010ffffz", "b", "a\ud7ff", "a\ud7ffx",
        "a\ue000", "\U0010ffff", "\U0010ffffq", "", "B",
    ]  # fmt: skip
    db.executemany("INSERT INTO t VALUES (?)", [(t,) for t in texts])
    condition, params = prefix_sql("p", prefix)
    got = sorted(r[0] for r in db.execute(f"SELECT p FROM t WHERE {condition}", params))
    assert got == sorted(t for t in texts if t.startswith(prefix))


def test_the_failed_files_and_the_latest_indexed_are_read_from_their_own_indexes(
    ledger: Ledger,
) -> None:
    """What every status (its failed files) and the dashboard's overview (the files indexed
    last) read: a partial index each, never the table."""
    db = ledger.db
    found = scans(db, ledger.failed_files)
    found |= scans(db, lambda: ledger.list_files("status = 'indexed'", [], "updated_at DESC", 8))
    assert len(found) == 2, found
    for sql in found:
        steps = plan(db, sql)
        assert any("files_failed" in s or "files_recent" in s for s in steps), (sql, steps)
        assert "USE TEMP B-TREE" not in " ".join(steps), (sql, steps)
    assert len(ledger.failed_files()) == FILES // 50


def test_a_keyword_search_reads_the_chunk_rows_of_its_results_only(ledger: Ledger) -> None:
    """FTS5 scores every row holding a term (up to ``keyword_postings``); joined to ``chunks``
    before its sort, each of them was also looked up there (24 of 34 ms at 1M chunks). The
    ranking is a subquery and only the rows it keeps are looked up."""
    keyword = KeywordIndex(ledger.storage)
    with statements(ledger.db) as seen:
        found = keyword.keyword_search('"walrus" OR "kelp"', 5)
    assert len(found) == 5
    (sql,) = [s for s in seen if "chunks_fts MATCH" in s]
    steps = list(ledger.db.execute(f"EXPLAIN QUERY PLAN {sql}"))
    parent = {step[0]: step[1] for step in steps}
    fts = [step for step in steps if "chunks_fts VIRTUAL TABLE" in step[3]]
    lookup = [step for step in steps if re.match(r"SEARCH c\b", step[3])]
    assert len(fts) == 1 and len(lookup) == 1, steps
    assert parent[fts[0][0]] != 0 and lookup[0][1] == 0, steps  # ranked inside, looked up outside
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
