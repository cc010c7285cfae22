"""Install llama-cpp-python, built for this CPU without AMX, from a wheel kept across checkouts.

Usage: ``python scripts/install_llama_cpp.py PYTHON SPEC`` (``make install`` runs it with the
virtual environment's python and ``LLAMA_CPP_SPEC``).

llama-cpp-python has no CPU wheel on PyPI, so pip builds it from source, and llama.cpp's
default build (``GGML_NATIVE``) compiles for every instruction the build machine reports.
Where a CPU reports AMX but its virtual machine has not enabled AMX's tile state (a
Firecracker VM on a Sapphire Rapids host does this), the AMX matrix code faults with a
general protection fault on its first ``ldtilecfg``, and every answer kills the process. So
on x86-64 Linux this builds with ``GGML_NATIVE=OFF`` and turns on the vector extensions
``/proc/cpuinfo`` lists (AVX2, AVX-512, VNNI...), never AMX: the speed of a native build for
the matrix sizes a local model uses, on any machine.

pip keys its own wheel cache by the source archive only, not by build flags, so a wheel it
built natively would be reused whatever the flags; the wheel is therefore built with
``--no-cache-dir`` and kept under ``~/.cache/llm-engineering/wheels/<flags>/``, where the next
checkout on this machine installs it in seconds.

``CMAKE_ARGS`` set by the user (for CUDA: ``-DGGML_CUDA=on``) is used as given, and off
x86-64 Linux (macOS, ARM) the spec is installed as pip would.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

# /proc/cpuinfo flag(s) -> llama.cpp's CMake option
FEATURES: list[tuple[tuple[str, ...], str]] = [
    (("sse4_2",), "GGML_SSE42"),
    (("avx",), "GGML_AVX"),
    (("avx2",), "GGML_AVX2"),
    (("fma",), "GGML_FMA"),
    (("f16c",), "GGML_F16C"),
    (("bmi2",), "GGML_BMI2"),
    (("avx_vnni",), "GGML_AVX_VNNI"),
    (("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"), "GGML_AVX512"),
    (("avx512vbmi",), "GGML_AVX512_VBMI"),
    (("avx512_vnni",), "GGML_AVX512_VNNI"),
    (("avx512_bf16",), "GGML_AVX512_BF16"),
]
NO_AMX = ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]


def cpu_flags() -> set[str]:
    """The flags of the first processor in /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cmake_args(flags: set[str]) -> list[str]:
    """A portable build with exactly the extensions in ``flags``, and no AMX."""
    args = ["-DGGML_NATIVE=OFF"]
    for needed, option in FEATURES:
        args.append(f"-D{option}={'ON' if all(f in flags for f in needed) else 'OFF'}")
    return args + NO_AMX


def pip(python: str, *args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([python, "-m", "pip", *args], check=True, env=env)


def main(python: str, spec: str) -> None:
    if os.environ.get("CMAKE_ARGS") or not (
        sys.platform.startswith("linux") and platform.machine() == "x86_64"
    ):
        pip(python, "install", "--quiet", spec)
        return
    args = cmake_args(cpu_flags())
    key = hashlib.sha256(" ".join([spec, *args]).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = cache / "llm-engineering" / "wheels" / key
    wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not wheels:
        print(f"building {spec} for this CPU without AMX (a few minutes): {' '.join(args)}")
        folder.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent) as scratch:
            env = {**os.environ, "CMAKE_ARGS": " ".join(args)}
            pip(python, "wheel", "--quiet", "--no-deps", "--no-cache-dir", spec, "-w", scratch,
                env=env)  # fmt: skip
            built = sorted(Path(scratch).glob("llama_cpp_python-*.whl"))
            if not built:
                raise SystemExit(f"pip built no llama_cpp_python wheel for {spec}")
            staged = Path(scratch) / "done"
            staged.mkdir()
            built[0].rename(staged / built[0].name)
            with contextlib.suppress(OSError):  # whole or not at all: another build may have won
                staged.rename(folder)
        wheels = sorted(folder.glob("llama_cpp_python-*.whl"))
    pip(python, "install", "--quiet", "--force-reinstall", "--no-deps", str(wheels[0]))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
