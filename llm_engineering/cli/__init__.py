"""``llm-eng``: serve, dashboard, ingest, search, status, ask, train, jobs, adapters, eval.

One module per command family (``serve``, ``dashboard``, ``index``, ``documents``,
``answer``, ``train``, ``evaluate``), the settings flags and what else commands share in
``options``, the app, its help and the order of its commands in ``app``, and everything
shown to a person in ``output`` (a training job's progress line and events in
``job_progress``). The command modules import neither ``app`` nor this package, so
nothing imports back what imports it. Heavy libraries are imported inside the commands,
so ``llm-eng --help`` is instant.
"""

from __future__ import annotations

from llm_engineering.cli.app import app, main

__all__ = ["app", "main"]
