"""Per-language configuration: one YAML per language variety, loaded and validated into dataclasses."""

from curate.language_configs.schema import (
    LanguageConfig,
    config_dirs,
    configured_languages,
    load_language_config,
    resolve_language,
)
from curate.language_configs.validate import ConfigError

__all__ = [
    "ConfigError",
    "LanguageConfig",
    "config_dirs",
    "configured_languages",
    "load_language_config",
    "resolve_language",
]
