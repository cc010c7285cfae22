"""Logging to stderr, and silence for the libraries that talk too much.

In stdio mode stdout carries JSON-RPC and nothing else, so every log line, progress
bar and banner must go to stderr or nowhere.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["quiet_libraries", "setup_logging"]

_NOISY = (
    "chromadb", "httpx", "httpcore", "urllib3", "sentence_transformers", "transformers",
    "huggingface_hub", "bitsandbytes", "pypdf", "llama_index", "uvicorn.access", "watchdog",
    "filelock", "fsspec", "torch",
)  # fmt: skip


def quiet_libraries() -> None:
    """Environment switches that must be set before the libraries are imported."""
    defaults = {
        "ANONYMIZED_TELEMETRY": "False",  # chroma
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",
        "BITSANDBYTES_NOWELCOME": "1",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)


def setup_logging(level: str = "INFO") -> None:
    """Send our logs to stderr at ``level`` and quiet third-party loggers to warnings."""
    quiet_libraries()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    )
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("llm_engineering").setLevel(level)
    logging.getLogger("mcp").setLevel(logging.WARNING)
    for name in _NOISY:
        logging.getLogger(name).setLevel(logging.ERROR)
