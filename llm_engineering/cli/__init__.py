"""``llm-eng``: serve, dashboard, ingest, search, status, ask, train, jobs, adapters, eval.

One module per command family (``serve``, ``index``, ``documents``, ``answer``, ``train``,
``evaluate``), the shared options in ``options``, the app and its help in ``app``, and
everything shown to a person in ``output`` (a training job's progress line and events in
``job_progress``). Heavy libraries are imported inside the commands, so ``llm-eng --help``
is instant.
"""

from __future__ import annotations

import os
import sys

from llm_engineering.cli import answer, dashboard, documents, evaluate, index, serve, train
from llm_engineering.cli.app import app

__all__ = ["app", "main"]

# imported for their registrations
_COMMANDS = (answer, dashboard, documents, evaluate, index, serve, train)


def main() -> None:
    # OpenMP threads (torch's, for the embedding model and the reranker) sleep while they
    # wait instead of spinning, as a training worker's do: this process shares the cores
    # with llama.cpp, a worker and the user's own programs. Set before torch loads; a
    # user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
