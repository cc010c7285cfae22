"""Judging a reply sentence by sentence, quoting the sentence that answers, cutting loops whole:
on real text (Flask's documentation, tests/data) and replies a small model writes."""

from __future__ import annotations

from pathlib import Path

from llm_engineering.generation.base import LoopGuard
from llm_engineering.generation.extract import best_sentence
from llm_engineering.generation.judging import drop_repeats, judge, names, sentence_spans

DOCS = Path(__file__).resolve().parents[1] / "data" / "real-project" / "flask" / "docs"


def paragraph(name: str, starts: str) -> str:
    """The paragraph of a real document that starts with ``starts``."""
    text = (DOCS / name).read_text()
    for block in text.split("\n\n"):
        if block.strip().startswith(starts):
            return " ".join(block.split())
    raise AssertionError(f"no paragraph of {name} starts with {starts!r}")


BLUEPRINT = paragraph("blueprints.rst", "A blueprint in Flask is not a pluggable app")
PREFIX = paragraph("blueprints.rst", "Like for regular applications, blueprints")
QUESTION = "What is a blueprint in Flask?"


def test_sentences_end_at_their_stops_not_inside_names_numbers_or_abbreviations() -> None:
    text = "Use app.run() on port 5000.5 e.g. locally. It works!\nA line\n\nAnother (see [1])."
    assert [s.text for s in sentence_spans(text)] == [
        "Use app.run() on port 5000.5 e.g. locally.",
        "It works!",
        "A line",
        "Another (see [1]).",
    ]
    assert names("Use flask.Flask.register_blueprint, send_file or BlueprintRegister in 1066.") >= {
        "flask.Flask.register_blueprint", "send_file", "BlueprintRegister", "1066",
    }  # fmt: skip


def test_a_reply_held_by_one_place_of_a_passage_about_the_question_is_supported() -> None:
    reply = "A blueprint is a set of operations which can be registered on an application [1]."
    verdict = judge(reply, QUESTION, [PREFIX, BLUEPRINT], cited=[0])
    assert verdict.supported and verdict.cited == [1]


def test_invented_names_glued_question_words_and_scattered_words_are_not_supported() -> None:
    passages = [BLUEPRINT, PREFIX]
    for reply in (
        # an invented API with made-up arguments
        "Register it with flask.Blueprint.attach(app, mode='pluggable').",
        # the question's words glued into a product name
        "A blueprint is the Flask BlueprintApp product.",
        # only the question said back
        "A blueprint in Flask is a blueprint.",
        # words from all over the passages, strung together
        "Blueprints register URL prefixes with regular applications as pluggable apps.",
    ):
        assert not judge(reply, QUESTION, passages).supported, reply


def test_a_sentence_written_again_is_dropped_whole_and_the_rest_kept_in_place() -> None:
    reply = (
        "Blueprints record operations. They are registered later.\nBlueprints record operations."
    )
    assert drop_repeats(reply) == ("Blueprints record operations. They are registered later.", 1)
    assert drop_repeats("Nothing repeats here.") == ("Nothing repeats here.", 0)


def test_the_sentence_that_answers_is_quoted_and_a_question_the_passages_miss_gets_none() -> None:
    passages = [PREFIX, BLUEPRINT]
    found = best_sentence(QUESTION, passages)
    assert found is not None and found.block == 1
    assert BLUEPRINT[found.offset :].startswith(found.text) and "operations" in found.text
    assert best_sentence("What port does the Postgres server listen on?", passages) is None


def test_a_loop_is_cut_back_to_its_last_whole_sentence_never_to_a_fragment() -> None:
    def run(pieces: list[str]) -> str:
        guard = LoopGuard()
        taken = []
        for piece in pieces:
            taken.append(piece)
            if guard.stop(piece):
                break
        return guard.text("".join(taken))

    loop = [" You", " can", " use", " the", " :class:", "`~flask.Blueprint`"]
    assert run(["It records operations.", *loop * 12]) == "It records operations."
    assert run(loop * 12) == ""  # a fragment alone: nothing is kept
