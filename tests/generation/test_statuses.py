"""Each answer status from the real packaged model on a real project's docs (Flask's reST,
tests/data/real-project): what the user is told, what is cited, the passages shown whatever
the status, and the CLI's lines for each. Greedy decoding makes the model's replies fixed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_engineering.generation.answer import Answer, Answerer
from llm_engineering.generation.base import LoopGuard
from llm_engineering.generation.grounding import NOT_FOUND, UNSUPPORTED
from tests.generation.fakes import ScriptedGenerator

FLASK_DOCS = Path(__file__).resolve().parents[1] / "data" / "real-project" / "flask" / "docs"
ASKED = {
    # the model copies the sentence that answers, then rambles: the first sentence is the answer
    "answered": "What do blueprints record?",
    # the model writes about the application context; the passages say when it is popped
    "extracted": "When does the request context get popped?",
    # the model's 'namespace object ... across requests' is in no passage, and no passage
    # sentence is close enough to the question to quote
    "unsupported": "What is the g object?",
    "not_in_context": "What is the capital of Peru?",
}


@pytest.fixture(scope="module")
def answers(
    tmp_path_factory: pytest.TempPathFactory, embedder, parse_pool
) -> Iterator[dict[str, Answer]]:  # type: ignore[no-untyped-def]
    from llm_engineering.config import load_settings
    from llm_engineering.generation.models import GeneratorCache
    from llm_engineering.index_store.service import IndexService

    root = tmp_path_factory.mktemp("flask-answers")
    shutil.copytree(FLASK_DOCS, root / "docs")
    settings = load_settings(data_dir=root / "data")
    index = IndexService(settings, embedder=embedder, parsers=parse_pool)
    generators = GeneratorCache(settings)
    try:
        index.ingest([root / "docs"])
        answerer = Answerer(generators.get, index)
        yield {want: answerer.answer(question, max_tokens=80) for want, question in ASKED.items()}
    finally:
        generators.close()
        index.close()


def file_lines(path: str, start: int, end: int) -> str:
    return " ".join(" ".join(Path(path).read_text().splitlines()[start - 1 : end]).split())


@pytest.mark.parametrize("want", list(ASKED))
def test_each_status_comes_from_a_real_run_and_every_one_lists_its_passages(answers, want) -> None:  # type: ignore[no-untyped-def]
    result = answers[want]
    assert result.status == want, (result.status, result.model_answer, result.notes)
    assert result.passages, "passages are listed whatever the status"
    for passage in result.passages:
        assert passage.path and passage.start_line and passage.score is not None
        # its lines hold it (the chunk's text may start with its heading's path)
        held = file_lines(passage.path, passage.start_line, passage.end_line or passage.start_line)
        assert " ".join(passage.text.split())[-60:] in held


def test_an_answered_reply_is_the_models_sentences_the_passages_hold(answers) -> None:  # type: ignore[no-untyped-def]
    result = answers["answered"]
    assert result.grounded and result.citations
    assert result.model_answer.startswith(result.answer) and result.answer != result.model_answer
    assert "record operations" in result.answer
    assert any("dropped the" in note for note in result.notes)
    for citation in result.citations:
        assert (
            citation.how in ("marker", "support") and Path(citation.path).name == "blueprints.rst"
        )


def test_an_extract_quotes_a_passage_sentence_at_its_own_lines(answers) -> None:  # type: ignore[no-untyped-def]
    result = answers["extracted"]
    assert result.grounded and [c.how for c in result.citations] == ["extract"]
    quote = result.citations[0]
    assert quote.text == result.answer and result.answer != result.model_answer
    assert " ".join(result.answer.split()) in file_lines(
        quote.path, quote.start_line, quote.end_line
    )
    assert "pops the request context" in result.answer
    assert any("best matching sentence is quoted" in note for note in result.notes)
    assert any("llm_model" in note and "llm_url" in note for note in result.notes)


def test_an_unsupported_or_unrelated_reply_is_never_shown_as_the_answer(answers) -> None:  # type: ignore[no-untyped-def]
    unsupported, unrelated = answers["unsupported"], answers["not_in_context"]
    assert unsupported.answer == UNSUPPORTED and unrelated.answer == NOT_FOUND
    for result in (unsupported, unrelated):
        assert not result.grounded and result.citations == []
        assert result.model_answer and result.model_answer not in result.answer


def test_the_cli_says_what_happened_and_shows_three_passages_unless_answered(
    answers, capsys
) -> None:  # type: ignore[no-untyped-def]
    from llm_engineering.cli.output import print_answer

    said = {
        "extracted": "the best matching sentence is quoted",
        "unsupported": "no passage sentence answers the question",
        "not_in_context": "no passage found is about the question",
    }
    for want, result in answers.items():
        print_answer(result)
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == result.answer.splitlines()[0]
        status = [line for line in lines if line.startswith(f"{want};")]
        assert len(status) == 1 and "llama.cpp:" in status[0]
        where = [line for line in lines if re.match(r"  \[\d\] \S+\.rst:\d+-\d+$", line)]
        if want == "answered":
            assert "Passages" not in lines and "Sources" in lines
            assert where  # its sources, as path:lines
            continue
        assert any(said[want] in line for line in lines), lines
        at = lines.index("Passages")
        shown = lines[at + 1 : at + 7]
        assert [bool(re.match(r"  \[\d\] \S+:\d+-\d+$", line)) for line in shown] == [
            True,
            False,
        ] * 3
        assert all(line.startswith("      ") and line.strip() for line in shown[1::2])


def test_a_cut_loop_leaves_no_fragment_and_is_judged_again() -> None:
    """The guard once kept "You can use the :class:`~pkg.app`", which passed as answered."""
    passage = " ".join((FLASK_DOCS / "blueprints.rst").read_text().split("\n\n")[3].split())
    guard = LoopGuard()
    pieces = [" You", " can", " use", " the", " :class:", "`~flask.Blueprint`"] * 12
    taken = []
    for piece in pieces:
        taken.append(piece)
        if guard.stop(piece):
            break
    cut = guard.text("".join(taken))
    assert cut == ""
    for reply in (cut, "You can use the :class:`~pkg.app`"):
        generator = ScriptedGenerator(reply)
        result = Answerer(lambda _, g=generator: g, None).answer(  # type: ignore[misc]
            "What is a blueprint in Flask?", contexts=[passage]
        )
        assert result.status != "answered" and result.passages, (reply, result.status)
