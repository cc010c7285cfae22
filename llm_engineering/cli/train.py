"""``llm-eng train``, ``jobs`` and ``adapters``: fine-tuning from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from llm_engineering.cli import output
from llm_engineering.cli.app import app
from llm_engineering.cli.options import (
    AsJson,
    Config,
    DataDir,
    LogLevel,
    fail,
    load_settings,
    open_training,
)
from llm_engineering.errors import LlmEngError

__all__ = ["adapters", "jobs", "train"]


def _hyperparameters(pairs: list[str] | None, **named: Any) -> dict[str, Any]:
    values: dict[str, Any] = {k: v for k, v in named.items() if v is not None}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"--set takes NAME=VALUE, got {pair!r}", code=2)
        try:
            values[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[key.strip()] = raw
    return values


@app.command()
def train(
    dataset: Annotated[
        Path, typer.Argument(help="JSONL: chat, alpaca, prompt/completion or text.")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Adapter name to register.")],
    base_model: Annotated[
        str | None, typer.Option(help="GGUF (name or path) or HF model; default: llm_model.")
    ] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data (default 3).")] = None,
    max_steps: Annotated[Optional[int], typer.Option(help="Stop after this many steps.")] = None,  # noqa: UP045
    max_minutes: Annotated[Optional[float], typer.Option(help="Stop after this long.")] = None,  # noqa: UP045
    learning_rate: Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(
            "--lr", help="Default: chosen from the base's size (1e-3 below 1.5B, 2e-4 for 7B+)."
        ),
    ] = None,
    eval_path: Annotated[
        Path | None,
        typer.Option(
            "--eval",
            help="Held-out JSONL to check the adapter on (default: 10% of DATASET's prompts).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Any hyperparameter as NAME=VALUE (repeatable), e.g. r=8."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue it and return; a running server trains it.")
    ] = False,
    data_dir: DataDir = None,
    config: Config = None,
    log_level: LogLevel = None,
) -> None:
    """Fine-tune the local model with QLoRA on DATASET and register the adapter as NAME."""
    settings = load_settings(config, data_dir=data_dir, log_level=log_level or "WARNING")
    hyperparameters = _hyperparameters(
        set_,
        epochs=epochs,
        max_steps=max_steps,
        max_minutes=max_minutes,
        learning_rate=learning_rate,
    )
    training = open_training(settings)
    try:
        job = training.start_job(
            name, str(dataset), base_model=base_model, hyperparameters=hyperparameters,
            eval_path=str(eval_path) if eval_path else None, check_roots=False,
        )  # fmt: skip
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"job {job.id}: {job.examples} examples, queued", err=True)
    if detach:
        typer.echo(job.id)
        return
    training.start_runner()
    try:
        with output.training_progress() as show:
            training.follow(
                job.id,
                on_step=lambda view: show(
                    view, "training" if training.runs_here else "queued (another process runs jobs)"
                ),
            )
    except KeyboardInterrupt:
        training.close()
        raise fail(
            f"stopped following job {job.id}; it resumes from its last checkpoint when a server "
            "or `llm-eng train` runs jobs again (`llm-eng jobs` shows it)",
            code=130,
        ) from None
    training.close()
    view = training.view(job.id, tail=0)
    typer.echo(output.job_line(view))
    result = view.result
    for name_, why in ((result.chosen or {}) if result else {}).items():
        value = (result.hyperparameters or {}).get(name_) if result else None
        typer.echo(f"  chose {name_} = {value}: {why}", err=True)
    if view.job.status != "succeeded":
        raise typer.Exit(1)
    typer.echo(f"answer with it: llm-eng ask QUESTION --adapter {view.job.adapter}", err=True)


@app.command()
def jobs(
    job_id: Annotated[str | None, typer.Argument(help="Show this job in full.")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel JOB_ID.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume interrupted JOB_ID.")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """List training jobs, or show, cancel or resume one."""
    training = open_training(load_settings(config, data_dir=data_dir, log_level="WARNING"))
    try:
        if job_id is None:
            if cancel or resume:
                raise fail("--cancel and --resume need a JOB_ID", code=2)
            views = training.jobs(limit=50)
            if as_json:
                typer.echo(json.dumps([v.to_dict() for v in views], indent=2))
            elif not views:
                typer.echo("no training jobs yet (llm-eng train DATA.jsonl --name NAME)")
            for view in [] if as_json else views:
                typer.echo(output.job_line(view))
            return
        if cancel:
            training.cancel(job_id)
        if resume:
            training.resume(job_id)
        view = training.view(job_id, tail=5)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    finally:
        training.close()
    if as_json:
        typer.echo(json.dumps(view.to_dict(), indent=2))
        return
    typer.echo(output.job_line(view))
    for event in view.events:
        typer.echo(f"  {json.dumps(event)}")
    if view.loss_plot:
        typer.echo(f"  loss plot: {view.loss_plot}")


@app.command()
def adapters(
    delete: Annotated[
        str | None, typer.Option("--delete", help="Delete NAME@VERSION (or every version of NAME).")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Delete without asking.")] = False,
    serve: Annotated[
        str | None,
        typer.Option(
            "--serve",
            help="Print what to start vllm, llama-server or llama-cpp-python with to serve them.",
        ),
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    config: Config = None,
) -> None:
    """List fine-tuned adapters, delete one, or print how to serve them on a model server."""
    from llm_engineering.cli import serving

    training = open_training(load_settings(config, data_dir=data_dir, log_level="WARNING"))
    try:
        if serve:
            return serving.print_launch(serve, training)
        if delete:
            if not yes and not typer.confirm(f"delete adapter {delete}? This cannot be undone"):
                raise fail("nothing deleted", code=1)
            deleted = training.delete_adapter(delete, delete)
            for spec in deleted:
                typer.echo(f"deleted {spec}")
            for note in serving.release(training.settings, deleted):
                typer.echo(f"note: {note}", err=True)
            return
        cards = training.adapters()
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    finally:
        training.close()
    if as_json:
        typer.echo(json.dumps([asdict(c) for c in cards], indent=2))
        return
    output.print_adapters(cards)
