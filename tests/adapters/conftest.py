"""Models for the training tests: the real base (the tiny random Llama is in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prepared_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged GGUF as a transformers model folder (what a job trains on), converted once."""
    from llm_engineering.adapters.base_model import prepare_base

    source, _, _ = prepare_base("smollm2-135m-instruct", tmp_path_factory.mktemp("base-models"))
    return Path(source)
