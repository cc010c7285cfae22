"""Models for the training tests: the packaged GGUF's tokenizer on a tiny random Llama, and the real base."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer Llama with the default model's tokenizer: trains in milliseconds."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from llm_engineering.generation.llamacpp import resolve_gguf

    folder = tmp_path_factory.mktemp("tiny-llama")
    gguf = resolve_gguf("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    tokenizer.save_pretrained(str(folder))
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def prepared_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged GGUF as a transformers model folder (what a job trains on), converted once."""
    from llm_engineering.adapters.base_model import prepare_base

    source, _, _ = prepare_base("smollm2-135m-instruct", tmp_path_factory.mktemp("base-models"))
    return Path(source)
