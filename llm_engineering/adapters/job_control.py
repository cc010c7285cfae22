"""Following and changing queued jobs: the part of :class:`TrainingService` that works on jobs
once they exist (rows, views, events, follow, cancel, resume, and who runs them).

A mixin so that :class:`~llm_engineering.adapters.service.TrainingService` stays one object
for its callers while each module keeps to one job.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from llm_engineering.adapters.events import EventTail
from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.job_runner import JobRunner
from llm_engineering.adapters.job_view import JobView
from llm_engineering.adapters.jobs import ACTIVE, Job, JobStore
from llm_engineering.adapters.records import JobSpec
from llm_engineering.config import Settings
from llm_engineering.errors import UserError
from llm_engineering.lock import WriterLock

__all__ = ["JobControl"]


class JobControl:
    """Jobs once queued: see them, follow them, cancel or resume them, stop running them.

    Callers see a job through these methods only (its row, its view, its events), never its
    folder or the job store.
    """

    settings: Settings
    store: JobStore
    runner: JobRunner | None

    def stop_runner(self, *, interrupted: str | None = None) -> None:
        """Stop running jobs here: their workers checkpoint and exit, and the jobs are queued
        to resume when jobs run next, or, given why (``interrupted``), recorded interrupted
        to be resumed by hand."""
        if self.runner is not None:
            self.runner.stop(interrupted=interrupted)
            self.runner = None

    def runner_pid(self) -> int | None:
        """The pid of the process that runs jobs now (this one included); None when none does."""
        if self.runs_here:
            return os.getpid()
        lock = WriterLock(self.settings.data_dir, "jobs.lock")
        if not lock.taken():
            return None
        return lock.holder() or 0  # 0: held, its holder not yet written down

    def job(self, job_id: str) -> Job:
        """Job ``job_id``'s row: its status, attempts, adapter, error (no progress).

        Raises:
            UserError: unknown job.
        """
        return self.store.get(job_id)

    def job_rows(self, status: str | None = None, limit: int = 50) -> list[Job]:
        """The newest jobs' rows (only those with ``status`` when given), reading no folder."""
        return self.store.jobs([status] if status else None, limit=limit)

    def job_count(self) -> int:
        """How many jobs there are (every status)."""
        return self.store.count()

    def spec(self, job_id: str) -> JobSpec:
        """What job ``job_id`` was asked to do.

        Raises:
            UserError: unknown job.
        """
        return self._folder(job_id).spec()

    def view(self, job_id: str, tail: int = 10) -> JobView:
        """The job with its latest progress and its last ``tail`` events (0: none).

        Raises:
            UserError: unknown job.
        """
        return JobView.read(self.store.get(job_id), self.store.folder(job_id), tail)

    def cancel(self, job_id: str) -> Job:
        """Cancel a queued or interrupted job now, or ask a running one to stop at its next step.

        Raises:
            UserError: unknown job, or it has already ended.
        """
        job = self.store.get(job_id)
        if self.store.update(
            job_id,
            only_if=["validating", "queued", "interrupted"],
            status="cancelled",
            finished=time.time(),
        ):
            return self.store.get(job_id)
        if job.status == "running":
            self.store.folder(job_id).request_cancel()
            self.store.update(job_id, cancel_requested=1)
            return self.store.get(job_id)
        raise UserError(f"job {job_id} has already ended ({job.status}); nothing to cancel")

    def resume(self, job_id: str) -> Job:
        """Queue an interrupted job again; it continues from its last checkpoint."""
        job = self.store.get(job_id)
        if not self.store.update(
            job_id, only_if=["interrupted"], status="queued", finished=None, error=None, attempts=0
        ):
            raise UserError(f"job {job_id} is {job.status}; only an interrupted job can be resumed")
        if self.runner is not None:
            self.runner.wake()
        return self.store.get(job_id)

    def jobs(self, status: str | None = None, limit: int = 20) -> list[JobView]:
        """The newest jobs (only those with ``status`` when given), without their events."""
        return [
            self.view(job.id, tail=0)
            for job in self.store.jobs([status] if status else None, limit=limit)
        ]

    def events(self, job_id: str) -> str:
        """The job's events as written so far, one JSON object per line ('' before its
        worker has started).

        Raises:
            UserError: unknown job.
        """
        return self._folder(job_id).events_text()

    def tail_events(self, job_id: str, offset: int = 0) -> EventTail:
        """The job's events from byte ``offset`` on, read as they are appended.

        Raises:
            UserError: unknown job.
        """
        return self._folder(job_id).tail(offset)

    def events_stamp(self, job: Job) -> tuple[int, int]:
        """Changes whenever ``job`` (a row from :meth:`job_rows`) reports something: its
        events' size and time. Cheap: reads no event."""
        return self.store.folder(job.id).events_stamp()

    def follow(
        self,
        job_id: str,
        timeout: float | None = None,
        on_step: Callable[[JobView], None] | None = None,
        *,
        poll_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        stages: bool = False,
    ) -> JobView:
        """Block until the job ends or ``timeout`` seconds pass (None: no limit).

        Args:
            on_step: Called with the first view of a job still queued or running, then each
                time its step changes. An exception from it stops following and propagates.
            stages: Also call ``on_step`` when the job's status or stage changes (loading,
                training, saving); MCP progress must only go up, so the tools leave it off.
            poll_s: Seconds between looks at the job.
            sleep: How to wait between looks; a caller on an event loop passes one that its
                cancellation interrupts.

        Returns:
            The latest view (without events).

        Raises:
            UserError: unknown job.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        reported: tuple[object, ...] = ()
        while True:
            view = self.view(job_id, tail=0)
            if view.job.status not in ACTIVE:
                return view
            now = (view.step, view.job.status, view.stage) if stages else (view.step,)
            if on_step is not None and now != reported:
                reported = now
                on_step(view)
            wait = poll_s
            if deadline is not None:
                wait = min(poll_s, deadline - time.monotonic())
                if wait <= 0:
                    return view
            sleep(wait)

    def _folder(self, job_id: str) -> JobFolder:
        """The folder of a job in the store (a UserError for an unknown id, so a made-up
        one never names a path)."""
        return self.store.folder(self.store.get(job_id).id)

    @property
    def runs_here(self) -> bool:
        """Whether this process runs the jobs (its runner holds ``jobs.lock``)."""
        return self.runner is not None and self.runner.active
