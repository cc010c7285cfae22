"""``llm-eng dashboard``: the dashboard alone, reading a data folder another process writes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from starlette.testclient import TestClient

from llm_engineering.dashboard.standalone import build_standalone
from tests.conftest import LLM_ENG, free_port, server_env, wait_until
from tests.dashboard.conftest import csrf_of


def test_it_reads_beside_the_writer_and_never_takes_the_writer_lock(
    service_factory,  # type: ignore[no-untyped-def]
    mixed_folder: Path,
) -> None:
    writer = service_factory(watch=[mixed_folder])
    writer.ingest([mixed_folder])
    assert writer.is_writer
    dashboard = build_standalone(writer.settings)
    with TestClient(dashboard.app, base_url="http://127.0.0.1:8765") as http:
        reader = dashboard.require().require_index()
        overview = http.get("/")
        assert overview.status_code == 200
        assert 'data-role="reader"' in overview.text and "dashboard only" in overview.text
        assert 'data-count="documents">6<' in overview.text
        assert "Retry" not in overview.text
        found = http.get("/search", params={"q": "treasury mangrove", "mode": "keyword"})
        assert "minutes.docx" in found.text
        refused = http.post(
            "/documents/retry",
            data={"csrf": csrf_of(overview.text), "path": str(mixed_folder / "notes.md")},
        )
        assert refused.status_code == 400 and "only reads the index" in refused.text
        assert not reader.is_writer and writer.is_writer
        (mixed_folder / "later.md").write_text("# Later\n\nThe okapi sanctuary opened.\n")
        writer.ingest([mixed_folder])  # the writer indexes; the reader sees it
        assert 'data-count="documents">7<' in http.get("/").text
        assert "later.md" in http.get("/search", params={"q": "okapi sanctuary"}).text
    assert dashboard.context is None  # the lifespan closed what it opened


def test_the_command_prints_its_url_and_refuses_a_public_bind_without_a_token(
    tmp_path: Path,
) -> None:
    data = ["--data-dir", str(tmp_path / "data")]
    refused = subprocess.run(
        [LLM_ENG, "dashboard", "--host", "0.0.0.0", *data],
        env=server_env(),
        capture_output=True,
        timeout=120,
    )
    assert refused.returncode == 2 and b"without a token" in refused.stderr
    port = free_port()
    log = tmp_path / "dashboard.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [LLM_ENG, "dashboard", "--port", str(port), *data],
            env=server_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(
                lambda: f"dashboard at http://127.0.0.1:{port}/" in log.read_text(),
                "the dashboard's URL printed",
            )
            assert "no folders are watched" in log.read_text()
        finally:
            process.terminate()
            process.wait(timeout=60)
