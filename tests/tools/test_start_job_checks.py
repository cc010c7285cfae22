"""start_qlora_job refuses what cannot train before anything is queued, and says how long what
it queues will take (called in process, through the request context the lifespan gives it)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from mcp.server.mcpserver.exceptions import ToolError

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.context import AppContext
from llm_engineering.tools.train import start_qlora_job
from tests.adapters.fictional import fact_records

pytestmark = pytest.mark.anyio


async def test_start_qlora_job_refuses_non_finite_values_and_reports_its_estimate(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    training = TrainingService(settings)
    ctx: Any = SimpleNamespace(
        lifespan_context=AppContext(settings=settings, read_only=False, training=training)
    )
    raw = json.loads('{"epochs": NaN, "max_grad_norm": Infinity, "weight_decay": -5}')
    with pytest.raises(ToolError) as caught:
        await start_qlora_job(ctx, "z", records=fact_records(12), hyperparameters=raw)
    message = str(caught.value)
    assert "epochs must be a finite number, not nan" in message
    assert "max_grad_norm must be a finite number, not inf" in message
    assert "weight_decay must be in [0, 1], not -5" in message
    assert training.store.jobs() == []
    started = await start_qlora_job(
        ctx, "z", records=fact_records(12), hyperparameters={"max_steps": 40, "max_minutes": 5}
    )
    assert started.planned_steps == 40 and started.estimated_minutes is None
    assert "no training rate measured on this base here yet" in started.estimate
    training.close()
