"""``llm-eng train``, ``jobs`` and ``adapters``: fine-tuning from the command line."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from llm_engineering.adapters.jobs import ACTIVE
from llm_engineering.cli.job_progress import event_line, training_progress
from llm_engineering.cli.options import AsJson, fail, open_training, with_settings
from llm_engineering.cli.output import job_line, print_adapters
from llm_engineering.cli.remote import Verbose, from_server
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.adapters.job_view import JobView
    from llm_engineering.adapters.registry import RegistryScan
    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import Settings
    from llm_engineering.generation.base import Availability

__all__ = ["adapter_listing", "adapters", "job_listing", "jobs", "train"]


def set_values(pairs: list[str] | None, **named: Any) -> dict[str, Any]:
    """``--set NAME=VALUE`` options (JSON values, else text) over the named options given."""
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


@with_settings("data_dir", "log_level", log_level="WARNING")
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
        typer.Option(
            "--set", metavar="NAME=VALUE", help="Any hyperparameter (repeatable), e.g. r=8."
        ),
    ] = None,
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Queue it and return; a running server (or `jobs ID --follow`) trains it.",
        ),
    ] = False,
    *,
    settings: Settings,
) -> None:
    """Fine-tune the local model with QLoRA on DATASET and register the adapter as NAME."""
    hyperparameters = set_values(
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
    planned = training.spec(job.id).estimate
    if planned is not None:
        typer.echo(f"estimate: {planned.basis}", err=True)
    if detach:
        typer.echo(f"note: {_who_trains(training, job.id)}", err=True)
        training.close()
        typer.echo(job.id)
        return
    view = _follow(training, job.id)
    result = view.result
    for name_, why in ((result.chosen or {}) if result else {}).items():
        value = (result.hyperparameters or {}).get(name_) if result else None
        typer.echo(f"  chose {name_} = {value}: {why}", err=True)
    if view.job.status != "succeeded":
        raise typer.Exit(1)
    typer.echo(f"answer with it: llm-eng ask QUESTION --adapter {view.job.adapter}", err=True)


def _who_trains(training: TrainingService, job_id: str) -> str:
    pid = training.runner_pid()
    if pid is not None:
        return f"llm-eng (pid {pid or '?'}) runs jobs: it trains this one now, or once the jobs ahead of it end"
    return (
        "nothing runs jobs now: a running `llm-eng serve` (or `llm-eng train` without --detach) "
        f"trains it, or train it here with `llm-eng jobs {job_id} --follow`"
    )


def _follow(training: TrainingService, job_id: str) -> JobView:
    """Run jobs here (unless another process does) and show this one's progress until it ends.

    Ctrl-C stops the jobs running here, each at a checkpoint, and records them interrupted.
    Prints the job's line and closes ``training``; returns the job's last view.
    """
    training.start_runner()
    try:
        with training_progress() as show:
            training.follow(
                job_id, on_step=lambda view: show(view, training.runs_here), stages=True
            )
    except KeyboardInterrupt:
        typer.echo(f"stopping: job {job_id} saves a checkpoint first", err=True)
        training.stop_runner(interrupted="its llm-eng was stopped (Ctrl-C)")
        view = training.view(job_id, tail=0)
        if view.job.status == "interrupted":
            message = (
                f"stopped job {job_id}; resume it with `llm-eng jobs {job_id} --resume --follow`"
            )
        elif view.job.status == "running":  # by another process, which goes on
            message = f"stopped following job {job_id}; it goes on training (`llm-eng jobs`)"
        elif view.job.status == "queued":
            message = (
                f"stopped following job {job_id}, still queued; {_who_trains(training, job_id)}"
            )
        else:
            message = f"job {job_id} ended ({view.job.status})"
        training.close()
        typer.echo(job_line(view))
        raise fail(message, code=130) from None
    view = training.view(job_id, tail=0)
    training.close()
    typer.echo(job_line(view))
    return view


@with_settings("data_dir", log_level="WARNING")
def jobs(
    job_id: Annotated[str | None, typer.Argument(help="Show this job in full.")] = None,
    cancel: Annotated[bool, typer.Option("--cancel", help="Cancel JOB_ID.")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Resume interrupted JOB_ID.")] = False,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Follow JOB_ID to its end, training it here unless a server runs jobs.",
        ),
    ] = False,
    as_json: AsJson = False,
    verbose: Verbose = False,
    *,
    settings: Settings,
) -> None:
    """List training jobs, or show, cancel, resume or follow one."""
    if job_id is None and (cancel or resume or follow):
        raise fail("--cancel, --resume and --follow need a JOB_ID", code=2)
    if job_id is None:
        listed = from_server(settings, "jobs", {}, verbose=verbose)
        if listed is None:
            training = open_training(settings)
            try:
                listed = job_listing(training.jobs(limit=50))
            finally:
                training.close()
        if as_json:
            typer.echo(json.dumps(listed["json"], indent=2))
        elif not listed["lines"]:
            typer.echo("no training jobs yet (llm-eng train DATA.jsonl --name NAME)")
        for line in [] if as_json else listed["lines"]:
            typer.echo(line)
        return
    training = open_training(settings)
    try:
        if cancel:
            job = training.cancel(job_id)
            typer.echo(
                f"job {job_id}: cancelled"
                if job.status == "cancelled"
                else f"job {job_id}: cancel requested; it stops at its next step",
                err=True,
            )
        if resume:
            training.resume(job_id)
            if not follow:
                typer.echo(f"job {job_id}: queued again; {_who_trains(training, job_id)}", err=True)
        view = training.view(job_id, tail=8)
    except LlmEngError as exc:
        training.close()
        raise fail(str(exc)) from exc
    if follow and view.job.status in ACTIVE:
        if _follow(training, job_id).job.status != "succeeded":
            raise typer.Exit(1)
        return
    training.close()
    if as_json:
        typer.echo(json.dumps(view.to_dict(), indent=2))
        return
    typer.echo(job_line(view))
    if view.damaged:
        typer.echo(f"  damaged: {view.damaged.path} cannot be read ({view.damaged.reason})")
    for event in view.events:
        typer.echo(f"  {event_line(event)}")
    if view.loss_plot:
        typer.echo(f"  loss plot: {view.loss_plot}")


@with_settings("data_dir", log_level="WARNING")
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
    verbose: Verbose = False,
    *,
    settings: Settings,
) -> None:
    """List fine-tuned adapters, delete one, or print how to serve them on a model server."""
    from llm_engineering.cli.serving import print_launch, release, where_served

    training = open_training(settings)
    try:
        if serve:
            return print_launch(serve, training)
        if delete:
            doomed = ", ".join(training.adapters_to_delete(delete))  # fails for an unknown one
            if not yes and not typer.confirm(f"delete {doomed}? This cannot be undone"):
                raise fail("nothing deleted", code=1)
            deleted = training.delete_adapter(delete, delete)
            for spec in deleted:
                typer.echo(f"deleted {spec}")
            for note in release(training.settings, deleted):
                typer.echo(f"note: {note}", err=True)
            return
        listed = from_server(settings, "adapters", {}, verbose=verbose)
        if listed is None:
            listing = training.adapter_listing()
            listed = adapter_listing(listing, where_served(training, listing.cards))
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    finally:
        training.close()
    if as_json:
        typer.echo(json.dumps(listed["json"], indent=2))
    else:
        from llm_engineering.adapters.registry import AdapterCard
        from llm_engineering.generation.base import Availability
        from llm_engineering.local.wire import revive

        names = {f.name for f in fields(AdapterCard)}
        cards = [
            revive(AdapterCard, {k: v for k, v in x.items() if k in names}) for x in listed["json"]
        ]
        found = [revive(Availability, x["serving"]) for x in listed["json"]]
        print_adapters(cards, found)
    for line in listed["damaged"]:  # beside the JSON, never in it: stdout stays the list
        typer.echo(line, err=as_json)


def job_listing(views: list[JobView]) -> dict[str, Any]:
    """``llm-eng jobs``' list as data: its JSON and its lines (also what a server sends)."""
    lines = []
    for view in views:
        lines.append(job_line(view))
        if view.damaged:
            lines.append(f"  damaged: {view.damaged.path} cannot be read ({view.damaged.reason})")
    return {"json": [v.to_dict() for v in views], "lines": lines}


def adapter_listing(listing: RegistryScan, found: list[Availability]) -> dict[str, Any]:
    """``llm-eng adapters``' list as data: its JSON and the damaged versions' lines."""
    listed = [
        {**asdict(card), "serving": asdict(where)}
        for card, where in zip(listing.cards, found, strict=True)
    ]
    damaged = [
        f"damaged: {d.describe()}; restore it or delete it: llm-eng adapters --delete {d.entry}"
        for d in listing.damaged
    ]
    return {"json": listed, "damaged": damaged}
