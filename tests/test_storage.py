"""The shared SQLite file: write transactions, named migrations, files from before them."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from llm_engineering.adapters.jobs import MIGRATIONS as JOB_MIGRATIONS
from llm_engineering.adapters.jobs import JobStore
from llm_engineering.index_store.store.ledger import MIGRATIONS as LEDGER_MIGRATIONS
from llm_engineering.index_store.store.ledger import Ledger
from llm_engineering.storage import LEGACY_MIGRATIONS, Migrations, Storage


def old_state_file(path: Path, version: int) -> None:
    """A ``state.sqlite`` as the code before named migrations left it: the first ``version``
    migrations run in order, counted in ``PRAGMA user_version``, a file and a job in it."""
    steps = [s for s in [*LEDGER_MIGRATIONS, *JOB_MIGRATIONS] if s.__name__ in LEGACY_MIGRATIONS]
    assert [step.__name__ for step in steps] == list(LEGACY_MIGRATIONS)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    for number, step in enumerate(steps[:version], start=1):
        step(db)
        db.execute(f"PRAGMA user_version = {number}")
    db.execute(
        "INSERT INTO files VALUES ('/d/a.md', '/d', 'a.md', 'md', 1, 1, 'h', 'indexed', "
        "NULL, 'A', 0, 0)"
    )
    if version >= 3:
        db.execute(
            "INSERT INTO jobs (id, name, status, base_model, hyperparameters, created) "
            "VALUES ('j1', 'faq', 'queued', 'base', '{}', 1.0)"
        )
    db.execute("COMMIT")
    db.close()


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("PRAGMA user_version").fetchone()[0])


def test_a_file_from_before_named_migrations_opens_without_running_them_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite"
    old_state_file(path, version=3)
    newer = [s.__name__ for s in LEDGER_MIGRATIONS if s.__name__ not in LEGACY_MIGRATIONS]
    newer += [s.__name__ for s in JOB_MIGRATIONS if s.__name__ not in LEGACY_MIGRATIONS]
    for _ in range(2):  # open, close, open again
        storage = Storage(path)
        ledger = Ledger(storage)  # applies only the migrations that came after the file
        jobs = JobStore(tmp_path)
        assert storage.migrate(LEDGER_MIGRATIONS) == [] and storage.migrate(JOB_MIGRATIONS) == []
        assert storage.applied_migrations() == [*LEGACY_MIGRATIONS, *newer]
        assert ledger.file("/d/a.md") is not None and jobs.get("j1").status == "queued"
        assert jobs.get("j1").kind == "qlora"  # a job from before kinds is a QLoRA job
        jobs.close()
        storage.close()
    assert user_version(path) == 3


def test_a_file_from_before_the_jobs_table_gets_it_from_the_job_store(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    old_state_file(path, version=2)
    storage = Storage(path)
    Ledger(storage)
    ledger_names = [s.__name__ for s in LEDGER_MIGRATIONS]
    assert storage.applied_migrations() == ledger_names
    store = JobStore(tmp_path)
    job_names = {s.__name__ for s in JOB_MIGRATIONS}
    assert sorted(store.storage.applied_migrations()) == sorted(
        {*ledger_names, *LEGACY_MIGRATIONS, *job_names}
    )
    assert store.jobs() == []
    assert user_version(path) == 3
    store.close()
    storage.close()


def test_each_owner_applies_only_its_own_migrations_and_each_runs_once(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    storage = Storage(path)
    assert storage.migrate(JOB_MIGRATIONS) == ["m003_jobs", "m007_job_kind"]
    assert storage.migrate(JOB_MIGRATIONS) == []
    tables = {row[0] for row in storage.db.execute("SELECT name FROM sqlite_master")}
    assert "jobs" in tables and "files" not in tables
    # The previous release reads user_version as a count of the legacy list: m001 is missing.
    assert user_version(path) == 0
    Ledger(storage)
    names = {s.__name__ for s in [*LEDGER_MIGRATIONS, *JOB_MIGRATIONS]}
    assert sorted(storage.applied_migrations()) == sorted({*names, *LEGACY_MIGRATIONS})
    assert user_version(path) == 3
    storage.close()


def test_a_write_that_raises_leaves_nothing_behind(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    storage.write(lambda db: db.execute("CREATE TABLE t (x INTEGER)"))

    def half_done(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        storage.write(half_done)
    assert storage.db.execute("SELECT count(*) FROM t").fetchone()[0] == 0
    assert storage.write(lambda db: db.execute("INSERT INTO t VALUES (2)").rowcount) == 1
    storage.close()


def test_a_failing_migration_is_not_recorded_and_runs_again_next_time(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    attempts: list[int] = []
    migrations = Migrations()

    @migrations.register
    def m001_flaky(db: sqlite3.Connection) -> None:
        attempts.append(1)
        db.execute("CREATE TABLE flaky (x INTEGER)")
        if len(attempts) == 1:
            raise RuntimeError("first try fails")

    with pytest.raises(RuntimeError):
        storage.migrate(migrations)
    assert storage.applied_migrations() == []
    assert storage.migrate(migrations) == ["m001_flaky"]
    storage.close()


def test_migration_names_must_be_numbered_and_unique() -> None:
    migrations = Migrations()

    def create_things(db: sqlite3.Connection) -> None: ...

    def m001_things(db: sqlite3.Connection) -> None: ...

    with pytest.raises(ValueError, match="mNNN_"):
        migrations.register(create_things)
    migrations.register(m001_things)
    with pytest.raises(ValueError, match="twice"):
        migrations.register(m001_things)
    assert migrations.names == ["m001_things"]


def test_registered_names_are_unique_across_owners() -> None:
    names = [*LEDGER_MIGRATIONS.names, *JOB_MIGRATIONS.names]
    assert len(names) == len(set(names))


def test_every_thread_gets_its_own_connection(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "state.sqlite")
    seen: list[sqlite3.Connection] = []
    thread = threading.Thread(target=lambda: seen.append(storage.db))
    thread.start()
    thread.join(timeout=30)
    assert seen and seen[0] is not storage.db
    assert storage.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    storage.close()
