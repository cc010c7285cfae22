"""Records in the data folder that cannot be read (a ``card.json`` or ``job.json`` cut short,
edited by hand, written by a newer version): listed as damaged beside what can be read,
never in its way. Each is logged with its path when it is met.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

__all__ = ["UNREADABLE", "Damaged", "damaged"]

log = logging.getLogger(__name__)

UNREADABLE = (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError)
"""What reading a record can raise: the file (OSError), its bytes or JSON (ValueError, which
pydantic's ValidationError is too), a missing key or a value of the wrong shape, or JSON
nested deeper than the stack."""


@dataclass(frozen=True)
class Damaged:
    """A record that cannot be read: what it belongs to, its file and why."""

    entry: str
    """``NAME@VERSION`` of an adapter, ``job ID`` of a job."""
    path: str
    reason: str

    def describe(self) -> str:
        return f"{self.entry}: {self.path} cannot be read ({self.reason})"


def damaged(entry: str, path: Path, exc: BaseException) -> Damaged:
    """The :class:`Damaged` record for ``path``, which raised ``exc`` when read; logged."""
    found = Damaged(entry, str(path), _reason(exc))
    log.warning("damaged record skipped: %s", found.describe())
    return found


def _reason(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, json.JSONDecodeError):
        at = "" if exc.msg.endswith(" at") else " at"  # "Unterminated string starting at"
        return f"not valid JSON: {exc.msg}{at} line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
    if isinstance(exc, ValidationError):
        missing = [_field(e["loc"]) for e in exc.errors() if e["type"] == "missing"]
        wrong = [f"{_field(e['loc'])}: {e['msg']}" for e in exc.errors() if e["type"] != "missing"]
        parts = wrong[:5] + ([f"missing {', '.join(missing)}"] if missing else [])
        return "; ".join(parts) or str(exc)
    if isinstance(exc, KeyError):
        return f"missing {exc.args[0]!r}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


def _field(location: tuple[int | str, ...]) -> str:
    return ".".join(map(str, location)) or "the whole record"
