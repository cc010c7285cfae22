"""QLoRA hyperparameters and the adapter registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_engineering.adapters.hyperparams import QLoRAConfig
from llm_engineering.adapters.registry import AdapterCard, AdapterRegistry, parse_spec
from llm_engineering.errors import ConfigError, UserError


def test_defaults_follow_the_qlora_recipe() -> None:
    config = QLoRAConfig()
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32.0, 0.05)
    assert (config.learning_rate, config.lr_scheduler, config.warmup_ratio) == (
        2e-4,
        "cosine",
        0.03,
    )
    assert (config.quant_type, config.double_quant, config.compute_dtype) == (
        "nf4",
        True,
        "bfloat16",
    )
    assert config.target_modules == "all-linear"
    assert config.gradient_checkpointing and config.completion_only


def test_a_value_of_the_wrong_type_is_refused_naming_the_setting_and_the_type() -> None:
    with pytest.raises(UserError, match=r"r must be a whole number, not 'abc'"):
        QLoRAConfig.from_dict({"r": "abc"})
    with pytest.raises(UserError) as caught:
        QLoRAConfig.from_dict({"r": 8.5, "epochs": "x", "load_in_4bit": 1, "target_modules": []})
    assert str(caught.value) == (
        "invalid hyperparameters: r must be a whole number, not 8.5; epochs must be a number, "
        "not 'x'; load_in_4bit must be true or false, not 1; target_modules must be a string "
        "or a list of strings, not []"
    )
    whole = QLoRAConfig.from_dict({"r": 8.0, "max_steps": 30.0, "epochs": 2, "lora_alpha": 16})
    assert (whole.r, whole.max_steps) == (8, 30) and isinstance(whole.r, int)
    assert isinstance(whole.epochs, float) and isinstance(whole.lora_alpha, float)


def test_unknown_or_invalid_hyperparameters_are_refused_with_the_reason() -> None:
    with pytest.raises(
        UserError, match=r"unknown hyperparameter.*lerning_rate.*known: .*learning_rate"
    ):
        QLoRAConfig.from_dict({"lerning_rate": 1e-3})
    with pytest.raises(UserError, match=r"r must be in \[1, 1024\], not 0.*lr_scheduler"):
        QLoRAConfig.from_dict({"r": 0, "lr_scheduler": "wavy"})
    with pytest.raises(UserError, match="learning_rate must be in"):
        QLoRAConfig.from_dict({"learning_rate": 5})


def test_hyperparameters_round_trip_through_json() -> None:
    config = QLoRAConfig.from_dict(
        {"r": 8, "max_steps": 12, "target_modules": ["q_proj", "v_proj"]}
    )
    assert QLoRAConfig.from_json(config.to_json()) == config


def card(name: str) -> AdapterCard:
    return AdapterCard(
        name=name, version=0, base_model="m", base_gguf="m.gguf", base_gguf_sha256="ab" * 32,
        dataset_sha256="cd" * 32, dataset_examples=8, dataset_formats={"chat": 8},
        hyperparameters={"r": 16}, final_loss=0.5, best_loss=0.4, steps=6, train_tokens=900,
        job_id="j1",
    )  # fmt: skip


def trained(tmp_path: Path) -> tuple[Path, Path]:
    peft = tmp_path / "peft"
    peft.mkdir(exist_ok=True)
    (peft / "adapter_config.json").write_text("{}")
    gguf = tmp_path / "a.gguf"
    gguf.write_bytes(b"GGUF")
    return peft, gguf


def test_versions_are_monotonic_even_after_a_delete(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    peft, gguf = trained(tmp_path)
    assert [registry.add(card("faq"), peft, gguf).version for _ in range(3)] == [1, 2, 3]
    assert registry.delete("faq@3", confirm="faq@3") == ["faq@3"]
    assert registry.add(card("faq"), peft, gguf).version == 4
    assert registry.get("faq").version == 4 and registry.get("faq@v2").version == 2
    stored = json.loads((tmp_path / "adapters" / "faq" / "4" / "card.json").read_text())
    assert stored["dataset_sha256"] == "cd" * 32 and stored["hyperparameters"] == {"r": 16}
    assert (registry.get("faq").peft / "adapter_config.json").is_file()


def test_deleting_needs_the_spec_repeated_and_unknown_specs_say_what_exists(tmp_path: Path) -> None:
    registry = AdapterRegistry(tmp_path / "adapters")
    peft, gguf = trained(tmp_path)
    registry.add(card("faq"), peft, gguf)
    registry.add(card("faq"), peft, gguf)
    with pytest.raises(UserError, match="pass confirm='faq'"):
        registry.delete("faq", confirm="yes")
    assert registry.versions("faq") == [1, 2]
    with pytest.raises(UserError, match="no version 7; versions: 1, 2"):
        registry.get("faq@7")
    with pytest.raises(UserError, match="unknown adapter 'nope'; registered: faq@1, faq@2"):
        registry.get("nope")
    assert registry.delete("faq", confirm="faq") == ["faq@1", "faq@2"]
    assert registry.cards() == []


def test_adapter_names_cannot_escape_the_registry_folder() -> None:
    for bad in ("../x", "a/b", "", ".hidden", "x" * 65):
        with pytest.raises(UserError, match="not valid"):
            parse_spec(bad)
    with pytest.raises(UserError, match="must be a number"):
        parse_spec("faq@latest")
    assert parse_spec("faq@v3") == ("faq", 3) and parse_spec("faq") == ("faq", None)


def test_a_name_with_a_final_newline_is_refused_everywhere_names_are_checked(
    tmp_path: Path,
) -> None:
    from llm_engineering.adapters.registry import valid_name
    from llm_engineering.config import load_settings

    for bad in ("ok\n", "ok\r\n", "\nok", "faq@3\n"):
        with pytest.raises(UserError):
            parse_spec(bad)
    with pytest.raises(UserError):
        valid_name("ok\n")
    with pytest.raises(UserError, match="must be a number"):
        parse_spec("faq@²")
    with pytest.raises(ConfigError, match="collection"):
        load_settings(data_dir=tmp_path, collection="docs\n")
    assert load_settings(data_dir=tmp_path, collection="my-docs.v2").collection == "my-docs.v2"


def test_every_value_must_be_finite_and_in_its_stated_range() -> None:
    # Raw JSON allows NaN and Infinity; they fail here, not late in the worker or in a card.
    for name in ("epochs", "lora_alpha", "max_grad_norm", "exploding_loss", "max_minutes"):
        for raw in ("NaN", "Infinity", "-Infinity"):
            with pytest.raises(UserError, match=f"{name} must be a finite number"):
                QLoRAConfig.from_dict(json.loads(f'{{"{name}": {raw}}}'))
    refused = {
        "weight_decay": (-5, r"weight_decay must be in \[0, 1\], not -5"),
        "r": (100000, r"r must be in \[1, 1024\], not 100000"),
        "epochs": (1e9, r"epochs must be in \[0, 1000\], not 1000000000"),
        "max_steps": (10**7, r"max_steps must be in \[0, 1000000\], not 10000000"),
        "lora_alpha": (0, r"lora_alpha must be in \(0, 4096\], not 0"),
        "seed": (-1, r"seed must be in \[0, 4294967295\], not -1"),
        "max_grad_norm": (-1, r"max_grad_norm must be in \[0, 1000\]"),
    }
    for name, (value, message) in refused.items():
        with pytest.raises(UserError, match=message):
            QLoRAConfig.from_dict({name: value})
    with pytest.raises(UserError, match="lora_alpha must be a number, not 10000000000"):
        QLoRAConfig.from_dict({"lora_alpha": 10**400})  # too large for a float
    with pytest.raises(UserError, match=r"target_modules .* is not a valid regular expression"):
        QLoRAConfig.from_dict({"target_modules": "q_proj("})
    with pytest.raises(UserError, match="target_modules must not be empty"):
        QLoRAConfig.from_dict({"target_modules": ["q_proj", ""]})
    edges = {"r": 1024, "weight_decay": 1.0, "epochs": 1000, "seed": 2**32 - 1, "max_steps": 10**6}
    assert QLoRAConfig.from_dict(edges).r == 1024
