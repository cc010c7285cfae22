"""The dashboard over real services (the index of a real folder, the job store), in process."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llm_engineering.adapters.service import TrainingService
from llm_engineering.context import AppContext
from llm_engineering.dashboard import Dashboard, create_dashboard

SCRIPT_NAME = "<script>alert(1)</script>.md"
"""A file name that is markup: its '/' makes it a folder '<script>alert(1)<' holding 'script>.md'."""


def write_script_named_file(folder: Path) -> Path:
    path = folder / SCRIPT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# <img src=x onerror=alert(2)>\n\nThe marmalade ledger is kept here.\n")
    return path


@pytest.fixture
def dashboard_factory(service_factory, mixed_folder: Path) -> Iterator:  # type: ignore[no-untyped-def]
    """``make(**settings)``: a Dashboard attached to an index of ``mixed_folder`` (ingested)."""
    opened: list[TrainingService] = []

    def make(**overrides: object) -> Dashboard:
        write_script_named_file(mixed_folder)
        index = service_factory(watch=[mixed_folder], **overrides)
        index.ingest([mixed_folder])
        training = TrainingService(index.settings)
        opened.append(training)
        dashboard = create_dashboard(index.settings)
        dashboard.attach(
            AppContext(settings=index.settings, read_only=False, index=index, training=training)
        )
        return dashboard

    yield make
    for training in opened:
        training.close()


def client(
    dashboard: Dashboard,
    host: str = "127.0.0.1:8765",
    peer: tuple[str, int] = ("127.0.0.1", 123),
    **kwargs: object,
) -> httpx.AsyncClient:
    """An HTTP client of ``dashboard``'s app, as a browser at ``peer`` reaching it by ``host``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=dashboard.app, client=peer),
        base_url=f"http://{host}",
        **kwargs,  # type: ignore[arg-type]
    )


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html) or re.search(
        r'data-csrf="([0-9a-f]+)"', html
    )
    assert found, "no CSRF token in the page"
    return found.group(1)
