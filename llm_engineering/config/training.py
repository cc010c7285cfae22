"""Training settings: what a fine-tuning job may read, how it shares the machine, and the
memory its adapters may take when they answer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from llm_engineering.config.values import absolute_folders, split_list

__all__ = ["TrainingSettings"]


class TrainingSettings(BaseModel):
    """The training settings (a part of :class:`~llm_engineering.config.Settings`)."""

    train_base_model: str = Field(
        default="",
        description="QLoRA base model: a GGUF (name or path) or an HF model id/path; empty = llm_model.",
    )
    train_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders training datasets may be read from; empty = the watched folders and the data dir.",
    )
    train_dataset_max_mb: float = Field(
        default=64.0,
        gt=0,
        description="Largest training dataset file (dataset_path, eval_path), checked before it "
        "is read; a larger one is refused.",
    )
    train_line_max_kb: float = Field(
        default=1024.0,
        ge=64,
        description="Longest line of a training dataset; a longer one is reported as a bad line "
        "and skipped without being held in memory.",
    )
    train_max_examples: int = Field(
        default=100_000,
        ge=8,
        description="Most examples one training job takes (a file's lines or inline records); "
        "validation stops past it.",
    )
    jobs_max_concurrent: int = Field(
        default=1, ge=1, le=16, description="Training jobs that run at once; the rest wait queued."
    )
    base_cache_dir: Path | None = Field(
        default=None,
        description="Where GGUF bases converted for training are kept, one per GGUF sha256 "
        "(default: DATA_DIR/base_models); share one folder between data folders to convert once.",
    )
    train_threads: int = Field(
        default=0,
        ge=0,
        description="torch threads in a training worker (0 = every core; its threads sleep, not spin, while they wait).",
    )
    train_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How far below the server's CPU priority a training worker runs: searches and answers "
        "are served first, training takes every cycle they leave (0 = the same priority).",
    )
    job_max_resumes: int = Field(
        default=3,
        ge=0,
        description="Times a stopped job (server restart, crash) resumes by itself before it is marked interrupted.",
    )
    adapter_memory_mb: float = Field(
        default=1024.0,
        gt=0,
        description="Memory for adapters loaded over the one base model in process; the least "
        "recently used are unloaded past it.",
    )
    adapter_cache_size: int | None = Field(
        default=None,
        ge=1,
        description="Deprecated and ignored: adapters no longer load whole models (adapter_memory_mb).",
    )

    @field_validator("train_roots", mode="before")
    @classmethod
    def _train_roots_from_string(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("train_roots", mode="after")
    @classmethod
    def _absolute_train_roots(cls, value: list[Path]) -> list[Path]:
        return absolute_folders(value)

    @field_validator("base_cache_dir", mode="after")
    @classmethod
    def _absolute_base_cache(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value else None

    @field_validator("adapter_cache_size", mode="after")
    @classmethod
    def _deprecated_cache_size(cls, value: int | None) -> int | None:
        if value is not None:
            import logging

            logging.getLogger(__name__).warning(
                "adapter_cache_size is deprecated and ignored: adapters load over one base model "
                "now; adapter_memory_mb bounds their memory"
            )
        return value
