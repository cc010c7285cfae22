import pytest

from llm_engineering.errors import UserError
from llm_engineering.generation.prompts import Block, grounded_messages, pack_blocks
from tests.generation.fakes import ScriptedGenerator


def blocks(*sizes: int) -> list[Block]:
    return [
        Block(n=i + 1, text=" ".join(f"w{i}x{j}" for j in range(size)), path=f"/d/{i}.md")
        for i, size in enumerate(sizes)
    ]


def test_blocks_that_fit_are_kept_in_rank_order() -> None:
    kept, notes = pack_blocks(
        blocks(20, 30, 40), "a question", ScriptedGenerator(context_window=1000), max_tokens=100
    )
    assert [b.n for b in kept] == [1, 2, 3] and notes == []


def test_the_first_block_that_does_not_fit_is_cut_and_the_rest_dropped_with_a_note() -> None:
    generator = ScriptedGenerator(context_window=400)
    kept, notes = pack_blocks(blocks(100, 200, 100, 50), "q", generator, max_tokens=50)
    assert [b.n for b in kept] == [1, 2]
    assert kept[1].text.endswith("…") and len(kept[1].text.split()) < 200
    assert any("shortened" in n for n in notes) and any(
        "2 lower-ranked passages" in n for n in notes
    )
    total = sum(generator.count_tokens(m["content"]) for m in grounded_messages("q", kept))
    assert total + 50 <= generator.context_window  # the prompt and the answer fit


def test_too_little_room_for_a_useful_piece_drops_instead_of_cutting() -> None:
    kept, notes = pack_blocks(
        blocks(100, 200), "q", ScriptedGenerator(context_window=260), max_tokens=20
    )
    assert [b.n for b in kept] == [1]
    assert notes == [
        "1 lower-ranked passage did not fit the 260-token context window and was left out"
    ]


def test_max_tokens_that_leave_no_room_are_a_clear_error() -> None:
    with pytest.raises(UserError, match="lower max_tokens"):
        pack_blocks(blocks(10), "q", ScriptedGenerator(context_window=300), max_tokens=290)


def test_blocks_render_with_number_and_source() -> None:
    block = Block(
        n=3,
        text="Some text.",
        path="/home/me/docs/a.pdf",
        title="Report",
        page=4,
        source="docs/a.pdf",
    )
    assert block.render() == "[3] (Report - docs/a.pdf, page 4)\nSome text."
    assert Block(n=1, text="given").render() == "[1]\ngiven"
