"""A reader process becomes the writer when the writer goes, even while its model loads."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from llm_engineering.index_store.background import IndexRunner
from llm_engineering.index_store.service import IndexService
from tests.index_store.ingest.test_watcher import DEADLINE, wait_until


class LoadingService(IndexService):
    """An index whose embedding model takes until ``release`` is set to load."""

    def __init__(self, settings: Any, model: Any) -> None:
        super().__init__(settings)
        self.model = model
        self.loading = threading.Event()
        self.release = threading.Event()

    def embedder(self) -> Any:
        self.loading.set()
        if not self.release.wait(DEADLINE):
            raise AssertionError("the test never let the model finish loading")
        return self.model


def test_a_reader_takes_over_a_dead_writer_while_its_model_is_still_loading(
    service_factory, settings_factory, counting_embedder, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    writer = service_factory(watch=[folder])
    assert writer.lock.try_acquire()
    reader = LoadingService(settings_factory(watch=[folder]), counting_embedder)
    runner = IndexRunner(reader, [folder], watch=False, takeover_interval=0.05)
    try:
        runner.start()
        assert not reader.is_writer
        wait_until(reader.loading.is_set)

        writer.lock.release()  # the writer process is gone
        wait_until(lambda: reader.is_writer)
        assert not reader.release.is_set()  # taken over while the model was still loading

        reader.release.set()
        wait_until(runner.reconciled.is_set)
        assert runner.error is None
    finally:
        reader.release.set()
        runner.stop()
        reader.close()


def test_a_reader_shows_how_many_files_the_writer_has_left_and_which_it_is_on(
    service_factory, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "docs"
    folder.mkdir()
    names = [f"note{n}.md" for n in range(5)]
    for n, name in enumerate(names):
        (folder / name).write_text(f"# Note {n}\n\nThe heron census counted {n} herons.\n")
    writer = service_factory(watch=[folder])
    writer.progress_file.interval = 0  # every step published, so each one can be checked
    reader = service_factory(watch=[folder])
    seen: list[tuple[int, int, Any]] = []

    def look(done: int, total: int, message: str) -> None:
        # Called on the writer's thread after each step has been published.
        seen.append((done, total, reader.status()))

    writer.ingest([folder], look)
    assert seen and all(status.role == "reader" for _, _, status in seen)
    for done, total, status in seen:
        assert status.pending == total - done, (done, total, status.pending)
    on = {Path(status.indexing).name for done, total, status in seen if status.indexing}
    assert on and on <= set(names), on
    after = reader.status()
    assert (after.pending, after.indexing) == (0, None)
    assert after.documents == len(names)

    # Progress a writer that is gone left behind is not shown.
    writer.progress_file.publish(3, str(folder / names[0]))
    writer.lock.release()
    assert (reader.status().pending, reader.status().indexing) == (0, None)
    writer.close()
    reader.close()
