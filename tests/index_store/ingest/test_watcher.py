"""The watched folder with the real watchdog, real files, the real model and embedded Chroma."""

from __future__ import annotations

import ctypes
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.ingest.watcher import ChangeQueue, FolderWatcher
from tests.conftest import describe

# Generous: a deadline is there to end a hung test, not to measure speed.
DEADLINE = 120.0


def wait_until(check: Callable[[], object], timeout: float = DEADLINE) -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not met within {timeout} s: {describe(check)}")
        time.sleep(0.05)


def keyword_paths(service, query: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Names of the files whose chunks match, each once, best first."""
    hits = service.search(query, top_k=20, mode="keyword")[0]
    return list(dict.fromkeys(Path(hit.path).name for hit in hits))


def consistent(service) -> bool:  # type: ignore[no-untyped-def]
    """Every chunk row has exactly one vector, and every vector a chunk row."""
    return service.vectors.all_ids() == service.ledger.all_chunk_ids()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "watched"
    path.mkdir()
    return path


@pytest.fixture
def start_runner(service_factory, folder: Path) -> Iterator[Callable[..., IndexRunner]]:  # type: ignore[no-untyped-def]
    runners: list[IndexRunner] = []

    def start(**settings) -> IndexRunner:  # type: ignore[no-untyped-def]
        service = service_factory(watch=[folder], **settings)
        runner = IndexRunner(service, [folder], debounce=0.3)
        runner.start()
        runners.append(runner)
        wait_until(runner.reconciled.is_set)
        return runner

    yield start
    for runner in runners:
        runner.stop()


class ManualClock:
    """A clock that moves only when told: the queue's timing, checked without a stopwatch."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_queue_coalesces_a_burst_and_releases_after_the_quiet_period() -> None:
    clock = ManualClock()
    queue = ChangeQueue(debounce=0.2, settle=0.01, clock=clock)
    path = Path("/x/a.md")
    for _ in range(20):
        queue.add(path)
    assert len(queue) == 1
    clock.advance(0.15)
    assert queue.take_due(timeout=0) == []  # still inside the quiet period
    clock.advance(0.1)
    assert queue.take_due(timeout=0) == [path]
    assert len(queue) == 0


def test_a_closed_write_settles_sooner_than_an_open_one() -> None:
    clock = ManualClock()
    queue = ChangeQueue(debounce=0.5, settle=0.01, clock=clock)
    still_writing, closed = Path("/x/open.md"), Path("/x/closed.md")
    queue.add(still_writing)
    queue.add(closed, complete=True)
    clock.advance(0.02)
    assert queue.take_due(timeout=0) == [closed]
    clock.advance(0.5)
    assert queue.take_due(timeout=0) == [still_writing]


def test_a_path_that_never_goes_quiet_is_released_after_max_wait() -> None:
    clock = ManualClock()
    queue = ChangeQueue(debounce=0.3, max_wait=0.5, clock=clock)
    path = Path("/x/log.txt")
    for _ in range(4):  # an event every 0.1 s keeps it from ever going quiet
        queue.add(path)
        assert queue.take_due(timeout=0) == []
        clock.advance(0.1)
    queue.add(path)
    clock.advance(0.1)  # 0.5 s after the first event
    assert queue.take_due(timeout=0) == [path]


def test_take_due_wakes_for_a_path_that_becomes_due_while_it_waits() -> None:
    queue = ChangeQueue(debounce=0.05)
    queue.add(Path("/x/b.md"))
    # the real clock: the wait ends by the path falling due, long before the timeout
    assert queue.take_due(timeout=DEADLINE) == [Path("/x/b.md")]


def test_drop_edit_rename_and_delete_are_followed(start_runner, folder: Path) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner()
    service = runner.index
    note = folder / "note.md"
    note.write_text("# Note\n\nThe cormorant nests on the pier.\n")
    wait_until(lambda: keyword_paths(service, "cormorant") == ["note.md"])

    note.write_text("# Note\n\nThe pelican nests on the pier.\n")
    wait_until(lambda: keyword_paths(service, "pelican") == ["note.md"])
    assert keyword_paths(service, "cormorant") == []

    sub = folder / "sub"
    sub.mkdir()
    note.rename(sub / "moved.md")
    wait_until(lambda: keyword_paths(service, "pelican") == ["moved.md"])
    # Search hides a file gone from disk at once; the ledger forgets it when its event lands.
    wait_until(lambda: service.ledger.file(str(note)) is None)

    (sub / "moved.md").unlink()
    wait_until(lambda: keyword_paths(service, "pelican") == [])
    wait_until(lambda: service.status().documents == 0)
    assert consistent(service)


def test_an_atomic_save_is_one_update_with_one_version_of_its_chunks(
    start_runner, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner()
    service = runner.index
    target = folder / "doc.md"
    target.write_text("# Doc\n\nVersion one mentions walruses.\n")
    wait_until(lambda: keyword_paths(service, "walruses") == ["doc.md"])
    seen_missing = []

    def watch_for_gap() -> bool:
        # while the save happens the old or the new version is searchable, never neither
        if not keyword_paths(service, "walruses") and not keyword_paths(service, "narwhals"):
            seen_missing.append(True)
        return bool(keyword_paths(service, "narwhals"))

    temp = folder / ".doc.md.tmp1234"  # how editors save: write a hidden temp, rename over
    temp.write_text("# Doc\n\nVersion two mentions narwhals.\n")
    os.replace(temp, target)
    wait_until(watch_for_gap)
    assert not seen_missing
    assert keyword_paths(service, "walruses") == []
    assert (
        len(service.ledger.chunk_ids(str(target)))
        == service.ledger.file(str(target)).chunk_count
        == 1
    )
    assert consistent(service)


def test_a_burst_of_writes_to_one_file_is_indexed_once(start_runner, folder: Path) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner()
    service = runner.index
    calls: list[list[Path]] = []
    original = service.sync

    def counting_sync(paths, progress=None, **options):  # type: ignore[no-untyped-def]
        calls.append(list(paths))
        return original(paths, progress, **options)

    service.sync = counting_sync
    path = folder / "busy.md"
    with path.open("w") as handle:
        for i in range(50):
            handle.write(f"line {i} about albatrosses\n")
            handle.flush()
    wait_until(lambda: keyword_paths(service, "albatrosses") == ["busy.md"])
    # Events arrive in order: once a later file is indexed and the queue is empty, every
    # straggling event of busy.md has been taken; once a third is indexed, the (single)
    # indexing thread has finished whatever it took before.
    (folder / "later.md").write_text("# Later\n\nkittiwakes\n")
    wait_until(lambda: keyword_paths(service, "kittiwakes") and len(runner.queue) == 0)
    (folder / "last.md").write_text("# Last\n\nfulmars\n")
    wait_until(lambda: keyword_paths(service, "fulmars") == ["last.md"])
    assert sum(path in batch for batch in calls) == 1


def test_200_files_copied_at_once_are_each_indexed_exactly_once(
    start_runner, service_factory, folder: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = tmp_path / "source"
    source.mkdir()
    for i in range(200):  # one to four chunks each
        body = " ".join(f"token{i}x{j}" for j in range(8 + i % 7 * 6))
        (source / f"f{i:03}.md").write_text(f"# File {i}\n\n{body}\n")
    runner = start_runner(chunk_size=64, chunk_overlap=8)
    service = runner.index
    shutil.copytree(source, folder / "batch")
    wait_until(
        lambda: service.status().documents == 200 and runner.status().pending == 0, timeout=300
    )

    per_file = service.ledger.db.execute("SELECT sum(chunk_count) FROM files").fetchone()[0]
    assert service.status().chunks == per_file
    assert len(service.vectors.all_ids()) == per_file and consistent(service)
    # and it is the same index a clean one-shot ingest builds
    clean = service_factory(data_dir=tmp_path / "clean", chunk_size=64, chunk_overlap=8)
    clean.ingest([source])
    assert clean.status().chunks == per_file


def test_hidden_temp_and_oversize_files_are_handled(start_runner, folder: Path) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner(max_file_size_mb=0.01)
    service = runner.index
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD.md").write_text("# git\n\nsecret gannets\n")
    (folder / "draft.md~").write_text("# backup\n\nsecret gannets\n")
    (folder / ".#lock.md").write_text("secret gannets")
    (folder / "big.md").write_text("# Big\n\n" + "gannets " * 5000)
    (folder / "fine.md").write_text("# Fine\n\nvisible puffins\n")
    wait_until(lambda: keyword_paths(service, "puffins") == ["fine.md"])
    wait_until(lambda: [Path(f.path).name for f in service.status().failed] == ["big.md"])
    assert "max_file_size_mb" in service.status().failed[0].error
    assert keyword_paths(service, "gannets") == []


def test_changes_made_while_stopped_are_reconciled_at_start(
    start_runner, counting_embedder, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    (folder / "keep.md").write_text("# Keep\n\nunchanged ospreys\n")
    (folder / "edit.md").write_text("# Edit\n\nold herons\n")
    (folder / "drop.md").write_text("# Drop\n\ndoomed egrets\n")
    runner = start_runner()
    assert runner.index.status().documents == 3
    runner.stop()
    runner.index.close()

    (folder / "edit.md").write_text("# Edit\n\nnew bitterns\n")
    (folder / "drop.md").unlink()
    (folder / "new.md").write_text("# New\n\nfresh spoonbills\n")
    embedded_before = counting_embedder.embedded
    runner = start_runner()
    service = runner.index
    report = service.last_report
    assert (report.added, report.updated, report.removed, report.unchanged) == (1, 1, 1, 1)
    assert counting_embedder.embedded - embedded_before == 2  # only the new and the edited file
    assert keyword_paths(service, "herons") == [] and keyword_paths(service, "egrets") == []
    assert keyword_paths(service, "bitterns") == ["edit.md"] and keyword_paths(
        service, "spoonbills"
    ) == ["new.md"]
    assert consistent(service)


def test_an_unchanged_folder_costs_no_embedding_at_start(
    start_runner, counting_embedder, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    for i in range(30):
        (folder / f"n{i}.md").write_text(f"# N{i}\n\ncontent {i}\n")
    runner = start_runner()
    runner.stop()
    runner.index.close()
    before = counting_embedder.embedded
    runner = start_runner()
    assert runner.index.last_report.unchanged == 30
    assert counting_embedder.embedded == before


def test_a_name_that_is_not_utf8_fails_alone_and_the_watcher_goes_on(
    start_runner, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner()
    service = runner.index
    raw = os.path.join(os.fsencode(folder), b"bad-\xff.md")
    with open(raw, "wb") as handle:
        handle.write(b"# Bad\n\nmurrelets\n")
    shown = str(folder / "bad-\\xff.md")
    wait_until(lambda: [f.path for f in runner.status().failed] == [shown])
    (folder / "later.md").write_text("# Later\n\nkittiwakes\n")
    wait_until(lambda: keyword_paths(service, "kittiwakes") == ["later.md"])
    wait_until(lambda: runner.status().error is None)  # cleared when the run returns
    # the watcher's queue may hold the raw name while list_documents runs
    listing = service.list_documents(pending=[Path(os.fsdecode(raw))])
    assert {d.path for d in listing.documents} == {shown, str(folder / "later.md")}

    os.unlink(raw)
    wait_until(lambda: runner.status().failed == [] and runner.status().error is None)
    assert keyword_paths(service, "murrelets") == []


def test_an_unexpected_error_on_one_change_is_reported_and_later_changes_still_index(
    start_runner, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    runner = start_runner()
    service = runner.index
    sync = service.sync

    def a_bug_on_one_path(paths, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Stands for a bug met on one file (as a name that was not UTF-8 once was).
        if any(path.name == "trigger.md" for path in paths):
            raise RuntimeError("a bug")
        return sync(paths, *args, **kwargs)

    monkeypatch.setattr(service, "sync", a_bug_on_one_path)
    (folder / "trigger.md").write_text("# Trigger\n\npetrels\n")
    wait_until(lambda: runner.status().error)
    assert "trigger.md after an unexpected error" in str(runner.status().error)
    (folder / "later.md").write_text("# Later\n\nfulmars\n")
    wait_until(lambda: keyword_paths(service, "fulmars") == ["later.md"])
    # the run's files are searchable as soon as they are committed, a moment before the run
    # returns and the error is cleared: wait for that state, never race it
    wait_until(lambda: runner.status().error is None)
    assert runner._thread.is_alive()


def test_a_watched_folder_deleted_and_made_again_is_watched_again_and_reconciled(
    start_runner, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    (folder / "old.md").write_text("# Old\n\nospreys\n")
    runner = start_runner()
    service = runner.index
    assert runner.status().watching and runner.status().watch_problems == []
    shutil.rmtree(folder)
    wait_until(lambda: not runner.status().watching)
    assert "does not exist" in runner.status().watch_problems[0]
    assert str(folder) in runner.status().watch_problems[0]

    folder.mkdir()
    (folder / "new.md").write_text("# New\n\nkestrels\n")
    wait_until(lambda: keyword_paths(service, "kestrels") == ["new.md"])
    wait_until(lambda: runner.status().watching)
    assert runner.status().watch_problems == []
    (folder / "later.md").write_text("# Later\n\nmerlins\n")  # the new folder is watched
    wait_until(lambda: keyword_paths(service, "merlins") == ["later.md"])
    assert keyword_paths(service, "ospreys") == [] and consistent(service)


def test_a_watched_folder_missing_at_start_is_watched_and_indexed_once_it_exists(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "later"
    service = service_factory(watch=[folder])
    runner = IndexRunner(service, [folder], debounce=0.3)
    runner.start()
    try:
        wait_until(runner.reconciled.is_set)
        assert not runner.status().watching
        assert "does not exist" in runner.status().watch_problems[0]
        folder.mkdir()
        (folder / "first.md").write_text("# First\n\nshearwaters\n")
        wait_until(lambda: keyword_paths(service, "shearwaters") == ["first.md"])
        wait_until(lambda: runner.status().watching)
    finally:
        runner.stop()


def test_changes_seen_while_a_folder_is_away_wait_for_it_to_be_reconciled_whole(
    tmp_path: Path,
) -> None:
    # A folder moved away keeps its watch, which names what changes there by the old paths:
    # taken while the folder is away, such a path looked deleted and its file was forgotten,
    # and a move back within a second (or during a long run) was never noticed.
    folder, away = tmp_path / "docs", tmp_path / "away"
    folder.mkdir()
    queue = ChangeQueue(debounce=0.01, settle=0.01)
    watcher = FolderWatcher([folder], queue)
    watcher.start()
    try:
        folder.rename(away)
        (away / "edited.md").write_text("# Edited\n")
        wait_until(lambda: folder / "edited.md" in queue.paths())
        handed_on: list[Path] = []

        def drained() -> bool:
            handed_on.extend(queue.take_gone() + queue.take_due(timeout=0))
            return not queue.paths()

        wait_until(drained)
        assert handed_on == []  # not as deleted, nor to index by a path that is not there
        assert not watcher.watching and "does not exist" in watcher.problems()[0]
        away.rename(folder)
        assert watcher.check() == [folder] and watcher.watching
    finally:
        watcher.stop()


def test_a_watched_folder_moved_away_and_back_is_reconciled(
    start_runner, folder: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    (folder / "kept.md").write_text("# Kept\n\nsanderlings\n")
    runner = start_runner()
    service = runner.index
    away = tmp_path / "away"
    folder.rename(away)
    wait_until(lambda: not runner.status().watching)
    (away / "meanwhile.md").write_text("# Meanwhile\n\ngannets\n")
    (away / "kept.md").write_text("# Kept\n\nturnstones\n")
    away.rename(folder)
    wait_until(lambda: keyword_paths(service, "gannets") == ["meanwhile.md"])
    wait_until(lambda: keyword_paths(service, "turnstones") == ["kept.md"])
    wait_until(lambda: runner.status().watching)
    assert service.get_document(path=str(folder / "meanwhile.md")).text.endswith("gannets")
    assert keyword_paths(service, "sanderlings") == [] and consistent(service)


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


@contextmanager
def reading_as_a_user() -> Iterator[None]:
    """Threads started inside the block read folders as an ordinary user does, so a folder
    with mode 000 cannot be read even when the tests run as root.

    Root reads any folder through two capabilities, CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
    Capabilities belong to a thread and a new thread copies its creator's, so this thread
    leaves them out of its effective set for the block (they stay permitted) and takes them
    back after; the threads it started meanwhile keep reading without them.
    """
    dac = (1 << 1) | (1 << 2)
    libc = ctypes.CDLL(None, use_errno=True)
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        pytest.skip(
            f"capget failed (errno {ctypes.get_errno()}): cannot drop root's reading rights"
        )
    held = data[0].effective & dac
    if held:
        data[0].effective &= ~dac
        if libc.capset(ctypes.byref(header), data) != 0:
            pytest.skip(f"capset failed (errno {ctypes.get_errno()}): cannot read as a user")
    try:
        yield
    finally:
        if held:
            data[0].effective |= held
            assert libc.capset(ctypes.byref(header), data) == 0, ctypes.get_errno()


def test_an_unreadable_subfolder_is_a_failed_entry_and_indexed_and_watched_once_readable(
    start_runner, folder: Path
) -> None:  # type: ignore[no-untyped-def]
    sub = folder / "sub"
    sub.mkdir()
    (sub / "inside.md").write_text("# Inside\n\nphalaropes\n")
    (folder / "top.md").write_text("# Top\n\ndunlins\n")
    sub.chmod(0)
    try:
        with reading_as_a_user():
            runner = start_runner()
        service = runner.index
        assert keyword_paths(service, "dunlins") == ["top.md"]
        failed = runner.status().failed
        assert [f.path for f in failed] == [str(sub)], failed
        assert "cannot read folder" in failed[0].error and "Permission denied" in failed[0].error
        assert any(str(sub) in problem for problem in runner.status().watch_problems)
    finally:
        sub.chmod(0o755)
    wait_until(lambda: keyword_paths(service, "phalaropes") == ["inside.md"])
    wait_until(lambda: runner.status().failed == [] and runner.status().watch_problems == [])
    (sub / "later.md").write_text("# Later\n\navocets\n")  # its watch is back
    wait_until(lambda: keyword_paths(service, "avocets") == ["later.md"])

    sub.chmod(0)  # unreadable while watched: the same again
    try:
        wait_until(lambda: [f.path for f in runner.status().failed] == [str(sub)])
        assert keyword_paths(service, "avocets") == []
    finally:
        sub.chmod(0o755)
    wait_until(lambda: keyword_paths(service, "avocets") == ["later.md"])
    wait_until(lambda: runner.status().failed == [] and runner.status().watch_problems == [])


def test_the_log_names_the_files_a_change_indexed(start_runner, folder: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    caplog.set_level(logging.INFO, logger="llm_engineering.index_store.background")
    start_runner()
    (folder / "kestrel.md").write_text("# Kestrel\n\nThe kestrel hovers over the meadow.\n")

    def logged() -> list[str]:
        return [r.getMessage() for r in caplog.records if "indexed changes" in r.getMessage()]

    wait_until(logged)
    assert (
        logged()[0]
        == f"indexed changes: 1 added, 0 updated, 0 removed, 0 failed: {folder / 'kestrel.md'}"
    )


def test_a_server_stopped_while_reconciling_never_logs_a_partial_count_as_the_folders(
    service_factory, folder: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    """Whenever the stop comes, a 'reconciled' line (if any) accounts for every file."""
    import logging

    caplog.set_level(logging.INFO, logger="llm_engineering.index_store.background")
    for i in range(60):
        (folder / f"n{i:02}.md").write_text(f"# Note {i}\n\nThe number {i} is noted here.\n")
    runner = IndexRunner(service_factory(watch=[folder]), [folder], watch=False)
    runner.start()
    runner.stop()
    for record in caplog.records:
        message = record.getMessage()
        if message.startswith("reconciled "):
            counts = [int(part.split()[0]) for part in message.split(": ", 1)[1].split(", ")[:5]]
            assert sum(counts) == 60, message
