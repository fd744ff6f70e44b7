"""One language variety's configuration: `language_configs/<iso639-3>_<Script>.yaml`, validated on load."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from curate.language_configs.decontamination import DecontaminationConfig
from curate.language_configs.filters import FiltersConfig, FormattersConfig
from curate.language_configs.lid import LidConfig
from curate.language_configs.minhash import DedupConfig
from curate.language_configs.scorers import ScorersConfig
from curate.language_configs.validate import ConfigError, from_dict

SHIPPED_DIR = Path(__file__).resolve().parent
USER_DIR_ENV = "CURATE_LANGUAGE_CONFIGS"


@dataclass(frozen=True)
class LanguageConfig:
    """Everything the pipeline needs to know about one language variety (`code` = `fin_Latn`)."""

    language: str
    script: str
    name: str
    lid: LidConfig = field(default_factory=LidConfig)
    word_tokenizer: str | None = None
    filters: FiltersConfig = field(default_factory=FiltersConfig)
    formatters: FormattersConfig = field(default_factory=FormattersConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    scorers: ScorersConfig = field(default_factory=ScorersConfig)
    decontamination: DecontaminationConfig = field(default_factory=DecontaminationConfig)

    @property
    def code(self) -> str:
        return f"{self.language}_{self.script}"


def config_dirs() -> list[Path]:
    """Where configs are looked up: `$CURATE_LANGUAGE_CONFIGS` (os.pathsep-separated) first, then the shipped ones."""
    extra = [Path(p) for p in os.environ.get(USER_DIR_ENV, "").split(os.pathsep) if p]
    return [*extra, SHIPPED_DIR]


def configured_languages() -> list[str]:
    """Every `iso639-3_Script` code that has a config file (the reviewed ones and `$CURATE_LANGUAGE_CONFIGS`')."""
    codes = {p.stem for d in config_dirs() if d.is_dir() for p in d.glob("*_*.yaml")}
    return sorted(codes)


def available_languages() -> list[str]:
    """Every code a run accepts: the configured ones and FineWeb2's 1,929 shipped configs (`--lang all`)."""
    from curate.language_configs.fineweb2_bundle import bundled_configs

    return sorted(set(configured_languages()) | set(bundled_configs()))


def resolve_language(code: str) -> str:
    """`fin` → `fin_Latn`, `fin_Latn` → itself, `fi` / `est` → through the LID label table; else a ConfigError.
    A code with several scripts (`srp`) resolves to the one a config file holds, else the one lid.176 labels."""
    from curate.language_configs.labels import code_for_label

    available = available_languages()
    if code in available:
        return code
    candidates = [c for c in available if c.split("_")[0] == code]
    if len(candidates) == 1:
        return candidates[0]
    reviewed = [c for c in candidates if c in configured_languages()]
    if len(reviewed) == 1:
        return reviewed[0]
    mapped = code_for_label(code)
    if mapped in available:
        return mapped
    if len(candidates) > 1:
        raise ConfigError(f"language {code!r} is ambiguous: use one of {', '.join(candidates)}")
    raise ConfigError(
        f"unknown language {code!r}: not one of the {len(available):,} configured languages (`curate config list`); "
        f"write language_configs/{code}_<Script>.yaml (or a folder in ${USER_DIR_ENV}) "
        f"or import one with `curate config import-fineweb2 FILE.yml`"
    )


def config_path(code: str) -> Path:
    for directory in config_dirs():
        path = directory / f"{code}.yaml"
        if path.is_file():
            return path
    raise ConfigError(f"no config file for {code}")


def load_language_config(code: str) -> LanguageConfig:
    """Load and validate the config of `code` (any form `resolve_language` accepts): its config file, else
    FineWeb2's shipped config converted as `curate config import-fineweb2` would. Cached by the file found and
    its modification time, so a changed `$CURATE_LANGUAGE_CONFIGS` or an edited file is read again."""
    code = resolve_language(code)
    try:
        path = config_path(code)
    except ConfigError:
        return _load_bundled(code)
    return _load_config(code, path, path.stat().st_mtime_ns)


def is_bundled(code: str) -> bool:
    """Whether `code`'s config is FineWeb2's shipped one (no config file of its own)."""
    try:
        config_path(code)
    except ConfigError:
        return True
    return False


@cache
def _load_bundled(code: str) -> LanguageConfig:
    from curate.language_configs.fineweb2 import convert_fineweb2
    from curate.language_configs.fineweb2_bundle import bundled_configs

    where = f"FineWeb2's shipped config {code}"
    return from_dict(LanguageConfig, convert_fineweb2(bundled_configs()[code], code, where), where)


@cache
def _load_config(code: str, path: Path, modified: int) -> LanguageConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    config = from_dict(LanguageConfig, data, str(path))
    if config.code != code:
        raise ConfigError(f"{path}: language/script say {config.code}, the file name says {code}")
    return config
