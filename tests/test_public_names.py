"""Every name a module exports in __all__ exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import llm_engineering

MODULES = [
    info.name
    for info in pkgutil.walk_packages(llm_engineering.__path__, "llm_engineering.")
    if not info.name.endswith("__main__")
]


@pytest.mark.parametrize("name", MODULES)
def test_all_names_exist(name: str) -> None:
    module = importlib.import_module(name)
    for exported in getattr(module, "__all__", []):
        assert hasattr(module, exported), f"{name}.__all__ names {exported!r}, which does not exist"
