"""The one path rule: what a caller names must lie inside the allowed folders, links resolved."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llm_engineering.errors import PathError
from llm_engineering.paths import confine, is_inside


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.md").write_text("# A\n")
    (tmp_path / "secret.txt").write_text("root:x:0:0\n")
    return folder


def test_a_file_inside_is_returned_resolved(root: Path) -> None:
    assert confine(root / "sub" / "a.md", [root]) == (root / "sub" / "a.md").resolve()
    assert confine(str(root / "sub" / ".." / "sub" / "a.md"), [root]) == root / "sub" / "a.md"


def test_relative_paths_are_taken_inside_the_given_folder_or_refused(root: Path) -> None:
    assert confine("sub/a.md", [root], relative_to=root) == root / "sub" / "a.md"
    with pytest.raises(PathError, match="must be absolute"):
        confine("sub/a.md", [root])


def test_dot_dot_links_and_sibling_prefixes_out_of_the_folder_are_refused(
    root: Path, tmp_path: Path
) -> None:
    with pytest.raises(PathError, match="outside"):
        confine(root / ".." / "secret.txt", [root])
    with pytest.raises(PathError, match="outside"):
        confine("../secret.txt", [root], relative_to=root)
    link = root / "passwd.txt"
    os.symlink(tmp_path / "secret.txt", link)
    with pytest.raises(PathError, match="resolves to"):
        confine(link, [root])
    assert not is_inside(link, [root])
    sibling = tmp_path / "docs-private"
    sibling.mkdir()
    (sibling / "x.md").write_text("x")
    with pytest.raises(PathError, match="outside"):
        confine(sibling / "x.md", [root])


def test_a_root_that_is_itself_a_link_still_matches_its_files(root: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    os.symlink(root, alias)
    assert confine(root / "sub" / "a.md", [alias]) == root / "sub" / "a.md"
    assert confine(alias / "sub" / "a.md", [root]) == root / "sub" / "a.md"
    assert is_inside(alias / "sub" / "a.md", [root])


def test_missing_paths_and_folders_where_a_file_is_needed_are_refused(root: Path) -> None:
    with pytest.raises(PathError, match="does not exist"):
        confine(root / "nope.md", [root])
    with pytest.raises(PathError, match="not a file"):
        confine(root / "sub", [root], kind="file")
    assert confine(root / "sub", [root]) == root / "sub"


def test_messages_name_the_argument_and_the_folders(root: Path, tmp_path: Path) -> None:
    with pytest.raises(PathError) as caught:
        confine(
            tmp_path / "secret.txt", [root], what="dataset_path", roots_name="the allowed folders"
        )
    message = str(caught.value)
    assert message.startswith("dataset_path ") and f"the allowed folders ({root})" in message
    with pytest.raises(PathError, match=r"\(none configured\)"):
        confine(tmp_path / "secret.txt", [])


def test_what_no_file_system_can_hold_is_refused_by_name_not_by_an_os_error(root: Path) -> None:
    cases = {
        "sub/a\x00.md": "NUL byte",
        "sub/" + "x" * 256 + ".md": "at most 255 bytes",
        "/".join(["d"] * 2100): "at most 4,096 bytes",
        "sub/\ud800.md": "characters no file name can hold",
    }
    for path, expected in cases.items():
        with pytest.raises(PathError, match=expected):
            confine(path, [root], relative_to=root, what="path")
    loop = root / "loop.md"
    loop.symlink_to(loop)
    with pytest.raises(PathError, match=r"does not exist|cannot be opened"):
        confine(loop, [root])
