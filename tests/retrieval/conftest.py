"""Shared by the retrieval tuning tests: the real project's docs indexed once, and pairs that
name parts of them by a team's own words."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llm_engineering.config import load_settings
from llm_engineering.index_store.service import IndexService
from llm_engineering.retrieval.contrastive import TuneConfig

REAL = Path(__file__).parents[1] / "data" / "real-project"
# A team's own names for parts of its docs: words the packaged model has never linked to them.
CODENAMES = {
    "kestrel": "flask/docs/blueprints.rst",
    "ptarmigan": "flask/docs/config.rst",
    "wombat": "black/docs/the_basics.md",
    "quokka": "black/docs/current_style.md",
    "narwhal": "flask/docs/views.rst",
    "axolotl": "flask/docs/appcontext.rst",
}
PHRASINGS = [
    "what is {}",
    "{} overview",
    "how do I use {}",
    "explain {} to a new colleague",
    "where is {} described",
    "{} in a nutshell",
    "the {} page",
]
QUICK = TuneConfig(epochs=3, batch_size=8, learning_rate=1e-4, max_passage_tokens=128)


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """The real project's docs indexed once; each test works on a copy."""
    root = tmp_path_factory.mktemp("tuning")
    folder = root / "docs"
    shutil.copytree(REAL, folder, ignore=shutil.ignore_patterns("python-docs"))
    index = IndexService(load_settings(data_dir=root / "data", watch=[folder]), embedder=embedder)
    try:
        report = index.ingest([folder])
        assert report.added >= 10 and not report.failed, report
    finally:
        index.close()
    return root


@pytest.fixture
def workspace(indexed: Path, tmp_path: Path, embedder: Any) -> Iterator[tuple[IndexService, Path]]:
    """A copy of the indexed data folder over the module's docs, which a test must not change
    (the index holds their paths)."""
    shutil.copytree(indexed / "data", tmp_path / "data")
    folder = indexed / "docs"
    index = IndexService(
        load_settings(data_dir=tmp_path / "data", watch=[folder]), embedder=embedder
    )
    yield index, folder
    index.close()


def codename_pairs(path: Path) -> Path:
    """The team's names for parts of its docs used in questions: 6 names x 7 phrasings."""
    lines = [
        {"query": phrasing.format(name), "positives": [target]}
        for name, target in CODENAMES.items()
        for phrasing in PHRASINGS
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    return path
