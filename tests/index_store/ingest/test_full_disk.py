"""The data folder's disk fills up while files are indexed (a real tmpfs, filled to the last
byte): indexing pauses saying so, every file stays pending or failed with that reason, the
index keeps answering, and indexing resumes by itself once space is freed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from llm_engineering.errors import DiskFullError
from llm_engineering.index_store.background import IndexRunner
from tests.conftest import FACTS, QUERIES, wait_until
from tests.full_disk import PHRASE, fill, small_disk

NEW = 30


def new_files(folder: Path, count: int, start: int = 0) -> list[Path]:
    paths = []
    for number in range(start, start + count):
        path = folder / f"field-note-{number:02}.md"
        path.write_text(
            f"# Field note {number}\n\nThe quokka{number} colony was counted at dawn.\n\n"
            + "The ranger walked the fence line and wrote down every burrow. " * 12
        )
        paths.append(path)
    return paths


def test_indexing_pauses_on_a_full_disk_keeps_answering_and_resumes_once_space_is_freed(
    service_factory, mixed_folder: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with small_disk(tmp_path / "data") as data_dir:
        index = service_factory(data_dir=data_dir, watch=[mixed_folder])
        runner = IndexRunner(index, [mixed_folder], debounce=0.2)
        runner.start()
        try:
            wait_until(lambda: runner.reconciled.is_set(), "the first reconcile")
            assert index.status().documents == len(FACTS)

            ballast = fill(data_dir)
            added = new_files(mixed_folder, NEW)
            total = len(FACTS) + NEW

            def paused() -> bool:
                status = runner.status()
                accounted = status.documents + len(status.failed) + status.pending >= total
                return bool(status.error and PHRASE in status.error and accounted)

            wait_until(paused, "indexing paused, saying why, every file indexed, pending or failed")
            status = runner.status()
            assert all(PHRASE in failed.error for failed in status.failed), status.failed
            assert runner.error is None  # the runner waits for room; it has not stopped
            # Searches answer from what is committed (keyword hits while the vectors wait).
            hits, _ = index.search(QUERIES["txt"], top_k=3)
            assert any(FACTS["txt"][1] in hit.text for hit in hits)
            # A request to index is refused at once, saying why (it used to hang).
            with pytest.raises(DiskFullError, match=PHRASE):
                index.ingest([mixed_folder])

            ballast.unlink()

            def caught_up() -> bool:
                status = runner.status()
                return status.error is None and status.documents == total and not status.failed

            wait_until(caught_up, "indexing resumed by itself and indexed every new file")
            hits, _ = index.search(f"quokka{NEW - 1} colony", top_k=1)
            assert hits and hits[0].path == str(added[-1]) and "dense" in hits[0].retrieved_by
            # One vector per chunk: none the stopped run left behind, none missing.
            assert index.vectors.count() == index.status().chunks
        finally:
            runner.stop()


STOPS_WEDGED_CHROMA = """
import random, sys
from pathlib import Path
from llm_engineering.config import load_settings
from llm_engineering.errors import DiskFullError
from llm_engineering.index_store.store.vectors import VectorIndex, VectorRecord, VectorsPaused

data = Path(sys.argv[1])
vectors = VectorIndex(load_settings(data_dir=data))
vectors.ensure("model", 384)
records = lambda start: [
    VectorRecord(f"id{i}", [random.random() for _ in range(384)], {"n": i})
    for i in range(start, start + 100)
]
start = 0
try:
    while True:
        vectors.add(records(start))
        start += 100
except DiskFullError as exc:
    assert "no space left on the data folder's disk" in str(exc), exc
    print("paused after", start, "vectors:", exc, flush=True)
vectors.delete([f"id{i}" for i in range(10)])  # a delete used to block here for good
try:
    vectors.query([0.5] * 384, 3)
    raise SystemExit("a query answered from a paused collection")
except VectorsPaused:
    pass
(data / "room").unlink()
vectors.resume()
assert vectors.count() >= start, vectors.count()
vectors.add(records(100000))
print("resumed", vectors.count(), flush=True)
"""


def test_a_chroma_write_that_fails_for_want_of_space_pauses_it_instead_of_freezing_the_process(
    tmp_path: Path,
) -> None:
    """Embedded Chroma that failed a compaction for want of space blocks for good, holding the
    GIL, on its next delete; a paused collection never calls it, and a resumed one is opened
    afresh. In a child process, so that a freeze fails this test instead of the run."""
    with small_disk(tmp_path / "data", megabytes=4) as data_dir:
        # Half the disk is taken, so Chroma's own files fill the rest.
        (data_dir / "room").write_bytes(b"\0" * 2_000_000)
        script = textwrap.dedent(STOPS_WEDGED_CHROMA)
        try:
            done = subprocess.run(
                [sys.executable, "-c", script, str(data_dir)],
                capture_output=True,
                text=True,
                timeout=240,
                cwd=Path(__file__).resolve().parents[3],
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"the process froze: {exc.stdout!r} {exc.stderr!r}") from None
        assert done.returncode == 0, done.stdout + done.stderr[-3000:]
        assert "resumed" in done.stdout, done.stdout
