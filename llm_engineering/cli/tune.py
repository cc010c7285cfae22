"""``llm-eng tune-retrieval``: tune the embedding model on this corpus (a job), switch if better,
roll back, list what was tuned."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from llm_engineering.cli.index import open_watched
from llm_engineering.cli.options import INDEX_FLAGS, AsJson, fail, open_training, with_settings
from llm_engineering.cli.train import set_values
from llm_engineering.errors import LlmEngError

if TYPE_CHECKING:
    from llm_engineering.adapters.service import TrainingService
    from llm_engineering.config import Settings
    from llm_engineering.index_store.service import IndexService

__all__ = ["tune_retrieval"]


def _say(event: dict[str, Any]) -> None:
    line = {
        "started": lambda v: f"tuning {v.get('model')} (attempt {v.get('attempt')})",
        "pairs": lambda v: (
            f"pairs: {v['train']} to train on, {v['heldout']} held out ({v['source']})"
        ),
        "step": lambda v: f"training: step {v['step']}/{v['total']}  loss {v['loss']:.4f}",
        "questions": lambda v: f"questions: {v['asked']} of {v['of']} chunks asked",
        "shadow": lambda v: f"new index: {v['embedded']:,} of {v['of']:,} chunks embedded",
        "scores": lambda v: (
            f"held-out nDCG@10: live {v['live']['nDCG@10']:.4f}, tuned {v['tuned']['nDCG@10']:.4f}"
            f"  (Recall@10 {v['live']['R@10']:.4f} -> {v['tuned']['R@10']:.4f})"
        ),
        "live": lambda v: f"searches now use {v['model']} (was {v['previous']})",
        "requeued": lambda v: f"stopped ({v.get('reason')}); queued to start again",
        "failed": lambda v: f"failed: {v.get('error')}",
    }.get(str(event.get("event")))
    if line is not None:
        typer.echo(line(event), err=True)


def _list(settings: Settings, as_json: bool) -> None:
    from llm_engineering.retrieval.live import LiveFile, tuned_models

    cards = tuned_models(LiveFile(settings.data_dir))
    if as_json:
        typer.echo(json.dumps(cards, indent=2))
        return
    if not cards:
        typer.echo("no tuned embedding model yet: `llm-eng tune-retrieval` makes one")
    for card in cards:
        scores = card.get("scores") or {}
        live = scores.get("live", {}).get("nDCG@10", "-")
        tuned = scores.get("tuned", {}).get("nDCG@10", "-")
        typer.echo(f"{card['name']}  {card['status']}  nDCG@10 {live} -> {tuned}  {card['reason']}")


def _rollback(index: IndexService, as_json: bool) -> None:
    from llm_engineering.retrieval.tuner import RetrievalTuner

    if not index.is_writer:
        raise fail(
            f"llm-eng (pid {index.writer_pid}) writes this index: stop it to roll back, then "
            "run this again (it switches at its next start)"
        )
    target = RetrievalTuner(
        index, lambda event, values: _say({"event": event, **values})
    ).rollback()
    typer.echo(json.dumps({"live": target.label}) if as_json else f"searches use {target.label}")


def _run_here(training: TrainingService, index: IndexService, job_id: str) -> None:
    """Run the job in this process (the index's writer), printing its events as they come."""
    runner = training.tuning_runner(index)
    thread = threading.Thread(target=runner.run, args=(training.job(job_id),), daemon=True)
    thread.start()
    _follow(training, job_id, thread.is_alive)


def _follow(training: TrainingService, job_id: str, running: Any = None) -> None:
    from llm_engineering.adapters.jobs import ACTIVE

    tail = training.tail_events(job_id)
    try:
        while True:
            for event in tail.read():
                _say(event)
            ended = training.job(job_id).status not in ACTIVE
            if ended and (running is None or not running()):
                for event in tail.read_all():
                    _say(event)
                return
            time.sleep(0.3)
    except KeyboardInterrupt:
        if running is None:
            raise fail(
                f"stopped following job {job_id}; it goes on (`llm-eng jobs`)", 130
            ) from None
        typer.echo(f"cancelling job {job_id}: it stops at its next step", err=True)
        training.cancel(job_id)
        while running():
            time.sleep(0.2)
        raise fail(f"job {job_id} cancelled: nothing was switched", 130) from None


@with_settings(*INDEX_FLAGS, log_level="WARNING")
def tune_retrieval(
    pairs: Annotated[
        Path | None,
        typer.Option(
            help='JSONL of {"query": ..., "positives": [file or chunk id, ...], "negatives": [...]}; '
            "without it, pairs come from the documents' titles and headings."
        ),
    ] = None,
    min_gain: Annotated[
        float, typer.Option(help="nDCG@10 the tuned index must gain on held-out pairs to be used.")
    ] = 0.01,
    heldout: Annotated[float, typer.Option(help="Share of the pairs held out to score.")] = 0.2,
    questions: Annotated[
        int,
        typer.Option(
            min=0, help="Without --pairs: also have the local model write questions for N chunks."
        ),
    ] = 0,
    hard_negatives: Annotated[
        bool,
        typer.Option(
            "--hard-negatives",
            help="Give each pair the best keyword hit outside its files as a negative (slower).",
        ),
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", metavar="NAME=VALUE", help="A tuning setting (repeatable), e.g. epochs=2."
        ),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Queue it and return (a running server runs it).")
    ] = False,
    rollback: Annotated[
        bool, typer.Option("--rollback", help="Go back to the index the last switch replaced.")
    ] = False,
    as_list: Annotated[bool, typer.Option("--list", help="List the tuned models.")] = False,
    as_json: AsJson = False,
    *,
    settings: Settings,
) -> None:
    """Tune the embedding model on this corpus; its new index replaces the live one only if better."""
    if as_list:
        _list(settings, as_json)
        return
    if pairs is not None and not pairs.is_file():
        raise fail(f"--pairs {pairs}: no such file")
    given = set_values(set_)
    index = open_watched(settings)
    training = open_training(settings)
    try:
        if rollback:
            _rollback(index, as_json)
            return
        job = training.queue_tuning(
            index, pairs=pairs, min_gain=min_gain, heldout_fraction=heldout,
            settings=given, questions=questions, hard_negatives=hard_negatives,
        )  # fmt: skip
        typer.echo(f"job {job.id}: {job.examples} pairs, queued", err=True)
        if detach:
            typer.echo(job.id)
            return
        if index.is_writer:
            _run_here(training, index, job.id)
        else:
            typer.echo(
                f"note: llm-eng (pid {index.writer_pid}) writes this index and runs it", err=True
            )
            _follow(training, job.id)
        view = training.view(job.id, tail=0)
    except LlmEngError as exc:
        raise fail(str(exc)) from exc
    finally:
        training.close()
        index.close()
    decided = view.tuning or {}
    if as_json:
        typer.echo(json.dumps({"job_id": job.id, "status": view.job.status, **decided}, indent=2))
    elif decided:
        typer.echo(f"{decided['status']}: {decided['reason']}")
    else:
        typer.echo(f"job {job.id} {view.job.status}: {view.job.error or ''}".rstrip(": "))
    if view.job.status != "succeeded":
        raise typer.Exit(1)
