"""``llm-eng``: serve, dashboard, ingest, search, status, ask, train, jobs, adapters, eval.

One module per command family (``serve``, ``index``, ``documents``, ``answer``, ``train``,
``evaluate``),
the shared options in ``options`` and everything shown to a person in ``output``. Heavy
libraries are imported inside the commands, so ``llm-eng --help`` is instant.
"""

from __future__ import annotations

import sys

from llm_engineering.cli import answer, dashboard, documents, evaluate, index, serve, train
from llm_engineering.cli.app import app

__all__ = ["app", "main"]

# imported for their registrations
_COMMANDS = (answer, dashboard, documents, evaluate, index, serve, train)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
