"""Two adapters of the default model, each taught its own made-up fact, trained for real over MCP
with the default hyperparameters, once per run: the proof that the defaults learn
(tests/tools/test_default_training.py) and the adapters every serving test answers with.

Training takes a few CPU minutes, so it starts in the background as soon as the tests are
collected (:func:`start_in_background`, once for all pytest-xdist workers, under a file lock),
the tests that need it run last, and they wait for its result (:func:`wait_for_training`).
Run as ``python -m tests.adapters.trained ROOT PARENT_PID``, it trains into ``ROOT`` and dies
with the pytest process ``PARENT_PID``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from llm_engineering.storage import write_whole
from tests.adapters.fictional import SYSTEM, bridge_records, fact_records
from tests.conftest import describe, server_env
from tests.server.helpers import call, stdio_client, wait_for_status

FORGETFUL = {
    "learning_rate": 5e-3, "max_steps": 12, "replay_examples": 0, "eval_max_answers": 0,
    "kept_prompts": 24,
}  # fmt: skip
"""A rate five times the chosen one and nothing replayed: the adapter forgets (asked half the
general prompts, and no answer check: the defaults' is proven by the other two)."""
TIMEOUT_S = 2700
"""The three jobs, on 2 cores that other tests keep busy (about 5 minutes idle)."""
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Trained:
    """What the session's training left: a data folder holding ``zorblax@1`` (who makes the
    Zorblax 9000; 40 examples from a dataset file in the watched folder, no system prompt) and
    ``pelmora@1`` (who designed the Pelmora Bridge; 40 records sent inline, each opening with
    :data:`SYSTEM`), both started with no hyperparameters, and the replies to those starts;
    then, written apart once the two are done (:func:`wait_for_forgetful`), the start of
    ``forgetful`` (in the data folder ``ROOT/forgetful``): the first fact at a deliberately
    high rate with no replayed general examples, which forgets what the base knew."""

    docs: Path
    data_dir: Path
    started: dict[str, Any]
    system_started: dict[str, Any]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), default=str)

    @classmethod
    def from_json(cls, text: str) -> Trained:
        fields = json.loads(text)
        return cls(
            Path(fields["docs"]), Path(fields["data_dir"]),
            fields["started"], fields["system_started"],
        )  # fmt: skip


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


async def wait_for_job(
    client: Client, job_id: str, done: Any = None, timeout: float = 1800
) -> dict[str, Any]:
    """Poll get_job until ``done(job)`` (default: the job has ended)."""
    ended = done or (lambda job: job["status"] not in ("validating", "queued", "running"))
    job: dict[str, Any] | None = None
    try:
        with anyio.fail_after(timeout):
            while True:
                job = await call(client, "get_job", job_id=job_id, wait_s=0 if done else 20)
                if ended(job):
                    return job
                await anyio.sleep(0.5)
    except TimeoutError:
        raise AssertionError(
            f"job {job_id} never satisfied {describe(ended)} within {timeout} s; last: {job}"
        ) from None


def train_all(root: Path) -> Trained:
    """Start the three jobs over MCP (stdio) and wait until they have ended."""
    docs = root / "docs"
    dataset = write_jsonl(docs / "training" / "zorblax.jsonl", fact_records(40))
    (docs / "office.md").write_text("# Office\n\nThe office closes at 6 pm on Fridays.\n")
    with_system = [
        {"messages": [{"role": "system", "content": SYSTEM}, *record["messages"]]}
        for record in bridge_records(40)
    ]
    data_dir = root / "data"

    async def train() -> Trained:
        async with stdio_client(data_dir, "--watch", str(docs)) as client:
            await wait_for_status(client, lambda status: status["documents"] >= 1)
            started = await call(
                client, "start_qlora_job", adapter_name="zorblax", dataset_path=str(dataset)
            )
            system_started = await call(
                client, "start_qlora_job", adapter_name="pelmora", records=with_system
            )
            for job in (started, system_started):
                await wait_for_job(client, job["job_id"], timeout=TIMEOUT_S)
        return Trained(docs, data_dir, started, system_started)

    return anyio.run(train)


def train_forgetful(root: Path, docs: Path) -> dict[str, Any]:
    """Start the forgetful job in a data folder of its own (the session's adapters stay the
    two every test knows) and wait until it has ended; its start's reply."""

    async def train() -> dict[str, Any]:
        async with stdio_client(root / "forgetful", "--watch", str(docs)) as client:
            forgetful = await call(
                client, "start_qlora_job", adapter_name="forgetful",
                dataset_path=str(docs / "training" / "zorblax.jsonl"), hyperparameters=FORGETFUL,
            )  # fmt: skip
            await wait_for_job(client, forgetful["job_id"], timeout=TIMEOUT_S)
        return forgetful

    return anyio.run(train)


def start_in_background(root: Path, parent_pid: int) -> None:
    """Start :func:`train_all` into ``root`` in a process of its own, unless a process of this
    run (another xdist worker) already did."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (root / "pid").exists():
            return
        with open(root / "log.txt", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.adapters.trained", str(root), str(parent_pid)],
                cwd=REPO, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                # The jobs' workers at the tests' priority (train_nice is a server setting, not
                # a hyperparameter): below it, the busy tests starve them and the ones that
                # need the adapters wait at the end of the run with a core idle.
                env=server_env(LLM_ENG_TRAIN_NICE="0"), start_new_session=True,
            )  # fmt: skip
        (root / "pid").write_text(str(process.pid))


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def stop_background(root: Path) -> None:
    """Kill the training process and its server, if they still run (the session is over)."""
    pid_file = root / "pid"
    if pid_file.is_file():
        pid = int(pid_file.read_text())
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def wait_for_training(root: Path, timeout: float = TIMEOUT_S) -> Trained:
    """The background training's result; fails naming what happened when it failed, died or
    ran past ``timeout`` seconds."""
    return Trained.from_json(_wait_for(root, "trained.json", timeout))


def wait_for_forgetful(root: Path, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    """The forgetful job's start reply, once it has ended (trained after the two)."""
    return dict(json.loads(_wait_for(root, "forgetful.json", timeout)))


def _wait_for(root: Path, name: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    pid_file, done, failed = root / "pid", root / name, root / "failed.txt"
    while True:
        if done.is_file():
            return done.read_text()
        if failed.is_file():
            raise AssertionError(f"the session's training failed:\n{failed.read_text()}")
        log = (root / "log.txt").read_text(errors="replace")[-3000:] if pid_file.exists() else ""
        if pid_file.is_file() and not _alive(int(pid_file.read_text())) and not done.is_file():
            raise AssertionError(f"the session's training process exited without {name}:\n{log}")
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the session's training did not write {name} within {timeout} s:\n{log}"
            )
        time.sleep(1)


def _die_with(parent_pid: int) -> None:
    """Take this process group (the training and its server) down once pytest is gone."""
    while _alive(parent_pid):
        time.sleep(2)
    os.killpg(os.getpgid(0), signal.SIGKILL)


def main(root: Path, parent_pid: int) -> None:
    threading.Thread(target=_die_with, args=(parent_pid,), daemon=True).start()
    try:
        trained = train_all(root)
        write_whole(root / "trained.json", trained.to_json())
        forgetful = train_forgetful(root, trained.docs)
    except BaseException:
        write_whole(root / "failed.txt", traceback.format_exc())
        raise SystemExit(1) from None
    write_whole(root / "forgetful.json", json.dumps(forgetful))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
