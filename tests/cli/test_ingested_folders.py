"""A folder given to a plain ``llm-eng ingest`` (no --watch, no server) can be read back: ``show``
by path and by chunk, ``get_document`` and ``doc://`` resources; nothing outside it can."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from llm_engineering.config import load_settings
from llm_engineering.errors import PathError
from llm_engineering.index_store.service import IndexService
from llm_engineering.tools.resources import read_document
from tests.conftest import LLM_ENG, server_env

REAL = Path(__file__).resolve().parents[1] / "data" / "real-project" / "flask"

pytestmark = pytest.mark.slow


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [LLM_ENG, *args], env=server_env(), capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_an_ingested_folder_is_read_back_by_path_chunk_and_uri_and_nothing_beside_it(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    shutil.copytree(REAL / "docs", project / "docs")
    (tmp_path / "secret.md").write_text("# Secret\n\nThe vault code is 4417.\n")
    data = str(tmp_path / "data")
    assert run("ingest", "project/docs", "--data-dir", data, cwd=tmp_path).returncode == 0

    own = (project / "docs" / "blueprints.rst").read_text().split("\n")
    shown = run("show", "project/docs/blueprints.rst:1-6", "--data-dir", data, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    # the file's own reStructuredText lines, not the Markdown the chunker reads
    assert shown.stdout.split("\n")[:6] == own[:6] and own[1].startswith("====")

    found = run("search", "register a blueprint on the application", "--json", "-k", "1",
                "--data-dir", data, cwd=tmp_path)  # fmt: skip
    (hit,) = json.loads(found.stdout)["results"]
    where = f"{hit['path']}:{hit['start_line']}-{hit['end_line']}"
    by_path = run("show", where, "--json", "--data-dir", data, cwd=tmp_path)
    by_chunk = run("show", "--chunk", hit["chunk_id"], "--around", "0", "--json",
                   "--data-dir", data, cwd=project)  # fmt: skip
    assert by_path.returncode == by_chunk.returncode == 0, by_path.stderr + by_chunk.stderr
    lines = Path(hit["path"]).read_text().split("\n")[hit["start_line"] - 1 : hit["end_line"]]
    assert json.loads(by_path.stdout)["text"].split("\n") == lines
    assert json.loads(by_chunk.stdout)["text"] == json.loads(by_path.stdout)["text"]

    refused = run("show", str(tmp_path / "secret.md"), "--data-dir", data, cwd=tmp_path)
    assert refused.returncode != 0 and "4417" not in refused.stdout + refused.stderr
    assert "outside the watched folders and the folders ingested" in refused.stderr

    index = IndexService(load_settings(data_dir=tmp_path / "data"))
    try:
        doc = index.get_document(path=str(project / "docs" / "views.rst"), start_line=1)
        assert (
            doc.text.split("\n")[0] == (project / "docs" / "views.rst").read_text().split("\n")[0]
        )
        assert doc.uri == "doc://docs/views.rst" and doc.mime_type == "text/x-rst"
        assert read_document(index, doc.uri).text.startswith(doc.text.split("\n")[0])
        with pytest.raises(PathError, match="outside the watched folders and the folders ingested"):
            index.get_document(path=str(tmp_path / "secret.md"))
        with pytest.raises(PathError, match="outside"):
            read_document(index, "doc://docs/../../secret.md")
    finally:
        index.close()
