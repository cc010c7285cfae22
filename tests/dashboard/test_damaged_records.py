"""The adapters and jobs pages over a damaged card.json and job.json: they show, listing each
damaged record with its path and why, and every other adapter and job as before."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.context import AppContext
from llm_engineering.dashboard import create_dashboard
from tests.adapters.fictional import fact_records
from tests.adapters.test_damaged import damaged_registry
from tests.dashboard.conftest import client

pytestmark = pytest.mark.anyio


async def test_the_adapters_and_jobs_pages_list_damaged_records_and_the_rest(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    training = TrainingService(settings)
    dashboard = create_dashboard(settings)
    dashboard.attach(AppContext(settings=settings, read_only=False, training=training))
    damaged = damaged_registry(settings.data_dir)
    good = training.start_job("good", records=fact_records(12))
    bad = training.start_job("bad", records=fact_records(12))
    spec_file = training.store.folder(bad.id).spec_file
    spec_file.write_text("[1, 2")
    async with client(dashboard) as http:
        adapters = await http.get("/adapters")
        assert adapters.status_code == 200, adapters.text
        assert 'data-adapter="faq@1"' in adapters.text and 'data-adapter="other@1"' in adapters.text
        for spec, path in damaged.items():
            assert f'data-damaged="{spec}"' in adapters.text and str(path) in adapters.text
        assert 'value="faq@2"' in adapters.text  # a delete form for the damaged version
        jobs = await http.get("/jobs")
        assert jobs.status_code == 200, jobs.text
        assert f'data-job="{good.id}"' in jobs.text and f'data-job="{bad.id}"' in jobs.text
        assert str(spec_file) in jobs.text and "not valid JSON" in jobs.text
        page = await http.get(f"/jobs/{bad.id}")
        assert page.status_code == 200 and str(spec_file) in page.text
    training.close()
