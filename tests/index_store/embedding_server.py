"""A real embedding server for the tests and the benchmark: llama.cpp's, over a GGUF of the packaged model.

The GGUF is made from the packaged all-MiniLM-L6-v2's safetensors by llama.cpp's own
``convert_hf_to_gguf.py``, which ``make install`` takes from llama-cpp-python's source
distribution into ``.tools/llama.cpp-convert`` (it is not part of the installed package).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from llm_engineering.config import DEFAULT_EMBEDDING_MODEL
from llm_engineering.packaged import resolve_embedding_model

ROOT = Path(__file__).resolve().parents[2]
CONVERTER = ROOT / ".tools" / "llama.cpp-convert"


def converter_missing() -> str | None:
    """Why the GGUF cannot be made here, or None when it can."""
    for needed in ("convert_hf_to_gguf.py", "gguf-py"):
        if not (CONVERTER / needed).exists():
            return (
                f"llama.cpp's converter is not installed ({CONVERTER / needed} is missing): "
                "`make install` fetches it from the llama-cpp-python source distribution"
            )
    return None


def convert_packaged_model(folder: Path, outtype: str = "f16") -> Path:
    """The packaged embedding model as a GGUF (``f16`` or ``f32``) in ``folder`` (made once)."""
    target = folder / f"all-minilm-l6-v2.{outtype}.gguf"
    if target.exists():
        return target
    partial = folder / f"all-minilm-l6-v2.{outtype}.gguf.part"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(CONVERTER / "gguf-py"), str(CONVERTER)]),
    }
    command = [
        sys.executable, str(CONVERTER / "convert_hf_to_gguf.py"),
        resolve_embedding_model(DEFAULT_EMBEDDING_MODEL),
        "--outfile", str(partial), "--outtype", outtype,
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=CONVERTER,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if result.returncode != 0:
        raise AssertionError(f"convert_hf_to_gguf.py failed: {result.stderr[-2000:]}")
    partial.rename(target)
    return target


def server_command(gguf: Path, port: int, threads: int | None = None) -> list[str]:
    """``python -m llama_cpp.server`` serving ``gguf``'s embeddings on loopback."""
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--embedding", "true",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512",
    ]  # fmt: skip
    if threads:
        command += ["--n_threads", str(threads), "--n_threads_batch", str(threads)]
    return command
