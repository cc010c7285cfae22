"""Source code cut into whole definitions, each chunk named by its place (``pkg.mod.Class.method``).

A file is parsed with tree-sitter and read as a list of units, each a run of whole lines: a
definition (function, method, class, ...) with its decorators and the comments just above
it, or a plain statement. Units are packed in order into chunks of at most ``chunk_size``
tokens, a definition never cut while it fits in one chunk, so a method's chunk holds its
signature, docstring and body. A definition too long for one chunk is read as its header
(signature, docstring) and the units of its body, packed the same way: a class becomes its
methods, a long function pieces cut at statement boundaries. Every chunk's heading is the
qualified name of the definition it holds (of its container when it holds several, or the
module for top-level statements), so even the middle of a long function says where it is.
A piece shorter than ``MIN_CHARS`` (a lone signature, a closing bracket, a docstring's
quotes) joins its neighbour: no chunk is a fragment that only matches by its words.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["GRAMMARS", "MIN_CHARS", "CodePiece", "code_pieces", "module_name"]

MIN_CHARS = 80
"""A piece with less text than this (stripped) joins a neighbour."""

# language -> (module, attribute returning the grammar)
GRAMMARS: dict[str, tuple[str, str]] = {
    "python": ("tree_sitter_python", "language"),
    "javascript": ("tree_sitter_javascript", "language"),
    "typescript": ("tree_sitter_typescript", "language_typescript"),
    "tsx": ("tree_sitter_typescript", "language_tsx"),
    "go": ("tree_sitter_go", "language"),
    "rust": ("tree_sitter_rust", "language"),
    "java": ("tree_sitter_java", "language"),
    "c": ("tree_sitter_c", "language"),
    "cpp": ("tree_sitter_cpp", "language"),
}

# Nodes that define something with a name, in the grammars above.
_DEFINITIONS = frozenset(
    {
        "function_definition", "class_definition", "decorated_definition",  # python, c
        "function_declaration", "generator_function_declaration", "class_declaration",
        "abstract_class_declaration", "method_definition", "interface_declaration",
        "enum_declaration", "type_alias_declaration", "export_statement",  # js, ts
        "method_declaration", "type_declaration",  # go
        "function_item", "impl_item", "struct_item", "enum_item", "trait_item", "mod_item",
        "constructor_declaration", "record_declaration",  # java
        "struct_specifier", "class_specifier", "namespace_definition", "template_declaration",
        "lexical_declaration", "variable_declaration",  # js: const f = () => ...
    }
)  # fmt: skip
_FUNCTION_VALUES = frozenset({"arrow_function", "function_expression", "function", "class"})
_MAX_DEPTH = 6


@dataclass
class CodePiece:
    """Whole lines ``start``-``end`` (0-based, inclusive) of a file, and what they hold."""

    start: int
    end: int
    heading: str
    names: list[str] = field(default_factory=list)
    """Qualified names of the definitions it holds whole or in part."""


@dataclass
class _Unit:
    start: int
    end: int
    qual: str | None
    """Qualified name when the unit is a definition."""
    node: Any = None


def module_name(path: Path, language: str | None) -> str:
    """``flask.app`` for ``src/flask/app.py`` (packages are folders with ``__init__.py``, or
    without one inside such a folder); the file's stem for other languages and for a module
    outside any package."""
    parts = [path.stem] if path.stem != "__init__" or language != "python" else []
    if language == "python":
        folder = path.parent
        # A folder without __init__.py inside a package is a namespace subpackage (flask.sansio).
        while folder != folder.parent and any(
            (f / "__init__.py").is_file() for f in (folder, folder.parent)
        ):
            parts.insert(0, folder.name)
            folder = folder.parent
    return ".".join(parts) or path.stem


def load_parser(language: str | None) -> Any:
    """A tree-sitter parser for ``language``, or None when its grammar is not installed."""
    if language not in GRAMMARS:
        return None
    module_name_, attr = GRAMMARS[language]
    try:
        import tree_sitter

        grammar = getattr(importlib.import_module(module_name_), attr)()
        return tree_sitter.Parser(tree_sitter.Language(grammar))
    except (ImportError, AttributeError, ValueError):
        return None


def code_pieces(
    text: str, parser: Any, module: str, chunk_size: int, count: Callable[[str], int]
) -> list[CodePiece]:
    """The file's lines cut into pieces as the module docstring says.

    Args:
        parser: A tree-sitter parser of the file's language (:func:`load_parser`).
        module: The file's dotted module name, the head of every qualified name.
        count: Tokens of a text, in the embedding model's tokenizer.
    """
    lines = text.split("\n")
    tree = parser.parse(text.encode("utf-8"))
    packer = _Packer(lines, chunk_size, count)
    units = _units(tree.root_node.children, 0, len(lines) - 1, module)
    pieces = packer.rejoin(packer.pack(units, module, 0))
    return _join_small(pieces, lines, packer)


class _Packer:
    def __init__(self, lines: list[str], chunk_size: int, count: Callable[[str], int]):
        self._lines = lines
        self.size = chunk_size
        self._count = count

    def tokens(self, start: int, end: int) -> int:
        return self._count("\n".join(self._lines[start : end + 1]))

    def pack(
        self, units: list[_Unit], parent: str, depth: int, even: bool = False
    ) -> list[CodePiece]:
        """Pack ``units`` (consecutive) into pieces of at most ``chunk_size`` tokens; ``even``
        closes a piece once it holds its share of the whole, so the last is not a scrap."""
        pieces: list[CodePiece] = []
        current: list[_Unit] = []
        share = self.size
        if even and units:
            total = self.tokens(units[0].start, units[-1].end)
            share = math.ceil(total / math.ceil(total / self.size))
        for unit in units:
            together = current and self.tokens(current[0].start, unit.end) <= self.size
            if together and self.tokens(current[0].start, current[-1].end) >= share:
                together = False
            if current and not together:
                pieces.append(_piece(current, parent))
                current = []
            if not current and self.tokens(unit.start, unit.end) > self.size:
                pieces.extend(self._split(unit, parent, depth))
                continue
            current.append(unit)
        if current:
            pieces.append(_piece(current, parent))
        return pieces

    def rejoin(self, pieces: list[CodePiece]) -> list[CodePiece]:
        """Join neighbours of one definition that fit together: the cut of a long statement
        leaves its header as a piece of its own, next to the small piece before it."""
        joined: list[CodePiece] = []
        for piece in pieces:
            last = joined[-1] if joined else None
            if (
                last is not None
                and last.heading == piece.heading
                and self.tokens(last.start, piece.end) <= self.size
            ):
                last.end = piece.end
            else:
                joined.append(piece)
        return joined

    def _split(self, unit: _Unit, parent: str, depth: int) -> list[CodePiece]:
        """A unit too long for one piece: its header and body units, else line windows."""
        qual = unit.qual or parent
        inner = _body_of(unit.node) if unit.node is not None and depth < _MAX_DEPTH else None
        # The parts that start below the unit's first line; what is above them is its header.
        later = [c for c in inner.children if c.start_point[0] > unit.start] if inner else []
        first = min((c.start_point[0] for c in later if c.is_named), default=None)
        if first is None:
            return [
                CodePiece(s, e, qual, [qual] if unit.qual else []) for s, e in self._windows(unit)
            ]
        units = _units(later, first, unit.end, qual)
        header = _Unit(unit.start, first - 1, None)
        if units and units[0].qual is None and _is_docstring(units[0].node):
            header.end, units = units[0].end, units[1:]  # a docstring stays with its signature
        pieces = self.pack([header, *units], qual, depth + 1, even=True)
        for piece in pieces:  # every piece of a definition names it, if nothing nearer
            if unit.qual and not piece.names:
                piece.names = [qual]
        return pieces

    def _windows(self, unit: _Unit) -> Iterator[tuple[int, int]]:
        """Consecutive whole lines of ``unit`` in windows of about equal size, each at most
        ``chunk_size`` tokens (a single longer line is a window of its own)."""
        sizes = [self._count(line) + 1 for line in self._lines[unit.start : unit.end + 1]]
        share = math.ceil(sum(sizes) / math.ceil(sum(sizes) / self.size))
        start = 0
        while start < len(sizes):
            end, total = start, 0
            while end < len(sizes) and (end == start or total + sizes[end] <= self.size):
                total += sizes[end]
                end += 1
                if total >= share:
                    break
            yield unit.start + start, unit.start + end - 1
            start = end


def _piece(units: list[_Unit], parent: str) -> CodePiece:
    names = [u.qual for u in units if u.qual]
    if len(names) == 1:
        heading = names[0]
    elif names:
        heading = f"{parent}: {', '.join(n.rsplit('.', 1)[-1] for n in names)}"
    else:
        heading = parent
    return CodePiece(units[0].start, units[-1].end, heading, names)


def _units(nodes: list[Any], start: int, end: int, parent: str) -> list[_Unit]:
    """Units covering lines ``start``-``end``: each node's lines, with the blank lines and
    comments above it; nodes sharing a line are one unit; trailing lines join the last."""
    units: list[_Unit] = []
    pending = start  # first line not yet in a unit
    for node in nodes:
        if not node.is_named or node.type == "comment":
            continue
        first, last = node.start_point[0], node.end_point[0]
        if node.end_point[1] == 0 and last > first:  # ends at the start of the next line
            last -= 1
        if units and first <= units[-1].end:  # shares a line with the previous unit
            units[-1].end = max(units[-1].end, last)
            units[-1].qual, units[-1].node = None, None
            pending = units[-1].end + 1
            continue
        name = _qualified(node, parent)
        units.append(_Unit(min(pending, first), max(last, first), name, node))
        pending = units[-1].end + 1
    if units:
        units[0].start = start
        units[-1].end = max(units[-1].end, end)
    return units


def _qualified(node: Any, parent: str) -> str | None:
    name = _name(node)
    return f"{parent}.{name}" if name else None


def _definition(node: Any) -> Any:
    """The definition inside a wrapper (decorators, ``export``, a template)."""
    for _ in range(3):
        inner = None
        if node.type == "decorated_definition":
            inner = node.child_by_field_name("definition")
        elif node.type == "export_statement":
            inner = node.child_by_field_name("declaration")
        elif node.type == "template_declaration":
            inner = next((c for c in node.named_children if c.type in _DEFINITIONS), None)
        if inner is None:
            return node
        node = inner
    return node


def _name(node: Any) -> str | None:
    if node.type not in _DEFINITIONS:
        return None
    node = _definition(node)
    if node.type in ("lexical_declaration", "variable_declaration"):
        for declarator in node.named_children:
            value = declarator.child_by_field_name("value")
            if value is not None and value.type in _FUNCTION_VALUES:
                return _text(declarator.child_by_field_name("name"))
        return None
    if node.type == "type_declaration":  # go: type X struct {...}
        spec = next((c for c in node.named_children if c.type == "type_spec"), None)
        return _text(spec.child_by_field_name("name")) if spec is not None else None
    if node.type == "impl_item":  # rust: impl Trait for Type
        return _text(node.child_by_field_name("type"))
    named = node.child_by_field_name("name")
    if named is not None:
        return _text(named)
    declarator = node.child_by_field_name("declarator")  # c, c++: int *f(void) {...}
    while declarator is not None:
        if declarator.type in ("identifier", "field_identifier", "qualified_identifier"):
            return _text(declarator)
        declarator = declarator.child_by_field_name("declarator")
    return None


def _body_of(node: Any) -> Any:
    node = _definition(node)
    body = node.child_by_field_name("body")
    if body is None and node.type in ("lexical_declaration", "variable_declaration"):
        for declarator in node.named_children:
            value = declarator.child_by_field_name("value")
            if value is not None and value.type in _FUNCTION_VALUES:
                body = value.child_by_field_name("body")
    if body is None and node.named_children:  # a long statement: its own parts
        parts = [c for c in node.named_children if c.end_point[0] > c.start_point[0]]
        body = node if len(parts) > 1 or any(c.named_children for c in parts) else None
    return body


def _is_docstring(node: Any) -> bool:
    return (
        node is not None
        and node.type == "expression_statement"
        and node.named_children
        and node.named_children[0].type == "string"
    )


def _text(node: Any) -> str | None:
    return node.text.decode("utf-8", "replace") if node is not None else None


def _kin(a: str, b: str) -> bool:
    """Whether two headings name one definition, or one and a definition nested in it."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _join_small(pieces: list[CodePiece], lines: list[str], packer: _Packer) -> list[CodePiece]:
    """Join each piece with less than ``MIN_CHARS`` of text to a neighbour: the rest of its
    own definition, else one it fits with (the one before first), else the smaller; and a
    piece of a quarter chunk or less to the rest of its definition, if together they stay
    within a quarter over ``chunk_size``. The joined piece is named as the larger of the two
    was, or by the one definition it holds."""

    def text(piece: CodePiece) -> str:
        return "\n".join(lines[piece.start : piece.end + 1])

    def joined_size(a: CodePiece, b: CodePiece) -> int:
        return packer.tokens(min(a.start, b.start), max(a.end, b.end))

    out = [p for p in pieces if text(p).strip()]
    i = 0
    while len(out) > 1 and i < len(out):
        piece = out[i]
        before = out[i - 1] if i > 0 else None
        after = out[i + 1] if i + 1 < len(out) else None
        others = [n for n in (before, after) if n is not None]
        kin = [n for n in others if _kin(n.heading, piece.heading)]  # the rest of its definition
        if len(text(piece).strip()) >= MIN_CHARS:
            # A scrap of a long definition (its last return, say) joins the rest of it when
            # the two overrun a chunk by little: a search would rank the scrap alone.
            scrap = packer.tokens(piece.start, piece.end) < packer.size // 4
            kin = [n for n in kin if joined_size(n, piece) <= packer.size * 5 // 4]
            if not (scrap and kin):
                i += 1
                continue
        fits = [
            n for n in others
            if joined_size(n, piece) <= packer.size
        ]  # fmt: skip
        into = (kin or fits or [min(others, key=lambda n: len(text(n)))])[0]
        larger = max((into, piece), key=lambda n: len(text(n)))
        names = [*into.names, *(n for n in piece.names if n not in into.names)]
        into.heading = names[0] if len(names) == 1 else larger.heading
        into.names = names
        into.start, into.end = min(into.start, piece.start), max(into.end, piece.end)
        del out[i]
        i = max(0, i - 1)
    return out
