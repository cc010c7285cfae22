"""``make install``'s llama.cpp build: this CPU's vector extensions, never AMX."""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parent.parent / "scripts" / "install_llama_cpp.py"
_spec = importlib.util.spec_from_file_location("install_llama_cpp", SCRIPT)
assert _spec is not None and _spec.loader is not None
install = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(install)

SAPPHIRE_RAPIDS = set(
    [
        "sse4_2",
        "avx",
        "avx2",
        "fma",
        "f16c",
        "bmi2",
        "avx_vnni",
        "avx512f",
        "avx512cd",
        "avx512vl",
        "avx512dq",
        "avx512bw",
        "avx512vbmi",
        "avx512_vnni",
        "avx512_bf16",
        "amx_tile",
        "amx_int8",
        "amx_bf16",
    ]
)


def options(args: list[str]) -> dict[str, str]:
    return dict(arg.removeprefix("-D").split("=", 1) for arg in args)


def test_every_vector_extension_the_cpu_lists_is_built_and_amx_never_is() -> None:
    built = options(install.cmake_args(SAPPHIRE_RAPIDS))
    assert built["GGML_NATIVE"] == "OFF"
    assert all(built[o] == "ON" for o in ("GGML_AVX2", "GGML_AVX512", "GGML_AVX512_VNNI"))
    assert built["GGML_AMX_TILE"] == built["GGML_AMX_INT8"] == built["GGML_AMX_BF16"] == "OFF"


def test_an_extension_the_cpu_lacks_is_off_and_avx512_needs_all_five_parts() -> None:
    haswell = {"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f"}  # avx512f alone
    built = options(install.cmake_args(haswell))
    assert built["GGML_AVX2"] == "ON" and built["GGML_FMA"] == "ON"
    assert built["GGML_AVX512"] == "OFF" and built["GGML_AVX_VNNI"] == "OFF"


@pytest.mark.skipif(
    bool(os.environ.get("CMAKE_ARGS"))
    or not (sys.platform.startswith("linux") and platform.machine() == "x86_64"),
    reason="llama-cpp-python was built with the user's CMAKE_ARGS, or off x86-64 Linux",
)
def test_the_installed_llama_cpp_matches_this_cpu_without_amx() -> None:
    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode()
    assert "AMX" not in info, info  # AMX faults in VMs that report it without enabling it
    flags = install.cpu_flags()
    if "avx2" in flags:
        assert "AVX2 = 1" in info, info
