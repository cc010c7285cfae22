"""Adapters: their cards, deleting one (the name typed again to confirm), and one question
answered side by side by the base model and an adapter."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from llm_engineering.context import AppContext
from llm_engineering.dashboard.app import dashboard_of, in_thread, see_other
from llm_engineering.errors import LlmEngError, UserError
from llm_engineering.generation.answer import Answer

__all__ = ["routes"]

COMPARE_MAX_TOKENS = 128


def routes() -> list[BaseRoute]:
    return [
        Route("/adapters", adapters_page),
        Route("/adapters/delete", delete_adapter, methods=["POST"]),
        Route("/adapters/compare", compare, methods=["POST"]),
    ]


async def adapters_page(request: Request, **values: Any) -> Response:
    dashboard = dashboard_of(request)
    training = dashboard.require().require_training()
    listing = await in_thread(training.adapter_listing)
    status_code = values.pop("status_code", 200)
    return dashboard.render(
        request,
        "adapters.html",
        status_code=status_code,
        cards=sorted(listing.cards, key=lambda c: (c.name, -c.version)),
        damaged=listing.damaged,
        **values,
    )


async def delete_adapter(request: Request) -> Response:
    dashboard = dashboard_of(request)
    app = dashboard.require()
    if app.read_only:
        raise UserError("this server was started read-only (--read-only); it deletes nothing")
    training = app.require_training()
    form = await request.form()
    spec, confirm = str(form.get("adapter", "")), str(form.get("confirm", "")).strip()
    try:
        deleted = await in_thread(lambda: training.delete_adapter(spec, confirm))
    except UserError as exc:
        return await adapters_page(request, status_code=400, delete_error=(spec, str(exc)))
    if app.generators is not None:  # free the deleted versions loaded on the base (or a server)
        await in_thread(lambda: app.generators.release(deleted) if app.generators else [])
    return see_other("/adapters")


def _answer(app: AppContext, question: str, adapter: str | None, use_docs: bool) -> Answer:
    answerer = app.require_answerer(needs_index=use_docs)
    return answerer.answer(
        question,
        adapter=adapter,
        max_tokens=COMPARE_MAX_TOKENS,
        contexts=None if use_docs else [],
    )


async def compare(request: Request) -> Response:
    """The base model's answer and the adapter's, to the same question with the same passages."""
    dashboard = dashboard_of(request)
    app = dashboard.require()
    form = await request.form()
    question = str(form.get("question", "")).strip()
    adapter = str(form.get("adapter", "")).strip()
    use_docs = form.get("use_docs") in ("1", "on")
    if not question:
        raise UserError("type a question to compare the answers")
    if not adapter:
        raise UserError("choose an adapter")
    results: list[tuple[str, Answer | None, str | None]] = []
    for label, spec in (("base model", None), (adapter, adapter)):
        try:
            answer = await in_thread(lambda spec=spec: _answer(app, question, spec, use_docs))  # type: ignore[misc]
            results.append((label, answer, None))
        except LlmEngError as exc:
            results.append((label, None, str(exc)))
    values: dict[str, Any] = {
        "question": question,
        "adapter": adapter,
        "use_docs": use_docs,
        "results": results,
    }
    if request.headers.get("hx-request"):
        return dashboard.render(request, "_comparison.html", **values)
    return await adapters_page(request, comparison=values)
