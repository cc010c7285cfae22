"""Training jobs: their rows in ``state.sqlite`` and their folders under ``jobs/ID/``.

Lifecycle: ``validating -> queued -> running -> succeeded | failed | cancelled``, and
``interrupted`` for a job whose worker stopped without finishing (a server restart, a
crash) once its automatic resumes are used up; ``resume`` queues it again.

What a job folder holds: :class:`~llm_engineering.adapters.job_folder.JobFolder`.
Only the job runner and the service write rows; the worker writes only its folder.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.job_rows import rows_from_folders
from llm_engineering.errors import UserError
from llm_engineering.storage import Migrations, Storage, run_script

__all__ = ["ACTIVE", "MIGRATIONS", "Job", "JobKind", "JobStatus", "JobStore"]

JobStatus = Literal[
    "validating", "queued", "running", "succeeded", "failed", "cancelled", "interrupted"
]
ACTIVE: tuple[JobStatus, ...] = ("validating", "queued", "running")

MIGRATIONS = Migrations()
"""The jobs table; the index's ledger registers its own."""


@MIGRATIONS.register
def m003_jobs(db: sqlite3.Connection) -> None:
    run_script(
        db,
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN (
                'validating', 'queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted'
            )),
            base_model TEXT NOT NULL,
            dataset_sha256 TEXT,
            examples INTEGER NOT NULL DEFAULT 0,
            hyperparameters TEXT NOT NULL,
            created REAL NOT NULL,
            started REAL,
            finished REAL,
            pid INTEGER,
            attempts INTEGER NOT NULL DEFAULT 0,
            cancel_requested INTEGER NOT NULL DEFAULT 0,
            adapter TEXT,
            error TEXT
        );
        CREATE INDEX jobs_status ON jobs(status);
        """,
    )


@MIGRATIONS.register
def m007_job_kind(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE jobs ADD COLUMN kind TEXT NOT NULL DEFAULT 'qlora'")


_COLUMNS = (
    "id, name, status, base_model, dataset_sha256, examples, hyperparameters, created, "
    "started, finished, pid, attempts, cancel_requested, adapter, error, kind"
)
JobKind = Literal["qlora", "retrieval"]
"""``qlora``: an adapter, trained by a worker process the job runner starts. ``retrieval``: the
embedding model tuned on the corpus, run by the process that writes the index
(:mod:`llm_engineering.adapters.retrieval_jobs`)."""


@dataclass
class Job:
    id: str
    name: str
    status: JobStatus
    base_model: str
    dataset_sha256: str | None
    examples: int
    hyperparameters: dict[str, Any]
    created: float
    started: float | None
    finished: float | None
    pid: int | None
    attempts: int
    cancel_requested: bool
    adapter: str | None
    error: str | None
    kind: JobKind = "qlora"


def _job(row: Sequence[Any]) -> Job:
    values = list(row)
    values[6] = json.loads(values[6])
    values[12] = bool(values[12])
    return Job(*values)


class JobStore:
    """Job rows (in the shared ``state.sqlite``) and job folders."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.root = data_dir / "jobs"
        self.storage = Storage(data_dir / "state.sqlite")
        self.storage.migrate(MIGRATIONS)
        self._restore()

    def _restore(self) -> None:
        """An empty jobs table beside job folders (``state.sqlite`` was remade): rows again."""
        if (
            self.storage.db.execute("SELECT 1 FROM jobs LIMIT 1").fetchone()
            or not self.root.is_dir()
        ):
            return
        rows = rows_from_folders(self.root, self.data_dir / "adapters")

        def work(db: sqlite3.Connection) -> None:
            for row in rows:
                db.execute(
                    f"INSERT OR IGNORE INTO jobs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                    tuple(row.values()),
                )

        if rows:
            self.storage.write(work)

    def close(self) -> None:
        self.storage.close()

    def folder(self, job_id: str) -> JobFolder:
        return JobFolder(self.root / job_id)

    def create(
        self, name: str, base_model: str, hyperparameters: dict[str, Any], kind: JobKind = "qlora"
    ) -> tuple[Job, JobFolder]:
        """A new job in ``validating``, with its (empty) folder."""
        job_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        folder = self.folder(job_id)
        folder.create()
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT INTO jobs (id, name, status, base_model, hyperparameters, created, kind) "
                "VALUES (?, ?, 'validating', ?, ?, ?, ?)",
                (job_id, name, base_model, json.dumps(hyperparameters), now, kind),
            )

        self.storage.write(work)
        return self.get(job_id), folder

    def get(self, job_id: str) -> Job:
        """Raises UserError for an unknown id."""
        row = self.storage.db.execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)
        ).fetchone()
        if row is None:
            recent = ", ".join(j.id for j in self.jobs(limit=5)) or "none yet"
            raise UserError(f"unknown job {job_id!r}; recent jobs: {recent}")
        return _job(row)

    def jobs(
        self, status: Sequence[str] | None = None, limit: int = 50, kind: JobKind | None = None
    ) -> list[Job]:
        """Newest first."""
        conditions, args = [], tuple[str, ...]()
        if status:
            conditions.append(f"status IN ({', '.join('?' * len(status))})")
            args = tuple(status)
        if kind:
            conditions.append("kind = ?")
            args += (kind,)
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self.storage.db.execute(
            f"SELECT {_COLUMNS} FROM jobs {where} ORDER BY created DESC, id DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [_job(row) for row in rows]

    def count(self) -> int:
        return int(self.storage.db.execute("SELECT count(*) FROM jobs").fetchone()[0])

    def update(self, job_id: str, *, only_if: Sequence[str] | None = None, **values: Any) -> bool:
        """Set columns; with ``only_if``, only while the status is one of those.

        Returns:
            Whether the row changed (a compare-and-set when ``only_if`` is given).
        """
        if "hyperparameters" in values:
            values["hyperparameters"] = json.dumps(values["hyperparameters"])
        sets = ", ".join(f"{column} = ?" for column in values)
        sql = f"UPDATE jobs SET {sets} WHERE id = ?"
        args: tuple[Any, ...] = (*values.values(), job_id)
        if only_if:
            sql += f" AND status IN ({', '.join('?' * len(only_if))})"
            args += tuple(only_if)

        def work(db: sqlite3.Connection) -> int:
            return db.execute(sql, args).rowcount

        return bool(self.storage.write(work))
