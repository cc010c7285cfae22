"""The job runner: starts queued jobs' workers, watches them, and records how they end.

One process per data folder runs jobs: the holder of ``jobs.lock`` (an ``flock``, so a
killed holder frees it and another server or ``llm-eng train`` takes over). Any process
may queue a job or ask to cancel one. At most ``max_concurrent`` workers train at once.

A runner that stops (:meth:`JobRunner.stop`) asks its workers to checkpoint and exit and
records how each ended: queued again to resume when jobs run next, or ``interrupted``
when the caller says why it stopped them (a person stopping the command running them), to be
resumed by hand. A worker that stops without its runner knowing (the server was killed,
the worker crashed) leaves the job ``running``; whoever runs jobs next finds it, sees its
worker is gone, and queues it again to resume from its last checkpoint, up to
``max_resumes`` times; after that the job is ``interrupted`` and ``resume`` queues it by hand.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.jobs import Job, JobStore
from llm_engineering.adapters.records import JobResult
from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry
from llm_engineering.lock import WriterLock

__all__ = ["JobRunner", "register"]

log = logging.getLogger(__name__)


WORKER_THREADS = "LLM_ENG_WORKER_THREADS"
WORKER_NICE = "LLM_ENG_WORKER_NICE"


def worker_env(environ: Mapping[str, str], threads: int = 0, nice: int = 0) -> dict[str, str]:
    """The worker's environment: OpenMP threads sleep instead of spinning while they wait,
    and the worker's thread count and priority (``train_threads``, ``train_nice``).

    With the default (spinning) policy, torch's threads and any other busy process on the
    machine slow each other down many times over: a 4-step job next to two busy processes
    on 2 cores took 392 s, and 51 s with ``OMP_WAIT_POLICY=PASSIVE``. A user's own setting wins.
    """
    env = {**environ, "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env[WORKER_THREADS] = str(threads)
    env[WORKER_NICE] = str(nice)
    return env


def worker_alive(pid: int | None, folder: JobFolder) -> bool:
    """Whether ``pid`` is still this job's worker (not a recycled pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(folder.path).encode() in cmdline and b"llm_engineering.adapters.worker" in cmdline


def register(
    registry: AdapterRegistry, job: Job, folder: JobFolder, result: JobResult
) -> AdapterCard:
    """Move a succeeded job's adapter into ``registry`` as the next version of its name."""
    if job.adapter:  # registered before the server went down
        return registry.get(job.adapter)
    spec = folder.spec()
    card = AdapterCard(
        name=job.name,
        version=0,
        base_model=job.base_model,
        base_gguf=result.base_gguf or "",
        base_gguf_sha256=result.base_gguf_sha256 or "",
        dataset_sha256=spec.dataset.sha256,
        dataset_examples=spec.dataset.examples,
        dataset_formats=spec.dataset.formats,
        hyperparameters=result.hyperparameters or spec.hyperparameters.to_dict(),
        final_loss=result.final_loss,
        best_loss=result.best_loss,
        steps=result.step or 0,
        train_tokens=result.train_tokens or 0,
        job_id=job.id,
        libraries=result.libraries or {},
        metrics=result.metrics(),
        system_prompt=spec.system_prompt,
    )
    return registry.add(card, folder.peft, folder.gguf if folder.gguf.is_file() else None)


class JobRunner:
    """Trains queued jobs, one worker process each, from a background thread.

    Every ``poll_s`` (or when :meth:`wake` is called) the thread tries to take
    ``jobs.lock``; while it holds it, each :meth:`tick` records the workers that ended
    (registering a succeeded job's adapter, :func:`register`), requeues jobs whose
    worker is gone and starts queued jobs up to ``max_concurrent``. :meth:`stop` asks the
    workers to checkpoint and exit, and frees the lock for the next runner.

    Args:
        store: The job rows and folders.
        registry: Where a succeeded job's adapter goes.
        max_concurrent: Workers training at once.
        max_resumes: Automatic restarts of a job whose worker stopped without finishing.
        poll_s: Seconds between passes while this process holds the lock.
        threads: torch threads per worker (0 = every core).
        nice: How far below this process's priority workers run.
    """

    def __init__(
        self,
        store: JobStore,
        registry: AdapterRegistry,
        *,
        max_concurrent: int = 1,
        max_resumes: int = 3,
        poll_s: float = 0.5,
        threads: int = 0,
        nice: int = 0,
    ):
        self.store = store
        self.registry = registry
        self.max_concurrent = max_concurrent
        self.max_resumes = max_resumes
        self.poll_s = poll_s
        self.threads = threads
        self.nice = nice
        self.lock = WriterLock(store.data_dir, "jobs.lock")
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def active(self) -> bool:
        """Whether this process runs the jobs (holds ``jobs.lock``)."""
        return self.lock.held

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 60.0, *, interrupted: str | None = None) -> None:
        """Stop running jobs: each worker saves a checkpoint and exits, and how it ended is recorded.

        Args:
            timeout: Seconds to wait for the thread, then for the workers (then they are killed).
            interrupted: Why the jobs were stopped; they are then recorded ``interrupted``,
                to be resumed by hand. None (a server going down): they are queued to resume
                where they stopped when jobs run next.
        """
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for process in self._children.values():
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        try:
            for job_id, process in self._children.items():
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                try:
                    self._finish(
                        self.store.get(job_id),
                        process.returncode,
                        stopped=interrupted or "the process running jobs stopped",
                        by_hand=interrupted is not None,
                    )
                except Exception:  # the next runner finds the job's worker gone instead
                    log.exception("job %s: recording how it stopped", job_id)
        finally:
            self._children.clear()
            self.lock.release()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                if self.lock.try_acquire():
                    self.tick()
            except Exception:
                log.exception("job runner")
            self._wake.wait(self.poll_s if self.lock.held else 2.0)
            self._wake.clear()

    def tick(self) -> None:
        """One pass: record finished workers, recover orphans, start queued jobs."""
        for job_id, process in list(self._children.items()):
            if process.poll() is not None:
                del self._children[job_id]
                self._finish(self.store.get(job_id), process.returncode)
        for job in self.store.jobs(["running"], limit=1000, kind="qlora"):
            if job.id not in self._children and not worker_alive(
                job.pid, self.store.folder(job.id)
            ):
                self._finish(job, None)
        while len(self._children) < self.max_concurrent and not self._stopping.is_set():
            queued = self.store.jobs(["queued"], limit=1000, kind="qlora")
            if not queued:
                break
            self._launch(queued[-1])  # the oldest

    def _launch(self, job: Job) -> None:
        folder = self.store.folder(job.id)
        if not self.store.update(
            job.id,
            only_if=["queued"],
            status="running",
            started=job.started or time.time(),
            attempts=job.attempts + 1,
            error=None,
        ):
            return  # cancelled meanwhile
        folder.clear_result()
        with folder.worker_log.open("ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-m", "llm_engineering.adapters.worker", str(folder.path)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C for the server reaches the worker as our SIGTERM
                env=worker_env(os.environ, self.threads, self.nice),
            )
        self._children[job.id] = process
        self.store.update(job.id, pid=process.pid)
        log.info("job %s: worker %d started (attempt %d)", job.id, process.pid, job.attempts + 1)

    def _finish(
        self, job: Job, returncode: int | None, *, stopped: str | None = None, by_hand: bool = False
    ) -> None:
        """Record how ``job``'s worker ended (the result it wrote).

        Args:
            returncode: The worker's exit code, None when it was not our child.
            stopped: Why this runner stopped the worker, if it did.
            by_hand: Record a stopped job ``interrupted`` rather than queue it to resume.
        """
        folder = self.store.folder(job.id)
        # No result: the worker died before writing one, which is an interruption too.
        result = folder.result() or JobResult("interrupted")
        now = time.time()
        if result.status == "succeeded":
            try:
                card = register(self.registry, job, folder, result)
            except Exception as exc:
                log.exception("job %s: registering the adapter", job.id)
                self.store.update(
                    job.id, status="failed", finished=now, error=f"registering the adapter: {exc}"
                )
                return
            self.store.update(
                job.id,
                status="succeeded",
                finished=now,
                adapter=card.spec,
                # The note on a success: an answer check that says it did not learn, a
                # kept check that says it forgot, and why there is no GGUF to serve it.
                error="; ".join(
                    n for n in (result.verdict, result.kept_note, result.gguf_error) if n
                )
                or None,
            )
        elif result.status == "failed":
            self.store.update(job.id, status="failed", finished=now, error=result.error)
        elif result.status == "cancelled" or job.cancel_requested:
            self.store.update(job.id, status="cancelled", finished=now)
        else:
            reason = (
                stopped
                or result.reason
                or (
                    f"its worker exited with code {returncode}"
                    if returncode is not None
                    else "its worker stopped (the server or the machine went down)"
                )
            )
            if by_hand:
                at = f" at step {result.step}" if result.step is not None else ""
                self.store.update(
                    job.id,
                    status="interrupted",
                    finished=now,
                    pid=None,
                    error=f"stopped{at}: {reason}; resume it to go on from its last checkpoint",
                )
            elif job.attempts <= self.max_resumes:
                self.store.update(job.id, only_if=["running"], status="queued", pid=None)
                events = folder.event_log()  # the worker is gone: no other writer
                events.emit("requeued", reason=reason, attempt=job.attempts)
                events.close()
                log.info("job %s stopped (%s); resuming from its last checkpoint", job.id, reason)
            else:
                self.store.update(
                    job.id,
                    status="interrupted",
                    finished=now,
                    error=f"stopped {job.attempts} times, last because {reason}; resume it with resume_job",
                )
        log.info("job %s: %s", job.id, self.store.get(job.id).status)
