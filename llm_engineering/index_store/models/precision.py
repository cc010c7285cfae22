"""The precision the in-process embedder computes in, and which one an index was built with.

All-MiniLM-L6-v2's matrix work in bfloat16 (torch autocast on the CPU: the linear layers and
attention in bfloat16, layer norms and softmax in float32) ran 2.76x faster than float32 on
this machine's 2 cores (the whole ingestion 2.22x), whose CPU has AVX512_BF16 and AMX, with
vectors of cosine 0.99998 to the float32 ones and the same SciFact nDCG@10
(``benchmarks/embedding_precision.py``). Where the CPU lacks native
bfloat16 instructions, torch emulates them and is slower than float32: ``auto`` then stays
float32.

An index is searched with query vectors of the precision its chunks were embedded in: the
collection records it (an index from before this was recorded is float32), ``auto`` follows
it, and an explicit ``embedding_precision`` that differs is refused, as another model is.

AMX: some virtual machines report AMX without enabling its tile state, and AMX code faults
there (``scripts/install_llama_cpp.py``). Before the first bfloat16 matrix product, the
kernel is asked for the tile state (``arch_prctl(ARCH_REQ_XCOMP_PERM)``); where it refuses,
oneDNN is capped below AMX (``ONEDNN_MAX_CPU_ISA``).
"""

from __future__ import annotations

import ctypes
import os
from functools import cache
from typing import Literal

from llm_engineering.errors import EmbeddingModelMismatch

__all__ = ["Precision", "amx_usable", "cpu_flags", "guard_amx", "native_bf16", "resolve"]

Precision = Literal["float32", "bfloat16"]
_ARCH_REQ_XCOMP_PERM = 0x1023
_XFEATURE_XTILEDATA = 18
_SYS_ARCH_PRCTL = 158  # x86-64


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where it cannot be read)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def native_bf16() -> bool:
    """Whether the CPU multiplies bfloat16 natively (AVX512_BF16 or AMX-BF16)."""
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


@cache
def amx_usable() -> bool:
    """Whether AMX tiles may be used: the CPU reports them and the kernel grants the state."""
    if "amx_tile" not in cpu_flags():
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.syscall(_SYS_ARCH_PRCTL, _ARCH_REQ_XCOMP_PERM, _XFEATURE_XTILEDATA)) == 0
    except (OSError, AttributeError):
        return False


def guard_amx() -> None:
    """Keep oneDNN off AMX where the kernel refused its tile state (call before any bfloat16
    matrix product in this process)."""
    if "amx_tile" in cpu_flags() and not amx_usable():
        os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")


def resolve(setting: str, recorded: str | None, where: str) -> Precision:
    """The precision to embed in.

    Args:
        setting: ``embedding_precision``: ``auto``, ``float32`` or ``bfloat16``.
        recorded: What the index was built with (None: a new index).
        where: The index, for the error.

    Raises:
        EmbeddingModelMismatch: ``setting`` names another precision than the index's.
    """
    if recorded is not None:
        if setting not in ("auto", recorded):
            raise EmbeddingModelMismatch(
                f"the index at {where} was embedded in {recorded}, but embedding_precision is "
                f"{setting}: queries must be embedded as its chunks were. Set "
                f"embedding_precision to auto or {recorded} (LLM_ENG_EMBEDDING_PRECISION), or "
                "rebuild the index: `llm-eng ingest PATH --rebuild`."
            )
        return "bfloat16" if recorded == "bfloat16" else "float32"
    if setting == "auto":
        return "bfloat16" if native_bf16() else "float32"
    return "bfloat16" if setting == "bfloat16" else "float32"
