"""Settings: command-line flags > ``LLM_ENG_*`` environment > TOML file > defaults.

Build them once with :func:`load_settings` and pass them down; nothing in the package
looks settings up globally. :class:`Settings` is one flat model made of five groups, one
module each: ``index`` (the data folder, what is indexed and the limits a file keeps to),
``models`` (embeddings, reranker, answering model), ``answers`` (ranking and answers),
``training`` (fine-tuning jobs and adapters) and ``server`` (HTTP and logging).
"""

from __future__ import annotations

from llm_engineering.config.answers import AnswerSettings
from llm_engineering.config.index import IndexSettings
from llm_engineering.config.models import DEFAULT_EMBEDDING_MODEL, ModelSettings
from llm_engineering.config.server import ServerSettings, is_loopback
from llm_engineering.config.settings import Settings, default_config_file, load_settings
from llm_engineering.config.training import TrainingSettings

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "AnswerSettings",
    "IndexSettings",
    "ModelSettings",
    "ServerSettings",
    "Settings",
    "TrainingSettings",
    "default_config_file",
    "is_loopback",
    "load_settings",
]
