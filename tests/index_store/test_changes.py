"""IndexService.on_change: each ingest or sync tells its observers what came, changed and went."""

from __future__ import annotations

from pathlib import Path

from llm_engineering.index_store.changes import IndexChange


def test_observers_hear_which_documents_each_write_added_updated_failed_and_removed(
    service_factory,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nAlpha notes.\n")
    (folder / "b.md").write_text("# B\n\nBeta notes.\n")
    index = service_factory(watch=[folder])
    heard: list[IndexChange] = []
    stop = index.on_change(heard.append)
    a, b, c = (str(folder / name) for name in ("a.md", "b.md", "c.md"))

    index.ingest([folder])
    assert len(heard) == 1 and sorted(heard[0].added) == [a, b] and heard[0].listing_changed
    assert heard[0].updated == heard[0].failed == heard[0].removed == ()

    index.ingest([folder])  # nothing changed: nothing to tell
    assert len(heard) == 1

    (folder / "a.md").write_text("# A\n\nAlpha notes, revised.\n")
    (folder / "b.md").unlink()
    (folder / "c.md").write_bytes(b"\xff\xfe not text")
    index.sync([folder / "a.md", folder / "b.md", folder / "c.md"])
    change = heard[-1]
    assert (change.updated, change.removed) == ((a,), (b,))
    assert change.added + change.failed == (c,)

    stop()
    (folder / "a.md").write_text("# A\n\nAlpha notes, again.\n")
    index.sync([folder / "a.md"])
    assert len(heard) == 2


def test_an_observer_that_raises_does_not_fail_the_write(service_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nAlpha notes.\n")
    index = service_factory(watch=[folder])
    index.on_change(lambda change: 1 / 0)
    heard: list[IndexChange] = []
    index.on_change(heard.append)
    report = index.ingest([folder])
    assert report.added == 1 and heard == [IndexChange(added=(str(folder / "a.md"),))]
