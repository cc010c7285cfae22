"""The dashboard's small parts: marking query words, reading hyperparameters, and the vendored
front-end files being the pinned ones."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from llm_engineering.dashboard.highlight import highlight
from llm_engineering.dashboard.jobs import chart_data, parse_hyperparameters
from llm_engineering.errors import UserError

VENDOR = Path(__file__).parents[2] / "llm_engineering" / "dashboard" / "static" / "vendor"


def test_query_words_are_marked_and_everything_else_is_escaped() -> None:
    marked = highlight("Glaciers <b>calve</b> & the glacier's calving", "glacier calving")
    assert str(marked) == (
        "<mark>Glaciers</mark> &lt;b&gt;calve&lt;/b&gt; &amp; the <mark>glacier</mark>"
        "&#39;s <mark>calving</mark>"
    )
    assert str(highlight("<script>x</script>", "the of")) == "&lt;script&gt;x&lt;/script&gt;"


def test_hyperparameters_are_a_json_object_or_name_value_lines() -> None:
    assert parse_hyperparameters("") is None
    assert parse_hyperparameters('{"r": 8}') == {"r": 8}
    assert parse_hyperparameters("max_steps=60\n# a note\nlearning_rate = 1e-3\nx=abc") == {
        "max_steps": 60,
        "learning_rate": 1e-3,
        "x": "abc",
    }
    with pytest.raises(UserError, match="line 1: write name=value"):
        parse_hyperparameters("max_steps 60")
    with pytest.raises(UserError, match="not a valid JSON object"):
        parse_hyperparameters("{r: 8}")


def test_the_chart_takes_train_losses_by_step_and_held_out_losses_where_they_exist() -> None:
    events = [
        {"event": "started", "step": 0},
        {"event": "step", "step": 1, "loss": 3.0},
        {"event": "step", "step": 2, "loss": 2.5},
        {"event": "eval", "step": 2, "eval_loss": 2.7},
    ]
    assert chart_data(events) == {"steps": [1, 2], "loss": [3.0, 2.5], "eval": [[2, 2.7]]}


def test_vendored_files_are_the_pinned_versions_with_their_licences() -> None:
    table = (VENDOR / "README.md").read_text()
    rows = re.findall(r"\| `([^`]+)` \| `([^`]+)`.*?\| `([0-9a-f]{64})` \|", table)
    assert {name for name, _, _ in rows} == {"htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css"}
    for name, package, digest in rows:
        assert hashlib.sha256((VENDOR / name).read_bytes()).hexdigest() == digest, name
        assert "@" in package
    assert "Zero-Clause BSD" in (VENDOR / "LICENSE.htmx").read_text()
    assert "MIT" in (VENDOR / "LICENSE.uplot").read_text()
