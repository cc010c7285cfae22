"""`llm-eng train`, `jobs` and `adapters` as a user runs them, refusing bad requests before anything is queued."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from typer.testing import CliRunner

from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry
from llm_engineering.adapters.service import TrainingService
from llm_engineering.cli import app
from llm_engineering.config import load_settings
from llm_engineering.lock import WriterLock
from tests.adapters.fictional import fact_records
from tests.conftest import LLM_ENG, server_env, wait_until
from tests.test_cli import run


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_hyperparameter_of_the_wrong_type_names_the_setting_and_the_type(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "faq.jsonl", fact_records(8))
    data = ["--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(
        app, ["train", str(dataset), "--name", "faq", "--set", "r=abc", "--detach", *data]
    )
    assert result.exit_code == 1
    assert "r must be a whole number, not 'abc'" in result.output
    assert "not supported between" not in result.output
    listing = CliRunner().invoke(app, ["jobs", *data])
    assert "no training jobs yet" in listing.output


def test_a_refused_dataset_leaves_no_job_and_a_cut_line_says_where_it_ends(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in fact_records(10)]
    question = "Who makes the Zorblax 9000, and where is the company that makes it, please? " * 2
    lines[6] = json.dumps({"messages": [{"role": "user", "content": question}]})[:118]
    dataset = tmp_path / "faq.jsonl"
    dataset.write_text("\n".join(lines) + "\n")
    data = ["--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(app, ["train", str(dataset), "--name", "faq", *data])
    assert result.exit_code == 1
    assert (
        "line 7: bad JSON (Unterminated string starting at column 43; "
        "the line ends at character 118)"
    ) in result.output
    assert "no training jobs yet" in CliRunner().invoke(app, ["jobs", *data]).output


def test_a_detached_job_says_who_will_train_it(tmp_path: Path) -> None:
    dataset = write_jsonl(tmp_path / "faq.jsonl", fact_records(8))
    data_dir = tmp_path / "data"
    detach = ["train", str(dataset), "--name", "faq", "--detach", "--data-dir", str(data_dir)]
    alone = CliRunner().invoke(app, detach)
    assert alone.exit_code == 0, alone.output
    job_id = alone.stdout.strip()
    assert (
        "nothing runs jobs now: a running `llm-eng serve` (or `llm-eng train` without --detach) "
        f"trains it, or train it here with `llm-eng jobs {job_id} --follow`"
    ) in alone.stderr
    server = WriterLock(data_dir, "jobs.lock")  # what a running server holds
    assert server.try_acquire()
    try:
        served = CliRunner().invoke(app, detach)
    finally:
        server.release()
    assert f"llm-eng (pid {os.getpid()}) runs jobs: it trains this one now" in served.stderr


@contextmanager
def following(args: list[str], folder: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`llm-eng ARGS` in the background, as from a terminal (Ctrl-C is a KeyboardInterrupt);
    yields it with its job id once the job is queued. Its stdout and stderr go to files."""
    out, err = (folder / "stdout.txt").open("w"), (folder / "stderr.txt").open("w")
    process = subprocess.Popen(
        [LLM_ENG, *args], stdout=out, stderr=err, text=True, env=server_env(),
        # A shell's background job may start with SIGINT ignored; a terminal's does not.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    queued = re.compile(r"job (\S+): \d+ examples, queued")
    try:
        wait_until(lambda: queued.search(stderr_of(folder)), "the job was queued", 300)
        match = queued.search(stderr_of(folder))
        assert match is not None
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        out.close()
        err.close()


def stderr_of(folder: Path) -> str:
    return (folder / "stderr.txt").read_text()


def wait_for_first_step(data_dir: Path, job_id: str) -> None:
    training = TrainingService(load_settings(data_dir=data_dir))
    try:
        wait_until(
            lambda: training.view(job_id, tail=0).step >= 1, f"job {job_id} trained a step", 600
        )
    finally:
        training.close()


@pytest.mark.slow
def test_ctrl_c_on_a_foreground_train_leaves_the_job_interrupted_and_resumable(
    tmp_path: Path, tiny_llama: Path
) -> None:
    dataset = write_jsonl(tmp_path / "faq.jsonl", fact_records(8))
    data = ["--data-dir", str(tmp_path / "data")]
    train = ["train", str(dataset), "--name", "stopme", "--base-model", str(tiny_llama)]
    with following([*train, "--max-steps", "100000", *data], tmp_path) as (process, job_id):
        wait_for_first_step(tmp_path / "data", job_id)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=300)
        assert process.returncode == 130, stderr_of(tmp_path)
    assert f"resume it with `llm-eng jobs {job_id} --resume --follow`" in stderr_of(tmp_path)
    [line] = run("jobs", *data).stdout.splitlines()
    assert line.startswith(f"{job_id}  stopme") and " interrupted " in line and "eta" not in line
    assert "its llm-eng was stopped (Ctrl-C)" in line
    resumed = run("jobs", job_id, "--resume", *data)
    assert resumed.returncode == 0, resumed.stderr
    assert " queued " in resumed.stdout and f"job {job_id}: queued again" in resumed.stderr
    cancelled = run("jobs", job_id, "--cancel", *data)
    assert f"job {job_id}: cancelled" in cancelled.stderr and " cancelled " in cancelled.stdout


@pytest.mark.slow
def test_a_time_limited_or_cancelled_job_says_so_and_one_that_cannot_end_in_its_limit_is_refused(
    tmp_path: Path, tiny_llama: Path
) -> None:
    dataset = write_jsonl(tmp_path / "faq.jsonl", fact_records(8))
    data = ["--data-dir", str(tmp_path / "data")]
    train = ["train", str(dataset), "--base-model", str(tiny_llama), "--max-steps", "100000"]
    queued = run(*train, "--name", "limited", "--max-minutes", "0.002", "--detach", *data)
    job_id = queued.stdout.strip()
    assert "nothing runs jobs now" in queued.stderr
    assert "estimate: 100,000 steps; no training rate measured on this base here yet" in (
        queued.stderr
    )
    followed = run("jobs", job_id, "--follow", *data)
    assert followed.returncode == 0, followed.stderr
    assert " succeeded " in followed.stdout
    assert "stopped by the time limit (max_minutes 0.002)" in followed.stdout
    # Its steps measured the rate: the same job again is refused, with the estimate.
    refused = run(*train, "--name", "again", "--max-minutes", "0.002", "--detach", *data)
    assert refused.returncode == 1
    assert "cannot finish within max_minutes=0.002: 100,000 steps" in refused.stderr
    assert f"tokens/s, measured by job {job_id} on this base" in refused.stderr

    shown = run("jobs", job_id, *data).stdout
    assert '"t":' not in shown and "{" not in shown
    assert re.search(r"^  \d\d:\d\d:\d\d  step 1/100000  loss \d", shown, re.MULTILINE), shown
    # The kept check, on its line and in the job's: one step changed nothing the base knew.
    assert re.search(r"kept check: \d+% of 48 general prompts answered as the base does", shown)
    assert re.search(r"kept \d\.\d\d, leaked 0\.00", shown), shown

    with following([*train, "--name", "cancelme", *data], tmp_path) as (process, job_id):
        wait_for_first_step(tmp_path / "data", job_id)
        cancel = run("jobs", job_id, "--cancel", *data)
        assert f"job {job_id}: cancel requested; it stops at its next step" in cancel.stderr
        process.wait(timeout=300)
        assert process.returncode == 1
    [last] = (tmp_path / "stdout.txt").read_text().splitlines()
    assert last.startswith(f"{job_id}  cancelme") and " cancelled " in last


def test_deleting_an_adapter_that_does_not_exist_fails_before_asking(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    peft = tmp_path / "peft"
    peft.mkdir()
    card = AdapterCard(
        name="faq", version=0, base_model="m", base_gguf="", base_gguf_sha256="",
        dataset_sha256="cd" * 32, dataset_examples=8, dataset_formats={"chat": 8},
        hyperparameters={}, final_loss=0.1, best_loss=0.1, steps=2, train_tokens=100, job_id="j",
    )  # fmt: skip
    AdapterRegistry(data_dir / "adapters").add(card, peft, None)
    data = ["--data-dir", str(data_dir)]

    # Where each version answers, as list_adapters says: this one has no GGUF base.
    listed = CliRunner().invoke(app, ["adapters", *data])
    assert listed.exit_code == 0, listed.output
    [line] = [line for line in listed.output.splitlines() if "serving:" in line]
    assert "cannot answer" in line, listed.output
    [as_json] = json.loads(CliRunner().invoke(app, ["adapters", "--json", *data]).output)
    assert as_json["serving"]["where"] == "none" and as_json["serving"]["detail"] in line

    missing = CliRunner().invoke(app, ["adapters", "--delete", "zorblax@7", *data], input="y\n")
    assert missing.exit_code == 1
    assert "no adapter 'zorblax@7' to delete; registered: faq@1" in missing.output
    assert "cannot be undone" not in missing.output
    wrong_version = CliRunner().invoke(app, ["adapters", "--delete", "faq@2", *data], input="y\n")
    assert "no adapter 'faq@2' to delete" in wrong_version.output

    kept = CliRunner().invoke(app, ["adapters", "--delete", "faq", *data], input="n\n")
    assert "delete faq@1? This cannot be undone" in kept.output and kept.exit_code == 1
    deleted = CliRunner().invoke(app, ["adapters", "--delete", "faq", *data], input="y\n")
    assert deleted.exit_code == 0 and "deleted faq@1" in deleted.output


def test_adapters_and_jobs_list_the_rest_and_name_each_damaged_record(tmp_path: Path) -> None:
    from tests.adapters.test_damaged import damaged_registry

    data_dir = tmp_path / "data"
    damaged = damaged_registry(data_dir)
    training = TrainingService(load_settings(data_dir=data_dir))
    bad = training.start_job("bad", records=fact_records(12))
    spec_file = training.store.folder(bad.id).spec_file
    spec_file.write_text("{")
    training.close()
    data = ["--data-dir", str(data_dir)]
    listed = CliRunner().invoke(app, ["adapters", *data])
    assert listed.exit_code == 0, listed.output
    assert "faq@1" in listed.output and "other@1" in listed.output
    for spec, path in damaged.items():
        assert f"damaged: {spec}: {path} cannot be read" in listed.output
    assert "llm-eng adapters --delete faq@2" in listed.output
    as_json = CliRunner().invoke(app, ["adapters", "--json", *data])
    assert [card["name"] for card in json.loads(as_json.stdout)] == ["faq", "other"]
    assert f"damaged: faq@2: {damaged['faq@2']}" in as_json.stderr
    served = CliRunner().invoke(app, ["adapters", "--serve", "llama-server", *data])
    assert served.exit_code == 0 and "faq@1, other@1" in served.stderr, served.output
    assert f"left out: faq@2: {damaged['faq@2']} cannot be read" in served.stderr
    jobs = CliRunner().invoke(app, ["jobs", *data])
    assert jobs.exit_code == 0 and f"damaged: {spec_file} cannot be read" in jobs.output
    shown = CliRunner().invoke(app, ["jobs", bad.id, "--json", *data])
    assert json.loads(shown.stdout)["damaged"]["path"] == str(spec_file)
