"""PEFT -> GGUF LoRA: llama.cpp loads the export and predicts what transformers + peft predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llm_engineering.adapters.export import export_gguf_lora, gguf_tensor_name
from llm_engineering.errors import ExportError
from llm_engineering.generation.llamacpp import resolve_gguf

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, there was a",
    "The three primary colors are",
    "Water boils at a temperature of",
    "<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\n",
]


def test_peft_tensor_names_map_to_llama_cpp_names() -> None:
    key = "base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight"
    assert gguf_tensor_name(key) == ("blk.7.attn_q.weight.lora_a", "a", "q_proj")
    key = "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"
    assert gguf_tensor_name(key) == ("blk.0.ffn_down.weight.lora_b", "b", "down_proj")
    with pytest.raises(ExportError, match="only the attention and MLP projections"):
        gguf_tensor_name("base_model.model.lm_head.lora_A.weight")


@pytest.fixture(scope="module")
def random_adapter(prepared_base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA on every linear layer with random B (a fresh one is all zeros: no effect to compare)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(prepared_base), dtype=torch.float32)
    torch.manual_seed(0)
    peft_model = get_peft_model(
        model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM")
    )
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.08)
    folder = tmp_path_factory.mktemp("adapter")
    peft_model.save_pretrained(str(folder / "peft"))
    return folder


def test_the_export_carries_the_metadata_llama_cpp_requires(
    random_adapter: Path, prepared_base: Path
) -> None:
    from gguf import GGUFReader

    config = json.loads((prepared_base / "config.json").read_text())
    summary = export_gguf_lora(random_adapter / "peft", random_adapter / "a.gguf", config)
    layers = config["num_hidden_layers"]
    assert summary == {"pairs": 7 * layers, "rank": 8, "alpha": 16.0}
    reader = GGUFReader(str(random_adapter / "a.gguf"))

    def text(key: str) -> str:
        field = reader.fields[key]
        return bytes(field.parts[field.data[0]]).decode()

    assert text("general.architecture") == "llama"
    assert text("general.type") == "adapter" and text("adapter.type") == "lora"
    alpha = reader.fields["adapter.lora.alpha"]
    assert float(alpha.parts[alpha.data[0]][0]) == 16.0
    tensors = {t.name: t for t in reader.tensors}
    assert len(tensors) == 2 * 7 * layers
    hidden = config["hidden_size"]
    assert list(tensors["blk.0.attn_q.weight.lora_a"].shape) == [hidden, 8]
    assert list(tensors["blk.0.attn_q.weight.lora_b"].shape) == [8, hidden]


def test_llama_cpp_with_the_export_predicts_the_next_token_transformers_does(
    random_adapter: Path, prepared_base: Path
) -> None:
    import torch
    from llama_cpp import Llama
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = json.loads((prepared_base / "config.json").read_text())
    gguf_adapter = random_adapter / "b.gguf"
    export_gguf_lora(random_adapter / "peft", gguf_adapter, config)
    tokenizer = AutoTokenizer.from_pretrained(str(prepared_base))
    base = AutoModelForCausalLM.from_pretrained(str(prepared_base), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(random_adapter / "peft")).eval()
    gguf = str(resolve_gguf("smollm2-135m-instruct"))
    with_lora = Llama(gguf, n_ctx=256, logits_all=True, lora_path=str(gguf_adapter), verbose=False)
    plain = Llama(gguf, n_ctx=256, logits_all=True, verbose=False)

    def last_logits(llm: Llama, ids: list[int]) -> np.ndarray:
        llm.reset()
        llm.eval(ids)
        return np.array(llm.scores[llm.n_tokens - 1])

    changed = 0
    for prompt in PROMPTS:
        ids = tokenizer(prompt)["input_ids"]
        assert with_lora.tokenize(prompt.encode(), add_bos=False, special=True) == ids
        with torch.no_grad():
            expected = model(torch.tensor([ids])).logits[0, -1].numpy()
            with model.disable_adapter():
                without = model(torch.tensor([ids])).logits[0, -1].numpy()
        served = last_logits(with_lora, ids)
        base_served = last_logits(plain, ids)
        assert served.argmax() == expected.argmax(), prompt
        # the export tracks the adapted model far more closely than the base does
        agreement = np.corrcoef(served, expected)[0, 1]
        assert agreement > 0.99 and agreement > np.corrcoef(base_served, expected)[0, 1] + 0.01
        changed += int(expected.argmax() != without.argmax())
    assert changed >= 1, "the random adapter should change at least one prediction"


def test_a_non_llama_base_is_refused(random_adapter: Path) -> None:
    with pytest.raises(ExportError, match="this base is 'gpt2'"):
        export_gguf_lora(random_adapter / "peft", random_adapter / "c.gguf", {"model_type": "gpt2"})
