"""Job bookkeeping without training: queueing, cancelling, resumes running out, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from llm_engineering.adapters.job_runner import JobRunner
from llm_engineering.adapters.jobs import MIGRATIONS as JOB_MIGRATIONS
from llm_engineering.adapters.jobs import JobStore
from llm_engineering.adapters.registry import AdapterCard
from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.errors import UserError
from llm_engineering.generation.llamacpp import resolve_gguf
from llm_engineering.hashing import sha256_file
from tests.adapters.fictional import fact_records
from tests.test_cli import run


def service(tmp_path: Path, **settings: object) -> TrainingService:
    return TrainingService(Settings(data_dir=tmp_path / "data", **settings))  # type: ignore[arg-type]


def test_a_valid_request_is_queued_with_its_dataset_and_resolved_hyperparameters(
    tmp_path: Path,
) -> None:
    training = service(tmp_path)
    job = training.start_job("faq", records=fact_records(12), hyperparameters={"r": 8})
    assert job.status == "queued" and job.examples == 12 and job.hyperparameters["r"] == 8
    folder = training.store.folder(job.id).path
    spec = json.loads((folder / "job.json").read_text())
    assert spec["base_model"] == "smollm2-135m-instruct" and spec["dataset"]["examples"] == 12
    assert len((folder / "dataset.jsonl").read_text().splitlines()) == 12


def test_a_bad_request_or_dataset_is_refused_before_any_job_is_recorded(tmp_path: Path) -> None:
    training = service(tmp_path)
    with pytest.raises(UserError, match="unknown hyperparameter"):
        training.start_job("faq", records=fact_records(12), hyperparameters={"rank": 8})
    with pytest.raises(UserError, match="exactly one of dataset_path"):
        training.start_job("faq")
    with pytest.raises(UserError, match="no transformers model there"):
        training.start_job(
            "faq", records=fact_records(12), base_model="/nowhere/model", check_roots=False
        )
    with pytest.raises(UserError, match="is outside the allowed folders"):
        training.start_job("faq", records=fact_records(12), base_model="/nowhere/model")
    assert training.store.jobs() == []
    with pytest.raises(UserError, match="line 2: bad JSON"):
        training.start_job(
            "faq", records=[fact_records(1)[0], json.JSONDecodeError("x", "{", 0)] * 6
        )
    assert training.store.jobs() == [] and not training.store.root.exists()


def test_a_queued_job_cancels_at_once_and_an_ended_one_cannot_be_cancelled(tmp_path: Path) -> None:
    training = service(tmp_path)
    job = training.start_job("faq", records=fact_records(12))
    assert training.cancel(job.id).status == "cancelled"
    with pytest.raises(UserError, match="already ended \\(cancelled\\)"):
        training.cancel(job.id)
    with pytest.raises(UserError, match="unknown job 'nope'; recent jobs: " + job.id):
        training.view("nope")


def test_a_job_stopped_more_often_than_allowed_is_interrupted_and_can_be_resumed(
    tmp_path: Path,
) -> None:
    training = service(tmp_path, job_max_resumes=1)
    job = training.start_job("faq", records=fact_records(12))
    runner = JobRunner(training.store, training.registry, max_resumes=1)
    folder = training.store.folder(job.id).path

    def worker_stopped(attempt: int) -> None:
        # what a dead worker leaves: its row still running, a result that says interrupted
        training.store.update(job.id, status="running", attempts=attempt, pid=None)
        (folder / "result.json").write_text(json.dumps({"status": "interrupted", "step": 4}))

    worker_stopped(1)
    runner._finish(training.store.get(job.id), None)
    assert training.store.get(job.id).status == "queued"  # resumed by itself
    worker_stopped(2)
    runner._finish(training.store.get(job.id), None)
    stopped = training.store.get(job.id)
    assert stopped.status == "interrupted" and "resume it with resume_job" in (stopped.error or "")
    assert training.resume(job.id).status == "queued"
    with pytest.raises(UserError, match="only an interrupted job can be resumed"):
        training.resume(job.id)


def registered(training: TrainingService, tmp_path: Path, base_sha256: str) -> str:
    peft = tmp_path / "peft"
    peft.mkdir(parents=True)
    gguf = tmp_path / "adapter.gguf"
    gguf.write_bytes(b"GGUF")
    card = AdapterCard(
        name="faq", version=0, base_model="other.gguf", base_gguf="/models/other.gguf",
        base_gguf_sha256=base_sha256, dataset_sha256="cd" * 32, dataset_examples=8,
        dataset_formats={"chat": 8}, hyperparameters={}, final_loss=0.1, best_loss=0.1,
        steps=2, train_tokens=100, job_id="j",
    )  # fmt: skip
    return training.registry.add(card, peft, gguf if base_sha256 else None).spec


def test_an_adapter_trained_on_another_gguf_is_refused_with_both_hashes(tmp_path: Path) -> None:
    training = service(tmp_path)
    spec = registered(training, tmp_path / "a", "ab" * 32)
    with pytest.raises(
        UserError, match=r"trained on the GGUF /models/other.gguf \(sha256 abababababab\)"
    ):
        training.resolve_adapter(spec)
    served = resolve_gguf("smollm2-135m-instruct")
    assert sha256_file(served)[:12] in _message(lambda: training.resolve_adapter(spec))
    hf_only = registered(training, tmp_path / "b", "")
    with pytest.raises(UserError, match=r"not a GGUF model, so llama\.cpp cannot serve it"):
        training.resolve_adapter(hf_only)


def _message(call: Callable[[], object]) -> str:
    with pytest.raises(UserError) as caught:
        call()
    return str(caught.value)


def test_train_jobs_and_adapters_from_the_command_line(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in fact_records(10)) + '{"text": ""}\n')
    result = run("train", str(bad), "--name", "faq", *data)
    assert result.returncode == 1 and "line 11: 'text' is empty" in result.stderr
    good = tmp_path / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in fact_records(10)))
    result = run("train", str(good), "--name", "faq", "--set", "r=8", "--detach", *data)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    listing = run("jobs", *data)
    assert job_id in listing.stdout and "queued" in listing.stdout
    shown = json.loads(run("jobs", job_id, "--json", *data).stdout)
    assert shown["job"]["hyperparameters"]["r"] == 8 and shown["job"]["examples"] == 10
    assert "cancelled" in run("jobs", job_id, "--cancel", *data).stdout
    assert "no adapters yet" in run("adapters", *data).stdout
    result = run("adapters", "--delete", "faq", "--yes", *data)
    assert result.returncode == 1 and "no adapter 'faq' to delete" in result.stderr


@pytest.mark.slow
def test_llm_eng_train_follows_a_short_job_to_a_registered_adapter(tmp_path: Path) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    dataset = tmp_path / "faq.jsonl"
    dataset.write_text("".join(json.dumps(r) + "\n" for r in fact_records(8)))
    # No answer check, kept check or replay (a few hundred greedy answers of the model): the
    # defaults' are proven in tests/tools/test_default_training.py; this is about the command
    # following the job.
    train = ["train", str(dataset), "--name", "faq", "--max-steps", "2"]
    quick = ["--set", "eval_max_answers=0", "--set", "replay_examples=0", "--set", "kept_prompts=0"]
    result = run(*train, *quick, *data)
    assert result.returncode == 0, result.stderr
    assert "succeeded" in result.stdout and "-> faq@1" in result.stdout
    [card] = json.loads(run("adapters", "--json", *data).stdout)
    assert card["steps"] == 2 and card["dataset_examples"] == 8
    assert "kept_check" not in card["metrics"], card["metrics"]  # kept_prompts=0: none asked
    assert (Path(card["path"]) / "adapter.gguf").is_file()
    assert "deleted faq@1" in run("adapters", "--delete", "faq@1", "--yes", *data).stdout


def test_the_job_store_applies_its_own_migration_to_the_state_file(tmp_path: Path) -> None:
    store = JobStore(tmp_path)
    assert store.storage.applied_migrations() == ["m003_jobs", "m007_job_kind"]
    assert store.jobs() == []
    store.close()
    reopened = JobStore(tmp_path)
    assert reopened.storage.migrate(JOB_MIGRATIONS) == []
    reopened.close()


def test_workers_wait_passively_unless_the_user_chose_otherwise() -> None:
    from llm_engineering.adapters.job_runner import worker_env

    assert worker_env({"PATH": "/bin"})["OMP_WAIT_POLICY"] == "PASSIVE"
    assert worker_env({"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"
    assert worker_env({})["TOKENIZERS_PARALLELISM"] == "false"
    env = worker_env({}, threads=3, nice=7)
    assert env["LLM_ENG_WORKER_THREADS"] == "3" and env["LLM_ENG_WORKER_NICE"] == "7"


@pytest.mark.slow
def test_a_job_cancelled_while_its_model_loads_ends_cancelled_before_training(
    tmp_path: Path,
) -> None:
    """The cancel file is there when the worker starts, as when a cancel arrives while the
    model loads: the worker stops between loading stages and the job ends cancelled (never
    interrupted, which would resume it)."""
    training = service(tmp_path)
    job = training.start_job("faq", records=fact_records(12), hyperparameters={"max_steps": 3})
    folder = training.store.folder(job.id).path
    training.store.update(job.id, status="running", cancel_requested=1)
    (folder / "cancel").touch()
    worker = subprocess.run(
        [sys.executable, "-m", "llm_engineering.adapters.worker", str(folder)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr[-2000:]
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "cancelled" and result["step"] == 0
    events = [
        json.loads(line)["event"] for line in (folder / "events.jsonl").read_text().splitlines()
    ]
    assert "started" not in events and events[-1] == "finished"
    training.store.update(job.id, pid=None)  # its worker has exited
    runner = JobRunner(training.store, training.registry)
    runner.tick()  # what a server's runner does with a worker that has gone
    assert training.store.get(job.id).status == "cancelled"
    runner.lock.release()
    training.close()


def test_an_agents_base_model_path_must_lie_in_the_allowed_folders_and_probes_nothing(
    tmp_path: Path,
) -> None:
    training = service(tmp_path)
    outside = tmp_path / "elsewhere"
    (outside / "model").mkdir(parents=True)
    (outside / "model" / "config.json").write_text("{}")
    messages = [
        _message(
            lambda path=path: training.start_job("z", records=fact_records(8), base_model=path)
        )
        for path in (str(outside / "model"), str(outside / "absent"), "/etc", "/nope/x.gguf")
    ]
    for path, message in zip(
        (outside / "model", outside / "absent", "/etc", "/nope/x.gguf"), messages, strict=True
    ):
        assert f"base_model {path} is outside the allowed folders" in message, message
    assert "config.json" not in " ".join(messages)  # existence outside is never told
    # The CLI's user names the model himself: a path anywhere is taken.
    assert training.base_model(str(outside / "model")) == str((outside / "model").resolve())
    packaged = training.start_job("z", records=fact_records(8), base_model="smollm2-135m-instruct")
    assert packaged.base_model == "smollm2-135m-instruct"
    assert training.jobs() and all(
        view.job.base_model == "smollm2-135m-instruct" for view in training.jobs()
    )
    training.close()


def test_a_relative_base_model_is_a_path_held_to_the_allowed_folders_and_a_hub_id_must_be_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    training = service(tmp_path)
    model = tmp_path / "tmp" / "x" / "model"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    for relative in ("tmp/x/model", "./tmp/x/model", "tmp/x/../x/model"):
        message = _message(
            lambda name=relative: training.start_job("z", records=fact_records(8), base_model=name)
        )
        assert "is outside the allowed folders" in message, message
    # The CLI's user names the model himself: the folder is taken, in full.
    assert training.base_model("tmp/x/model") == str(model.resolve())
    monkeypatch.chdir("/")
    hub_cache = tmp_path / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refused(name: str) -> str:
        return _message(lambda: training.start_job("z", records=fact_records(8), base_model=name))

    # "etc" would be /etc here; whether it exists is never told.
    assert refused("etc").replace("etc", "X") == refused("etcqq").replace("etcqq", "X")
    message = refused("acme/tiny")
    assert "not a model in the local Hugging Face cache" in message and str(hub_cache) in message
    assert "does not download" in message, message
    with pytest.raises(UserError, match=r"huggingface\.co cannot be reached"):
        training.base_model("acme/tiny")  # the CLI's user, offline
    assert training.store.jobs() == []
    snapshot = hub_cache / "models--acme--tiny" / "snapshots" / "0123abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (hub_cache / "models--acme--tiny" / "refs").mkdir()
    (hub_cache / "models--acme--tiny" / "refs" / "main").write_text("0123abc")
    cached = training.start_job("z", records=fact_records(8), base_model="acme/tiny")
    assert cached.base_model == "acme/tiny"
    # A relative path that lies inside the data folder is a path, taken in full.
    inside = training.settings.data_dir / "models" / "m"
    inside.mkdir(parents=True)
    (inside / "config.json").write_text("{}")
    monkeypatch.chdir(training.settings.data_dir)
    taken = training.start_job("z", records=fact_records(8), base_model="models/m")
    assert taken.base_model == str(inside.resolve())
    training.close()


def test_target_modules_must_name_layers_of_the_base_model(tmp_path: Path) -> None:
    training = service(tmp_path)

    def refused(target: object) -> str:
        return _message(
            lambda: training.start_job(
                "z", records=fact_records(12), hyperparameters={"target_modules": target}
            )
        )

    message = refused(["q_proj", "qkv_proj", "attention"])
    assert "target_modules 'qkv_proj', 'attention' match no layer of smollm2-135m-instruct" in (
        message
    )
    assert "down_proj, embed_tokens, gate_proj, k_proj, lm_head, o_proj, q_proj" in message
    assert "match no layer" in refused(r".*\.attention\.q_proj")  # peft's regular expression
    assert training.store.jobs() == []
    for target in (["q_proj", "self_attn.v_proj"], r".*\.self_attn\.(q|v)_proj", "all-linear"):
        job = training.start_job(
            "z", records=fact_records(12), hyperparameters={"target_modules": target}
        )
        assert job.hyperparameters["target_modules"] == target
    training.close()


def test_a_job_that_cannot_finish_within_max_minutes_at_the_measured_rate_is_refused(
    tmp_path: Path,
) -> None:
    training = service(tmp_path)
    long = {"max_steps": 100_000, "max_minutes": 1}
    unknown = training.start_job("first", records=fact_records(40), hyperparameters=long)
    estimate = training.spec(unknown.id).estimate
    assert estimate is not None and estimate.minutes is None and estimate.steps == 100_000
    assert "no training rate measured on this base here yet" in estimate.basis
    # What the worker of a job on the same base reported: its tokens per epoch, the
    # characters they came from, and its rate at each step.
    events = training.store.folder(unknown.id).event_log()
    events.emit("started", step=0, total=100_000, tokens_per_epoch=1000, chars_per_epoch=4000)
    for step in (1, 2, 3):
        events.emit(
            "step", step=step, total=100_000, loss=2.0, learning_rate=1e-3, tokens=40,
            tokens_per_s=100.0, elapsed_s=0.4 * step, eta_s=40_000.0,
        )  # fmt: skip
    events.close()
    training.store.update(unknown.id, status="cancelled")
    message = _message(
        lambda: training.start_job("long", records=fact_records(40), hyperparameters=long)
    )
    assert "cannot finish within max_minutes=1" in message, message
    assert f"100 tokens/s, measured by job {unknown.id} on this base" in message
    assert "lower max_steps or epochs, or raise max_minutes" in message
    fits = training.start_job(
        "fits", records=fact_records(40), hyperparameters={"max_steps": 2, "max_minutes": 1}
    )
    measured = training.spec(fits.id).estimate
    assert measured is not None and measured.minutes is not None and measured.minutes < 1
    assert f"measured by job {unknown.id}" in measured.basis
    message = _message(
        lambda: training.start_job(
            "endless", records=fact_records(2000), hyperparameters={"epochs": 1000, "batch_size": 1}
        )
    )
    assert "steps; a job makes at most 1,000,000" in message and "lower epochs" in message
    assert {view.job.name for view in training.jobs()} == {"first", "fits"}
    training.close()
