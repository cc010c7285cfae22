"""list_adapters, list_jobs and get_job over a data folder with a damaged card.json and job.json:
the tools answer, listing the damaged record with its path and why (called in process, through
the request context the server's lifespan gives them)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.context import AppContext
from llm_engineering.tools.adapters import list_adapters
from llm_engineering.tools.train import get_job, list_jobs
from tests.adapters.fictional import fact_records
from tests.adapters.test_damaged import damaged_registry

pytestmark = pytest.mark.anyio


async def test_the_listing_tools_answer_and_name_each_damaged_record(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    training = TrainingService(settings)
    app = AppContext(settings=settings, read_only=False, training=training)
    ctx: Any = SimpleNamespace(lifespan_context=app)  # what app_of reads from a request
    damaged = damaged_registry(settings.data_dir)
    other = await list_adapters(ctx, name="other")
    assert [a.adapter for a in other.adapters] == ["other@1"] and other.damaged == []
    listed = await list_adapters(ctx)
    assert [a.adapter for a in listed.adapters] == ["faq@1", "other@1"]
    assert {(d.entry, d.path) for d in listed.damaged} == {
        (spec, str(path)) for spec, path in damaged.items()
    }

    good = training.start_job("good", records=fact_records(12))
    bad = training.start_job("bad", records=fact_records(12))
    spec_file = training.store.folder(bad.id).spec_file
    spec_file.write_text("{")
    jobs = {job.job_id: job for job in (await list_jobs(ctx)).jobs}
    assert jobs[good.id].damaged is None and jobs[good.id].eval_examples == 0
    assert jobs[bad.id].damaged is not None and jobs[bad.id].damaged.path == str(spec_file)
    shown = (await get_job(ctx, job_id=bad.id)).structured_content
    assert shown is not None and shown["status"] == "queued"
    assert shown["damaged"]["path"] == str(spec_file)
    assert "not valid JSON" in shown["damaged"]["reason"]
    training.close()
