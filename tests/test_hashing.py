from pathlib import Path

from llm_engineering.hashing import chunk_id, sha256_bytes, sha256_file, text_hash


def test_file_hash_matches_the_hash_of_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    data = b"abc" * 1_000_000  # larger than one read block
    path.write_bytes(data)
    assert sha256_file(path) == sha256_bytes(data)
    assert (
        sha256_bytes(b"abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


def test_chunk_ids_are_deterministic_and_depend_on_path_position_and_text() -> None:
    digest = text_hash("hello")
    first = chunk_id("/a.md", 0, digest)
    assert first == chunk_id("/a.md", 0, text_hash("hello"))
    assert first != chunk_id("/b.md", 0, digest)
    assert first != chunk_id("/a.md", 1, digest)
    assert first != chunk_id("/a.md", 0, text_hash("hello!"))
    assert len(first) == 32


def test_path_and_position_cannot_collide_by_concatenation() -> None:
    assert chunk_id("/a1", 1, "x") != chunk_id("/a", 11, "x")
