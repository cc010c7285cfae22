"""A card.json or job.json that cannot be read is listed as damaged, with its path and why,
and everything else keeps working: other adapters list and answer, other jobs list."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llm_engineering.adapters.service import TrainingService
from llm_engineering.config import Settings
from llm_engineering.errors import UserError
from tests.adapters.fictional import fact_records
from tests.adapters.registered import add_adapter


def service(tmp_path: Path) -> TrainingService:
    return TrainingService(Settings(data_dir=tmp_path / "data"))


def damaged_registry(data_dir: Path) -> dict[str, Path]:
    """``faq@1`` and ``other@1`` whole; ``faq@2`` cut short, ``odd@1`` the wrong shape."""
    for name in ("faq", "faq", "other", "odd"):
        add_adapter(data_dir, name)
    cut = data_dir / "adapters" / "faq" / "2" / "card.json"
    cut.write_text(cut.read_text()[:40])
    shape = data_dir / "adapters" / "odd" / "1" / "card.json"
    shape.write_text('{"name": "odd", "version": "two"}')
    (data_dir / "adapters" / "other" / ".last_version").write_text("garbage")
    return {"faq@2": cut, "odd@1": shape}


def test_a_corrupt_card_is_listed_as_damaged_and_every_other_adapter_lists_and_answers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    training = service(tmp_path)
    damaged = damaged_registry(training.settings.data_dir)
    with caplog.at_level(logging.WARNING):
        assert [card.spec for card in training.adapters("other")] == ["other@1"]
        listing = training.adapter_listing()
    assert [card.spec for card in listing.cards] == ["faq@1", "other@1"]
    assert {(d.entry, d.path) for d in listing.damaged} == {
        (spec, str(path)) for spec, path in damaged.items()
    }
    reasons = {d.entry: d.reason for d in listing.damaged}
    assert "not valid JSON" in reasons["faq@2"]
    assert "version" in reasons["odd@1"] and "job_id" in reasons["odd@1"]  # what is wrong
    for path in damaged.values():  # the log names the file
        assert any(str(path) in record.getMessage() for record in caplog.records), caplog.text
    assert training.resolve_adapter("other").spec == "other@1"
    assert training.resolve_adapter("faq@1").spec == "faq@1"
    for spec in ("faq", "faq@2"):  # the latest is the damaged one: never an older one silently
        with pytest.raises(UserError) as caught:
            training.resolve_adapter(spec)
        message = str(caught.value)
        assert str(damaged["faq@2"]) in message and "delete" in message, message
    with pytest.raises(UserError, match="registered: faq@1, other@1"):
        training.adapter("nope")
    # A damaged version can be deleted, and a counter that cannot be read loses no version.
    assert training.delete_adapter("faq@2", "faq@2") == ["faq@2"]
    assert add_adapter(training.settings.data_dir, "other").version == 2
    training.close()


def test_a_corrupt_job_json_marks_that_job_damaged_and_every_job_still_lists(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    training = service(tmp_path)
    good = training.start_job("good", records=fact_records(12))
    bad = training.start_job("bad", records=fact_records(12))
    spec_file = training.store.folder(bad.id).spec_file
    spec_file.write_text('{"id": "' + bad.id + '", "name": ')
    with caplog.at_level(logging.WARNING):
        views = {view.job.id: view for view in training.jobs()}
    assert set(views) == {good.id, bad.id}
    assert views[good.id].damaged is None and views[good.id].spec is not None
    damaged = views[bad.id].damaged
    assert damaged is not None and damaged.path == str(spec_file)
    assert damaged.entry == f"job {bad.id}" and "not valid JSON" in damaged.reason
    assert str(spec_file) in caplog.text
    shown = training.view(bad.id)
    assert shown.job.status == "queued" and shown.damaged == damaged
    assert shown.to_dict()["damaged"]["path"] == str(spec_file)
    training.close()
