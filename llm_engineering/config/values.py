"""The value checks more than one settings group makes: lists, folders, URLs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["APP_NAME", "absolute_folders", "server_url", "split_list", "utf8_named"]

APP_NAME = "llm-engineering"


def split_list(value: Any) -> Any:
    """Accept a list, a JSON list, or an ``os.pathsep``/comma separated string."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            import json

            return json.loads(text)
        sep = os.pathsep if os.pathsep in text else ","
        return [part.strip() for part in text.split(sep) if part.strip()]
    return value


def utf8_named(path: Path) -> Path:
    """``path``, refused when its name is not valid UTF-8: the index's status and listings
    carry it over JSON, which cannot hold such a name."""
    from llm_engineering.paths import path_text

    if path_text(path) != str(path):
        raise ValueError(
            f"{path_text(path)} has a name that is not valid UTF-8 (its undecodable bytes are "
            "shown as \\xNN): rename the folder"
        )
    return path


def absolute_folders(value: list[Path]) -> list[Path]:
    """Each folder expanded and resolved, once, in the order given."""
    seen: list[Path] = []
    for path in value:
        resolved = utf8_named(path.expanduser().resolve())
        if resolved not in seen:
            seen.append(resolved)
    return seen


def server_url(name: str, value: str) -> str:
    """An http(s) URL without its trailing slash; empty stays empty (no server)."""
    value = value.strip()
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"{name} must start with http:// or https://, got {value!r}")
    return value.rstrip("/")
