"""``llm-eng adapters --serve KIND``: one command (or config file) to copy for the adapters."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from llm_engineering.generation.llamacpp import resolve_gguf
from tests.adapters.registered import add_adapter
from tests.test_cli import run


def registry(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    add_adapter(data, "zorblax")
    add_adapter(data, "zorblax", rank=32)
    add_adapter(data, "pelmora", rank=8)
    add_adapter(data, "other", base_model="meta-llama/Llama-3.1-8B", base_sha256="", gguf=False)
    return data


def test_vllm_and_llama_server_get_their_flags_for_every_adapter_of_the_served_base(
    tmp_path: Path,
) -> None:
    data = registry(tmp_path)
    folder = "/srv/llm-eng/adapters"
    result = run(
        "adapters", "--serve", "vllm", "--data-dir", str(data),
        LLM_ENG_LLM_SERVER_ADAPTERS_PATH=folder,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [line] = result.stdout.splitlines()
    words = shlex.split(line)
    assert words[:4] == [
        "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True", "vllm", "serve", "/bases/smollm2-135m-instruct",
    ]  # fmt: skip
    flags = " ".join(words)
    assert "--enable-lora" in words and "--served-model-name smollm2-135m-instruct" in flags
    assert "--max-lora-rank 32" in flags and "--port 8000" in flags
    modules = words[words.index("--lora-modules") + 1 :]
    assert sorted(modules) == [
        f"pelmora@1={folder}/pelmora/1/peft", f"zorblax@1={folder}/zorblax/1/peft",
        f"zorblax@2={folder}/zorblax/2/peft",
    ]  # fmt: skip
    assert "left out: other@1 was trained on meta-llama/Llama-3.1-8B" in result.stderr

    result = run(
        "adapters", "--serve", "llama-server", "--data-dir", str(data),
        LLM_ENG_LLM_URL="http://127.0.0.1:9123",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    words = shlex.split(result.stdout)
    assert words[:3] == ["llama-server", "-m", str(resolve_gguf("smollm2-135m-instruct"))]
    flags = " ".join(words)
    assert "--alias smollm2-135m-instruct" in flags and "--port 9123" in flags
    assert "--lora-init-without-apply" in words  # the base answers unless a request names one
    loras = [words[i + 1] for i, word in enumerate(words) if word == "--lora"]
    assert sorted(loras) == [
        str(data / "adapters" / name / version / "adapter.gguf")
        for name, version in [("pelmora", "1"), ("zorblax", "1"), ("zorblax", "2")]
    ]
    assert "left out: other@1 has no GGUF export" in result.stderr
    assert "llm_url" not in result.stderr  # it already points there


def test_llama_cpp_python_gets_the_config_file_alone_on_stdout(tmp_path: Path) -> None:
    data = registry(tmp_path)
    result = run(
        "adapters", "--serve", "llama-cpp-python", "--data-dir", str(data),
        LLM_ENG_LLM_URL="http://127.0.0.1:9124",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)  # nothing else on stdout
    assert (config["host"], config["port"]) == ("127.0.0.1", 9124)
    models = {model["model_alias"]: model for model in config["models"]}
    assert list(models) == [
        "smollm2-135m-instruct", "pelmora", "zorblax", "pelmora@1", "zorblax@1", "zorblax@2",
    ]  # fmt: skip
    base = str(resolve_gguf("smollm2-135m-instruct"))
    assert {model["model"] for model in config["models"]} == {base}
    assert "lora_path" not in models["smollm2-135m-instruct"]
    assert models["zorblax"]["lora_path"] == models["zorblax@2"]["lora_path"]  # the latest
    assert models["zorblax@1"]["lora_path"] == str(data / "adapters/zorblax/1/adapter.gguf")
    assert "python -m llama_cpp.server --config_file" in result.stderr


def test_an_unknown_kind_is_refused_with_the_kinds_there_are(tmp_path: Path) -> None:
    result = run("adapters", "--serve", "ollama", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "--serve takes vllm, llama-server or llama-cpp-python, not 'ollama'" in result.stderr
    assert result.stdout == ""
