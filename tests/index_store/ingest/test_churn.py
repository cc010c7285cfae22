"""Deletions under churn: a deleted file leaves searches while a bulk index still runs."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.ingest.watcher import ChangeQueue
from llm_engineering.index_store.service import IndexService
from tests.index_store.ingest.test_watcher import DEADLINE, ManualClock, keyword_paths, wait_until


class Gate:
    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()


class GatedEmbedder:
    """The real embedder; each embedding call waits at the next gate the test has set."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name, self.dimension, self.tokenizer = inner.name, inner.dimension, inner.tokenizer
        self.gates: list[Gate] = []

    def embed_documents(self, texts: Any) -> Any:
        if self.gates:
            gate = self.gates.pop(0)
            gate.reached.set()
            if not gate.release.wait(DEADLINE):
                raise AssertionError("the test never opened the gate")
        return self._inner.embed_documents(texts)

    def embed_query(self, text: str) -> Any:
        return self._inner.embed_query(text)


def test_a_file_deleted_during_a_bulk_index_leaves_search_before_the_bulk_ends(
    settings_factory, embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    victim = folder / "victim.md"
    victim.write_text("# Victim\n\nThe albatross migration ledger.\n")
    gated = GatedEmbedder(embedder)
    service = IndexService(settings_factory(watch=[folder]), embedder=gated)
    runner = IndexRunner(service, [folder], debounce=0.3)
    clock = ManualClock()  # nothing leaves the queue until the test moves time on
    runner.queue = ChangeQueue(debounce=0.3, clock=clock)

    def tick() -> None:
        clock.advance(1.0)
        runner.queue.wake()

    first, second = Gate(), Gate()
    try:
        runner.start()
        wait_until(runner.reconciled.is_set)
        assert keyword_paths(service, "albatross") == ["victim.md"]

        # A bulk copy large enough for two embedding batches (512 chunks each).
        gated.gates += [first, second]
        for i in range(540):
            (folder / f"bulk-{i:03}.md").write_text(f"# Bulk {i}\n\nInventory line {i}.\n")
        wait_until(lambda: len(runner.queue) == 540)
        tick()
        wait_until(first.reached.is_set)  # the bulk index runs, held at its first batch

        victim.unlink()
        wait_until(lambda: victim in runner.queue.paths())  # the watcher has seen the delete
        tick()
        first.release.set()
        wait_until(second.reached.is_set)  # still mid-bulk: its last batch is held
        wait_until(lambda: service.ledger.file(str(victim)) is None)
        assert keyword_paths(service, "albatross") == []
        assert service.status().documents < 540  # the bulk's last batch is not in yet

        second.release.set()
        wait_until(lambda: service.status().documents == 540 and service.status().pending == 0)
        assert service.vectors.all_ids() == service.ledger.all_chunk_ids()
    finally:
        first.release.set()
        second.release.set()
        clock.advance(1000.0)
        runner.stop()
        service.close()


def test_search_drops_a_hit_whose_file_is_gone_before_the_index_forgets_it(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "keep.md").write_text("# Keep\n\nHeron sightings by the weir.\n")
    (folder / "gone.md").write_text("# Gone\n\nHeron nesting by the weir.\n")
    service = service_factory()
    service.ingest([folder])
    assert sorted(keyword_paths(service, "heron weir")) == ["gone.md", "keep.md"]
    (folder / "gone.md").unlink()  # no sync: the index still has it
    assert service.ledger.file(str(folder / "gone.md")) is not None
    assert keyword_paths(service, "heron weir") == ["keep.md"]
    assert [Path(h.path).name for h in service.search("heron weir", top_k=1)[0]] == ["keep.md"]
