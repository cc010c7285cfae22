"""The ledger: files and their chunks change together, and every change bumps the generation."""

from __future__ import annotations

from pathlib import Path

from llm_engineering.adapters.jobs import JobStore
from llm_engineering.index_store.store.keyword import KeywordIndex
from llm_engineering.index_store.store.ledger import ChunkRow, FileRow, Ledger
from llm_engineering.storage import Storage


def file_row(path: str, file_type: str = "md") -> FileRow:
    root, _, rel = path.rpartition("/")
    return FileRow(path, root, rel, file_type, 10, 1, "sha", "indexed")


def chunk(path: str, ordinal: int, text: str) -> ChunkRow:
    return ChunkRow(f"{path}#{ordinal}", path, ordinal, f"hash-{text}", text)


def test_replacing_a_file_returns_the_chunks_it_dropped_and_keyword_search_follows(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    ledger, keyword = Ledger(storage), KeywordIndex(storage)
    note = "/docs/note.md"
    ledger.replace_file(file_row(note), [chunk(note, 0, "walrus tusks"), chunk(note, 1, "kelp")])
    assert [cid for cid, _ in keyword.keyword_search('"walrus"', 10)] == [f"{note}#0"]
    dropped = ledger.replace_file(file_row(note), [chunk(note, 1, "kelp forests")])
    assert dropped == [f"{note}#0"]
    assert keyword.keyword_search('"walrus"', 10) == []
    assert ledger.chunk_ids(note) == [f"{note}#1"] and ledger.file(note).chunk_count == 1  # type: ignore[union-attr]
    assert ledger.counts() == {"documents": 1, "failed": 0, "chunks": 1}
    assert ledger.remove_files([note]) == [f"{note}#1"]
    assert ledger.counts() == {"documents": 0, "failed": 0, "chunks": 0}
    storage.close()


def test_every_ledger_write_bumps_the_generation_and_a_job_write_does_not(
    tmp_path: Path,
) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    ledger = Ledger(storage)
    assert ledger.generation() == 0
    ledger.replace_file(file_row("/docs/a.md"), [])
    ledger.touch("/docs/a.md", 11, 2)
    assert ledger.generation() == 2
    jobs = JobStore(tmp_path)
    job, _ = jobs.create("faq", "base", {})
    jobs.update(job.id, status="queued")
    assert ledger.generation() == 2
    ledger.clear()
    assert ledger.generation() == 3
    jobs.close()
    storage.close()


def test_files_under_a_folder_and_failed_files(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    ledger = Ledger(storage)
    ledger.replace_file(file_row("/docs/a.md"), [])
    ledger.replace_file(file_row("/docs-old/b.md"), [])
    broken = file_row("/docs/sub/c.pdf", "pdf")
    broken.status, broken.error = "failed", "encrypted"
    ledger.replace_file(broken, [])
    assert sorted(ledger.files_under("/docs")) == ["/docs/a.md", "/docs/sub/c.pdf"]
    assert [(row.path, row.error) for row in ledger.failed_files()] == [
        ("/docs/sub/c.pdf", "encrypted")
    ]
    storage.close()
