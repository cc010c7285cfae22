"""HTML to Markdown-style text, under limits on nesting depth and element count.

BeautifulSoup's tree edits cost as much as the subtree below the edited tag, so a file
nested 100,000 levels deep took minutes of quadratic work: the tree builder refuses a
file as soon as it nests deeper than ``max_depth`` or opens more than ``max_elements``
elements, before any of that work (and before the tree grows past its memory bound).
"""

from __future__ import annotations

from typing import Any

from llm_engineering.errors import DocumentError

__all__ = ["html_to_text", "tidy"]

_HTML_DROP = ("script", "style", "noscript", "template", "svg", "head", "iframe", "object")
_HTML_BLOCKS = (
    "p", "div", "section", "article", "main", "header", "footer", "aside", "nav", "li", "ul",
    "ol", "table", "tr", "blockquote", "figure", "figcaption", "dl", "dt", "dd", "form", "br", "hr",
)  # fmt: skip
_SPACE = " \t\r\f\v"
# What documentation generators put beside a heading or definition as a link to itself:
# Sphinx and MkDocs ``¶``, rustdoc ``§``, VitePress and Docusaurus ``#``, GitHub an icon.
_PERMALINK_MARKS = frozenset({"", "¶", "§", "#", "🔗", "¤"})
_PERMALINK_CLASSES = frozenset({"headerlink", "header-anchor", "hash-link", "anchorjs-link"})


def _bounded_soup(markup: str, max_depth: int, max_elements: int) -> Any:
    from bs4 import BeautifulSoup

    class BoundedSoup(BeautifulSoup):  # type: ignore[misc]
        opened = 0

        def pushTag(self, tag: Any) -> None:
            super().pushTag(tag)
            self.opened += 1
            # tagStack holds the document's root too.
            if len(self.tagStack) - 1 > max_depth:
                raise DocumentError(
                    f"HTML nests elements more than {max_depth} deep, past the limit "
                    "(max_html_depth); skipped"
                )
            if self.opened > max_elements + 1:
                raise DocumentError(
                    f"HTML has more than {max_elements:,} elements, past the limit "
                    "(max_html_elements); skipped"
                )

    return BoundedSoup(markup, "html.parser")


def tidy(text: str) -> str:
    """Trailing spaces off every line, runs of blank lines down to one, ends stripped.

    Line by line, not by regular expression: ``[ \\t]+\\n`` over a long run of spaces
    with no newline after it backtracks quadratically.
    """
    out: list[str] = []
    lines = text.split("\n")
    last = len(lines) - 1
    blank = 0
    for i, line in enumerate(lines):
        if i < last:
            line = line.rstrip(_SPACE)
        if line == "":
            blank += 1
            if blank > 1:
                continue
        else:
            blank = 0
        out.append(line)
    return "\n".join(out).strip()


def html_to_text(markup: str, max_depth: int, max_elements: int) -> tuple[str, str]:
    """(title, text) of an HTML page: headings as ``#`` lines, ``pre`` as fences, lists as ``-``.

    Raises:
        DocumentError: the page nests deeper than ``max_depth`` or has more than
            ``max_elements`` elements; the message names the setting.
    """
    import warnings

    from bs4 import NavigableString, XMLParsedAsHTMLWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = _bounded_soup(markup, max_depth, max_elements)
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) if title_tag else ""
    # Every edit below changes a tag's own children, never its place among its siblings:
    # decompose(), replace_with() and insert_before/after() each look the tag up in its
    # parent's children one by one, so a page of 40,000 rows or paragraphs took minutes.
    for tag in soup.find_all(_HTML_DROP):
        tag.clear(decompose=True)
    for tag in soup.find_all("a"):
        if _is_permalink(tag):
            tag.clear()
    for level in range(1, 7):
        for tag in soup.find_all(f"h{level}"):
            heading = tag.get_text(" ", strip=True)
            _replace_children(tag, f"\n\n{'#' * level} {heading}\n\n")
            title = title or heading
    for tag in soup.find_all("pre"):
        _replace_children(tag, f"\n\n```\n{tag.get_text()}\n```\n\n")
    for tag in soup.find_all(["td", "th"]):
        tag.append(NavigableString(" | "))
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert(0, NavigableString("\n"))
        tag.append(NavigableString("\n"))
    for tag in soup.find_all("li"):
        tag.insert(1, NavigableString("- "))  # after the line break that opens it
    return title, tidy(soup.get_text())


def _replace_children(tag: Any, text: str) -> None:
    from bs4 import NavigableString

    tag.clear()
    tag.append(NavigableString(text))


def _is_permalink(tag: Any) -> bool:
    """Whether ``tag`` (an ``a``) is a heading's link to itself, a mark with no words."""
    marked = _PERMALINK_CLASSES.intersection(tag.get("class") or [])
    if not marked and not str(tag.get("href", "")).startswith("#"):
        return False
    # A few nodes at most, never the whole subtree: links nested a thousand deep around a
    # large body would otherwise each read all of it.
    text = ""
    for seen, node in enumerate(tag.descendants):
        if seen >= 4:
            return False
        if isinstance(node, str):
            text += node
    return text.strip() in _PERMALINK_MARKS
