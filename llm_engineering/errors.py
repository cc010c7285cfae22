"""Errors raised by llm-engineering.

The hierarchy::

    LlmEngError                 anything this package raises on purpose
    ├── UserError               bad input; the message tells the caller what to change
    │   ├── ConfigError         a setting is invalid or points at something that is not there
    │   ├── PathError           a path does not exist, is not allowed, or cannot be read
    │   ├── EmbeddingModelMismatch
    │   │                       the index was built with another embedding model
    │   ├── StateFileDamaged    ``state.sqlite`` cannot be read (``ingest --rebuild`` remakes it)
    │   └── DatasetError        training examples with bad lines (every one listed)
    ├── DocumentError           a file could not be read as a document (recorded, never fatal)
    ├── ModelLoadError          a model could not be loaded (the message says which and why)
    │   └── ServerError         a model server (embeddings, reranking) failed a request, retries
    │       │                   spent; the message carries the server's own error
    │       └── EmbeddingServerError
    │                           some texts of a bulk embedding could not be embedded
    ├── IndexBusyError          another process holds the index for writing
    ├── DiskFullError           no space left on the data folder's disk (indexing waits for room)
    ├── ParserStartError        no parse worker process could be started
    ├── TrainingFailed          training cannot go on (NaN or exploding loss, unusable data)
    └── ExportError             an adapter cannot be written as a GGUF LoRA for llama.cpp

The MCP server turns a ``UserError`` (and ``ModelLoadError``) into a tool error result
that the agent reads; anything else is a bug and is logged with its traceback.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DatasetError",
    "DiskFullError",
    "DocumentError",
    "EmbeddingModelMismatch",
    "EmbeddingServerError",
    "ExportError",
    "IndexBusyError",
    "LlmEngError",
    "ModelLoadError",
    "ParserStartError",
    "PathError",
    "ServerError",
    "StateFileDamaged",
    "TrainingFailed",
    "UserError",
]


class LlmEngError(Exception):
    """Base class for every error this package raises on purpose."""


class UserError(LlmEngError):
    """Bad input. The message says what was wrong and how to fix it."""


class ConfigError(UserError):
    """A setting is invalid or names something that does not exist."""


class PathError(UserError):
    """A path does not exist, lies outside the allowed folders, or cannot be read."""


class EmbeddingModelMismatch(UserError):
    """The index was built with a different embedding model than the one configured."""


class StateFileDamaged(UserError):
    """``state.sqlite`` is damaged (cut short, a broken header): SQLite cannot read it."""


class DatasetError(UserError):
    """The dataset has ``bad`` bad lines; ``problems`` lists them as (line, reason), or the
    first of them when a validation kept only so many."""

    def __init__(
        self, source: str, problems: list[tuple[int, str]], total: int, bad: int | None = None
    ):
        self.problems = problems
        bad = len(problems) if bad is None else bad
        shown = "; ".join(f"line {line}: {reason}" for line, reason in problems[:20])
        more = f"; and {bad - 20:,} more" if bad > 20 else ""
        super().__init__(
            f"{source}: {bad:,} of {total:,} lines are not valid training examples: {shown}{more}"
        )


class DocumentError(LlmEngError):
    """A file could not be read as a document. Ingestion records it and carries on."""


class ModelLoadError(LlmEngError):
    """A model could not be loaded."""


class ServerError(ModelLoadError):
    """A model server failed a request after its retries.

    ``status`` is the HTTP status when the server answered (None when it could not be
    reached or timed out); ``retryable`` says whether trying again later may succeed.
    """

    def __init__(self, message: str, status: int | None = None, retryable: bool = False):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


class EmbeddingServerError(ServerError):
    """Some texts of a bulk embedding failed; ``vectors`` holds those that did not (None elsewhere)."""

    def __init__(self, message: str, vectors: list[list[float] | None]):
        super().__init__(message, retryable=True)
        self.vectors = vectors


class IndexBusyError(LlmEngError):
    """Another process holds the index for writing."""


class DiskFullError(LlmEngError):
    """No space left on the data folder's disk: nothing more can be written there until some
    is freed (a server's indexing waits for that, then resumes by itself). ``paths``: the
    files whose index rows or vectors were being written when it happened."""

    def __init__(self, message: str, paths: list[str] | None = None):
        super().__init__(message)
        self.paths = list(paths or [])


class ParserStartError(LlmEngError):
    """No parse worker process could be started (the message says how it was run)."""


class TrainingFailed(LlmEngError):
    """Training cannot go on (the loss became NaN or exploded, or the data cannot be used)."""


class ExportError(LlmEngError):
    """The adapter cannot be written as a GGUF LoRA (unsupported model or layer)."""
