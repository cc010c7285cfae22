"""Job rows made again from the job folders, for a ``state.sqlite`` that lost them.

A job's folder is its durable record: its spec says what it trains, its result how its
worker ended, and the adapter registry's cards name the job each adapter came from. When
``state.sqlite`` had to be remade (it was damaged), the jobs table starts empty; these rows
bring every job back with its name, status, dataset and adapter. A job that had not ended
comes back ``interrupted``, to be resumed by hand: what it was doing is not known any more.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from llm_engineering.adapters.job_folder import JobFolder
from llm_engineering.adapters.registry import CARD

__all__ = ["rows_from_folders"]

log = logging.getLogger(__name__)

LOST = (
    "its record was lost with a damaged state.sqlite and made again from its folder; "
    "resume it to train it"
)


def _adapters_by_job(adapters: Path) -> dict[str, str]:
    """Job id -> ``NAME@VERSION`` of the adapter it registered, from the cards that read."""
    found: dict[str, str] = {}
    for card in adapters.glob(f"*/*/{CARD}"):
        try:
            values = json.loads(card.read_text(encoding="utf-8"))
            found[str(values["job_id"])] = f"{values['name']}@{int(values['version'])}"
        except (OSError, ValueError, KeyError, TypeError):
            continue  # the registry lists a card that does not read as damaged
    return found


def _created(folder: JobFolder) -> float:
    try:  # ids start with their creation time, YYYYmmdd-HHMMSS
        return time.mktime(time.strptime(folder.id[:15], "%Y%m%d-%H%M%S"))
    except ValueError:
        return folder.path.stat().st_mtime


def _retrieval_row(folder: JobFolder) -> dict[str, Any]:
    """A retrieval job's row from its request (and, once it ended, its decision)."""
    request = json.loads((folder.path / folder.TUNING).read_text(encoding="utf-8"))
    decided = folder.tuning_result() or {}
    return {
        "id": folder.id,
        "name": str(request.get("name") or "retrieval"),
        "kind": "retrieval",
        "adapter": f"retrieval-v{decided['version']}"
        if decided.get("status") == "switched"
        else None,
        "base_model": str(decided.get("live_before") or "?"),
        "examples": int(decided.get("pairs") or 0) + int(decided.get("heldout") or 0),
        "hyperparameters": json.dumps(request.get("config") or {}),
        "created": _created(folder),
    }


def rows_from_folders(jobs: Path, adapters: Path) -> list[dict[str, Any]]:
    """One jobs-table row (column -> value) per job folder under ``jobs`` whose spec reads;
    a folder without one is skipped (logged)."""
    adapter_of = _adapters_by_job(adapters)
    rows = []
    paths = sorted(p for p in jobs.iterdir() if p.is_dir()) if jobs.is_dir() else []
    for folder in map(JobFolder, paths):
        try:
            row = _retrieval_row(folder) if (folder.path / folder.TUNING).is_file() else None
            if row is None:
                spec = folder.spec_values()
                dataset = spec.get("dataset") or {}
                row = {
                    "id": folder.id,
                    "name": str(spec["name"]),
                    "base_model": str(spec["base_model"]),
                    "dataset_sha256": dataset.get("sha256"),
                    "examples": int(dataset.get("examples") or 0),
                    "hyperparameters": json.dumps(spec.get("hyperparameters") or {}),
                    "created": _created(folder),
                }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "job folder %s: its %s cannot be read (%s); not restored",
                folder.path,
                JobFolder.SPEC,
                exc,
            )
            continue
        result = folder.result()
        if result is not None:
            row["status"] = result.status
            row["error"] = result.error or result.reason or result.verdict
            row["finished"] = folder.result_file.stat().st_mtime
        elif folder.cancelled:
            row["status"] = "cancelled"
        else:
            row["status"], row["error"] = "interrupted", LOST
        row.setdefault("adapter", adapter_of.get(folder.id))
        rows.append(row)
    return rows
