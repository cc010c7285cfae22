"""Index settings: where the data lives, what is indexed, how it is chunked and stored, and the
limits a file must keep to be read."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Self

import platformdirs
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import NoDecode

from llm_engineering.config.values import (
    APP_NAME,
    absolute_folders,
    server_url,
    split_list,
    utf8_named,
)

__all__ = ["IndexSettings"]

_COLLECTION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


class IndexSettings(BaseModel):
    """The index's settings (a part of :class:`~llm_engineering.config.Settings`)."""

    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path(APP_NAME),
        description="Where the index (chroma/, state.sqlite), jobs and adapters live.",
    )
    watch: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders to index: at start, and as they change while a server runs.",
    )
    chunk_size: int = Field(
        default=256, ge=32, le=8192, description="Chunk size in embedding-model tokens."
    )
    chunk_overlap: int = Field(default=32, ge=0, description="Overlap between chunks, in tokens.")
    chroma_url: str = Field(
        default="", description="Chroma server URL (http://host:port); empty = embedded Chroma."
    )
    collection: str = Field(
        default="documents",
        min_length=3,
        max_length=63,
        description="Chroma collection name: 3-63 letters, digits, '.', '_' or '-'.",
    )
    max_file_size_mb: float = Field(default=25.0, gt=0, description="Larger files are reported.")
    max_unpacked_mb: float = Field(
        default=250.0,
        gt=0,
        description="Largest unpacked size of a zip-based document (.docx), read from the "
        "archive's directory before anything is extracted; larger ones are reported.",
    )
    parse_timeout_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds one file may take to be read, parsed and chunked (in a parse worker "
        "process, which is killed and replaced when a file overruns); such a file is reported.",
    )
    parse_workers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Parse worker processes at most: a file that is slow to parse holds one, the "
        "others go on with the rest (the second starts when files wait a second for the first).",
    )
    parse_memory_mb: float = Field(
        default=2048.0,
        ge=256,
        description="Address space a parse worker may use; a file that needs more is reported.",
    )
    max_html_depth: int = Field(
        default=1024,
        ge=8,
        description="Deepest element nesting of an HTML file; deeper files are reported.",
    )
    max_html_elements: int = Field(
        default=200_000,
        ge=100,
        description="Most elements in one HTML file; larger files are reported.",
    )
    max_pdf_pages: int = Field(
        default=2000, ge=1, description="Most pages in one PDF; longer PDFs are reported."
    )
    watch_debounce: float = Field(
        default=0.5,
        ge=0.05,
        le=30,
        description="Seconds a changed file must stay quiet before it is indexed again.",
    )

    # Validator names are unique across the groups: Settings inherits them all, and one
    # named like another group's would hide it.
    @field_validator("watch", mode="before")
    @classmethod
    def _watch_from_string(cls, value: Any) -> Any:
        return split_list(value)

    @field_validator("watch", mode="after")
    @classmethod
    def _absolute_watch(cls, value: list[Path]) -> list[Path]:
        return absolute_folders(value)

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return utf8_named(value.expanduser().absolute())

    @field_validator("collection", mode="after")
    @classmethod
    def _collection_name(cls, value: str) -> str:
        # fullmatch: "^...$" would let a final newline through.
        if not _COLLECTION.fullmatch(value):
            raise ValueError(
                f"collection {value!r} is not valid: use letters, digits, '.', '_' or '-', "
                "starting and ending with a letter or digit"
            )
        return value

    @field_validator("chroma_url", mode="after")
    @classmethod
    def _check_chroma_url(cls, value: str) -> str:
        return server_url("chroma_url", value)

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Self:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_size_mb * 1024 * 1024)

    @property
    def max_unpacked_bytes(self) -> int:
        return int(self.max_unpacked_mb * 1024 * 1024)

    @property
    def parse_memory_bytes(self) -> int:
        return int(self.parse_memory_mb * 1024 * 1024)

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def state_path(self) -> Path:
        return self.data_dir / "state.sqlite"
