"""Models for the training tests: the real base (the tiny random Llama is in tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def prepared_base() -> Path:
    """The packaged GGUF as a transformers model folder (what a job trains on), converted once
    per run into the cache every job and xdist worker shares (tests/conftest.py)."""
    from llm_engineering.adapters.base_model import prepare_base

    source, _, _ = prepare_base("smollm2-135m-instruct", Path(os.environ["LLM_ENG_BASE_CACHE_DIR"]))
    return Path(source)
