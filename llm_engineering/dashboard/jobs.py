"""Training jobs: the list (live), one job with its loss chart fed by server-sent events, and
starting, cancelling and resuming jobs."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llm_engineering.adapters.job_view import JobView
from llm_engineering.adapters.jobs import ACTIVE, Job
from llm_engineering.adapters.service import TrainingService
from llm_engineering.context import AppContext
from llm_engineering.dashboard.app import dashboard_of, in_thread, see_other
from llm_engineering.errors import DatasetError, UserError

__all__ = ["JobViews", "parse_hyperparameters", "routes"]

JOBS_SHOWN = 50
EVENTS_SHOWN = 100
EVENT_TICK_S = 0.25
LIST_TICK_S = 1.0


def routes() -> list[BaseRoute]:
    return [
        Route("/jobs", jobs_page, methods=["GET"]),
        Route("/jobs", start_job, methods=["POST"]),
        Route("/jobs/stream", jobs_stream),
        Route("/jobs/{job_id}", job_page),
        Route("/jobs/{job_id}/events", job_events),
        Route("/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
        Route("/jobs/{job_id}/resume", resume_job, methods=["POST"]),
    ]


class JobViews:
    """Job views for the list, read again only for a job whose row or events changed.

    A finished job's events file can hold thousands of steps; while another job runs, the
    list is rendered every second, and must not read them all each time.
    """

    def __init__(self) -> None:
        self._cache: dict[str, tuple[tuple[Any, ...], JobView]] = {}
        self._lock = threading.Lock()

    def signature(self, training: TrainingService, job: Job) -> tuple[Any, ...]:
        events = training.events_stamp(job)
        return (job.status, job.adapter, job.error, job.attempts, job.cancel_requested, events)

    def views(self, training: TrainingService, limit: int = JOBS_SHOWN) -> list[JobView]:
        views = []
        with self._lock:
            rows = training.job_rows(limit=limit)
            for job in rows:
                signature = self.signature(training, job)
                cached = self._cache.get(job.id)
                if cached is None or cached[0] != signature:
                    cached = (signature, training.view(job.id, tail=0))
                    self._cache[job.id] = cached
                views.append(cached[1])
            for gone in set(self._cache) - {job.id for job in rows}:
                del self._cache[gone]
        return views

    def list_signature(self, training: TrainingService, limit: int = JOBS_SHOWN) -> Any:
        return [(job.id, self.signature(training, job)) for job in training.job_rows(limit=limit)]


def parse_hyperparameters(text: str) -> dict[str, Any] | None:
    """A JSON object, or ``name=value`` lines (values read as JSON when they are: 8, 1e-3, true).

    Raises:
        UserError: neither.
    """
    text = text.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"hyperparameters are not a valid JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise UserError("hyperparameters must be a JSON object")
        return value
    found: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, raw = line.partition("=")
        if not sep or not name.strip():
            raise UserError(f"hyperparameters line {number}: write name=value, got {line!r}")
        try:
            found[name.strip()] = json.loads(raw.strip())
        except json.JSONDecodeError:
            found[name.strip()] = raw.strip()
    return found


def _training(app: AppContext, writing: bool = False) -> TrainingService:
    if writing and app.read_only:
        raise UserError("this server was started read-only (--read-only); it changes no jobs")
    return app.require_training()


def _list_values(request: Request, training: TrainingService) -> dict[str, Any]:
    views = dashboard_of(request).job_views.views(training)
    return {"views": views, "runs_here": training.runs_here}


async def jobs_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    training = _training(dashboard.require())
    values = await in_thread(lambda: _list_values(request, training))
    return dashboard.render(request, "jobs.html", form={}, **values)


async def start_job(request: Request) -> Response:
    dashboard = dashboard_of(request)
    training = _training(dashboard.require(), writing=True)
    form = {k: str(v) for k, v in (await request.form()).items() if k != "csrf"}
    problems: list[tuple[int, str]] = []
    error = None
    try:
        hyperparameters = parse_hyperparameters(form.get("hyperparameters", ""))
        job = await in_thread(
            lambda: training.start_job(
                form.get("adapter_name", "").strip(),
                form.get("dataset_path", "").strip(),
                base_model=form.get("base_model", "").strip() or None,
                hyperparameters=hyperparameters,
            )
        )
    except DatasetError as exc:
        problems, error = exc.problems, str(exc).split(": ", 1)[0]
    except UserError as exc:
        error = str(exc)
    else:
        return see_other(f"/jobs/{job.id}")
    values = await in_thread(lambda: _list_values(request, training))
    return dashboard.render(
        request, "jobs.html", status_code=400, form=form, error=error, problems=problems, **values
    )


async def jobs_stream(request: Request) -> Response:
    """Server-sent events: the jobs table, rendered again when a job's row or events change."""
    dashboard = dashboard_of(request)
    training = _training(dashboard.require())

    async def changes() -> AsyncIterator[dict[str, str]]:
        last: Any = None
        while True:
            signature = await in_thread(lambda: dashboard.job_views.list_signature(training))
            if signature != last:
                last = signature
                values = await in_thread(lambda: _list_values(request, training))
                html = dashboard.render_text(request, "_jobs_table.html", **values)
                yield {"event": "jobs", "data": html}
            await anyio.sleep(LIST_TICK_S)

    return EventSourceResponse(changes(), ping=15)


def chart_data(events: list[dict[str, Any]]) -> dict[str, Any]:
    """The loss curves in the events: step -> train loss, and held-out losses by step."""
    steps: list[int] = []
    losses: list[float] = []
    evals: list[list[float]] = []
    for event in events:
        kind = event.get("event")
        if kind == "step" and "loss" in event:
            steps.append(event["step"])
            losses.append(event["loss"])
        elif kind == "eval" and event.get("eval_loss") is not None:
            evals.append([event.get("step", 0), event["eval_loss"]])
    return {"steps": steps, "loss": losses, "eval": evals}


def _detail(training: TrainingService, job_id: str) -> dict[str, Any]:
    view = training.view(job_id, tail=0)
    tail = training.tail_events(job_id)
    events = tail.read_all()
    shown = [e for e in events if e.get("event") != "step"][-EVENTS_SHOWN:]
    steps = [e for e in events if e.get("event") == "step"][-10:]
    recent = sorted(shown + steps, key=lambda e: e.get("t", 0))[-EVENTS_SHOWN:]
    return {
        "view": view,
        "job": view.job,
        "active": view.job.status in ACTIVE,
        "events": list(reversed(recent)),
        "chart": {**chart_data(events), "offset": tail.offset, "status": view.job.status},
        "runs_here": training.runs_here,
    }


async def job_page(request: Request) -> Response:
    dashboard = dashboard_of(request)
    training = _training(dashboard.require())
    job_id = request.path_params["job_id"]
    values = await in_thread(lambda: _detail(training, job_id))
    return dashboard.render(request, "job.html", **values)


async def job_events(request: Request) -> Response:
    """Server-sent events for one job: appended events (batched, id = byte offset) and its
    status panel whenever the job's row changes; ``end`` once it is over."""
    dashboard = dashboard_of(request)
    training = _training(dashboard.require())
    job_id = request.path_params["job_id"]
    resume_at = request.headers.get("last-event-id") or request.query_params.get("offset", "0")
    offset = int(resume_at) if resume_at.isdigit() else 0
    # An unknown job raises here: an error page, not a stream.
    tail = await in_thread(lambda: training.tail_events(job_id, offset))
    shown_status = request.query_params.get("status", "")

    def row_signature() -> tuple[Any, ...]:
        job = training.job(job_id)
        return (job.status, job.adapter, job.error, job.attempts, job.cancel_requested)

    async def changes() -> AsyncIterator[dict[str, str]]:
        last = None
        while True:
            events = await in_thread(tail.read)
            if events:
                yield {"event": "events", "id": str(tail.offset), "data": json.dumps(events)}
            signature = await in_thread(row_signature)
            if signature != last:
                if last is not None or signature[0] != shown_status:
                    view = await in_thread(lambda: training.view(job_id, tail=0))
                    html = dashboard.render_text(
                        request, "_job_status.html", view=view, job=view.job,
                        active=view.job.status in ACTIVE,
                    )  # fmt: skip
                    yield {"event": "status", "data": html}
                last = signature
            if signature[0] not in ACTIVE and not events:
                yield {"event": "end", "data": signature[0]}
                return
            await anyio.sleep(EVENT_TICK_S)

    return EventSourceResponse(changes(), ping=15)


async def cancel_job(request: Request) -> Response:
    return await _change(request, "cancel")


async def resume_job(request: Request) -> Response:
    return await _change(request, "resume")


async def _change(request: Request, action: str) -> Response:
    dashboard = dashboard_of(request)
    training = _training(dashboard.require(), writing=True)
    job_id = request.path_params["job_id"]
    await in_thread(lambda: (training.cancel if action == "cancel" else training.resume)(job_id))
    return see_other(f"/jobs/{job_id}")
