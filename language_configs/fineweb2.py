"""Import a FineWeb2 per-language config (`configs/<iso639-3>_<Script>.yml` of huggingface/fineweb-2) as ours.

FineWeb2's files hold only the per-language values; the rest of its filter settings are fixed in its
pipeline script (paragraph and Gopher line-character checks off, FineWeb duplicated-line characters at 0.1,
short lines off, at least 2 stopwords, Gopher's word-count, symbol, bullet and ellipsis defaults). The import
writes all of them out under our key names, and maps datatrove's "0 means off" values to `null`, so that the
imported config keeps and drops exactly what FineWeb2's pipeline keeps and drops:

| FineWeb2 key | ours |
|---|---|
| `language_score` | `lid.min_score.glotlid` |
| `dup_line_frac` | `filters.gopher_repetition.max_dup_line_share` (0 → null) |
| `top_n_grams` [[n, share], …] | `filters.gopher_repetition.max_top_ngram_char_share` {n: share} |
| `dup_n_grams` [[n, share], …] | `filters.gopher_repetition.max_dup_ngram_char_share` {n: share} |
| `line_punct_thr` | `filters.fineweb_quality.min_punct_line_share` (0 → null: nothing is below 0) |
| `new_line_ratio` | `filters.fineweb_quality.max_newline_token_ratio` |
| `min_avg_word_length`, `max_avg_word_length` | `filters.gopher_quality.min_mean_word_length`, `max_…` (0 → null) |
| `max_non_alpha_words_ratio` (a minimum!) | `filters.gopher_quality.min_alpha_token_share` (0 → null) |
| `stopwords` | `filters.gopher_quality.stopwords` |
"""

from __future__ import annotations

import csv
import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from curate.language_configs.validate import ConfigError

CODE = re.compile(r"^([a-z]{3})_([A-Z][a-z]{3})$")
FT176_DEFAULT_SCORE = 0.65
"""fastText lid.176 threshold written for languages lid.176 knows (its scores are not GlotLID's)."""

REQUIRED = ("language_score", "dup_line_frac", "top_n_grams", "dup_n_grams", "line_punct_thr", "new_line_ratio",
            "min_avg_word_length", "max_avg_word_length", "max_non_alpha_words_ratio", "stopwords")

# FineWeb2's pipeline (fineweb-2-pipeline.py) fixes these for every language.
FINEWEB2_FIXED = {
    "gopher_repetition": {"max_dup_para_share": None, "max_dup_para_char_share": None,
                          "max_dup_line_char_share": None},
    "fineweb_quality": {"punct_free_passes": False, "terminal_punctuation": None, "max_short_line_share": None,
                        "short_line_max_chars": 30, "max_dup_line_char_share": 0.1},
    "gopher_quality": {"min_word_count": 50, "max_word_count": 100_000, "max_hash_token_ratio": 0.1,
                       "max_ellipsis_token_ratio": 0.1, "max_bullet_line_share": 0.9,
                       "max_ellipsis_line_share": 0.3, "min_stopword_count": 2},
}


@cache
def datatrove_language_names() -> dict[str, str]:
    """`fin_Latn` → `Finnish`, from datatrove's tokenizer assignment table."""
    from datatrove.utils._import_utils import ASSETS_PATH

    with open(Path(ASSETS_PATH) / "tokenizer_assignment.csv", encoding="utf-8") as handle:
        return {f"{row['code_3']}_{row['script']}": row["name"] for row in csv.DictReader(handle)}


def _ft176_knows(code: str) -> bool:
    try:
        from curate.language_configs.labels import ft176_labels
    except ImportError:
        return False
    return code in ft176_labels().values()


def _off_if_zero(value: Any) -> float | None:
    """datatrove skips a check whose threshold is falsy; ours says so with null."""
    return None if not value else float(value)


def _ngrams(value: Any, key: str, where: str) -> dict[int, float]:
    try:
        return {int(n): float(share) for n, share in value}
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a list of [n, share] pairs, got {value!r}") from None


def convert_fineweb2(raw: dict[str, Any], code: str, where: str = "FineWeb2 config") -> dict[str, Any]:
    """Our config (plain data) from the content of FineWeb2's `<code>.yml`."""
    match = CODE.match(code)
    if not match:
        raise ConfigError(f"{where}: the file name must be <iso639-3>_<Script>.yml (like fin_Latn.yml), got {code!r}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of FineWeb2 filter settings")
    missing = [k for k in REQUIRED if k not in raw]
    if missing:
        raise ConfigError(f"{where}: not a FineWeb2 language config, missing {', '.join(missing)}")
    stopwords = [str(w) for w in (raw["stopwords"] or [])]
    min_score = {"glotlid": float(raw["language_score"])}
    if _ft176_knows(code):
        min_score["ft176"] = FT176_DEFAULT_SCORE
    line_punct = float(raw["line_punct_thr"])
    return {
        "language": match[1],
        "script": match[2],
        "name": datatrove_language_names().get(code, code),
        "lid": {"model": "glotlid", "min_score": min_score},
        "word_tokenizer": "datatrove",
        "filters": {
            "gopher_repetition": {
                **FINEWEB2_FIXED["gopher_repetition"],
                "max_dup_line_share": _off_if_zero(raw["dup_line_frac"]),
                "max_top_ngram_char_share": _ngrams(raw["top_n_grams"], "top_n_grams", where),
                "max_dup_ngram_char_share": _ngrams(raw["dup_n_grams"], "dup_n_grams", where),
            },
            "fineweb_quality": {
                **FINEWEB2_FIXED["fineweb_quality"],
                "min_punct_line_share": line_punct if line_punct > 0 else None,
                "max_newline_token_ratio": float(raw["new_line_ratio"]),
            },
            "gopher_quality": {
                **FINEWEB2_FIXED["gopher_quality"],
                "min_mean_word_length": _off_if_zero(raw["min_avg_word_length"]),
                "max_mean_word_length": _off_if_zero(raw["max_avg_word_length"]),
                "min_alpha_token_share": _off_if_zero(raw["max_non_alpha_words_ratio"]),
                # datatrove with no stopwords drops every document; no list means no stopword check here
                "min_stopword_count": FINEWEB2_FIXED["gopher_quality"]["min_stopword_count"] if stopwords else None,
                "stopwords": stopwords,
            },
        },
        # FineWeb2's final touches: FTFYFormatter, PIIFormatter, SymbolLinesFormatter(["|"], "\n")
        "formatters": {
            "fix_text": {},
            "pii": {"replace_emails": True, "replace_public_ips": True},
            "table_artifacts": {"symbols": ["|"], "replace_with": "\n"},
        },
    }


# ---------------------------------------------------------------- YAML rendering (shared with calibration)

_FINEWEB2_NAMES = {
    "max_dup_line_share": "dup_line_frac", "max_top_ngram_char_share": "top_n_grams",
    "max_dup_ngram_char_share": "dup_n_grams", "min_punct_line_share": "line_punct_thr",
    "max_newline_token_ratio": "new_line_ratio", "min_mean_word_length": "min_avg_word_length",
    "max_mean_word_length": "max_avg_word_length", "min_alpha_token_share": "max_non_alpha_words_ratio",
    "stopwords": "stopwords",
}


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        value = round(value, 6)
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if any(ord(c) < 32 for c in text):
        return json.dumps(text, ensure_ascii=False)  # a JSON string is a double-quoted YAML string
    return yaml.safe_dump(text, allow_unicode=True, default_flow_style=True, width=10**6).strip().removesuffix(
        "\n...").strip()


def _flow(value: Any, indent: int = 6, width: int = 110) -> str:
    """One-line flow YAML; a long list wraps onto indented lines (starting on the line after its key)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        items = [_scalar(v) for v in value]
        one_line = "[" + ", ".join(items) + "]"
        if len(one_line) + indent + 20 <= width:
            return one_line
        lines, current = [], " " * indent + "["
        for i, item in enumerate(items):
            piece = item + ("," if i < len(items) - 1 else "]")
            if len(current) + len(piece) + 1 > width and current.strip() != "[":
                lines.append(current.rstrip())
                current = " " * (indent + 1)
            current += piece + " "
        lines.append(current.rstrip())
        return "\n" + "\n".join(lines)
    return _scalar(value)


def _ordered(settings: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """Settings in the order of the config dataclass's fields (unknown keys last)."""
    import dataclasses

    from curate.language_configs import filters as filters_module

    parent = filters_module.FiltersConfig if section == "filters" else filters_module.FormattersConfig
    hints = {f.name: f for f in dataclasses.fields(parent)}
    if name not in hints:
        return settings
    import typing

    hint = typing.get_type_hints(parent)[name]
    cls = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), hint)
    order = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    return {**{k: settings[k] for k in order if k in settings},
            **{k: v for k, v in settings.items() if k not in order}}


def render_config(data: dict[str, Any], header: str, notes: dict[str, str] | None = None) -> str:
    """YAML text of a config (plain data), with `header` as leading comments and FineWeb2's key names (or
    `notes[key]`) as end-of-line comments."""
    notes = notes or {}
    out = [f"# {line}".rstrip() for line in header.strip().splitlines()]
    for key in ("language", "script", "name"):
        out.append(f"{key}: {_scalar(data[key])}")
    lid = data["lid"]
    out += ["lid:", f"  model: {_scalar(lid['model'])}", f"  min_score: {_flow(lid['min_score'])}"]
    out.append(f"word_tokenizer: {_scalar(data.get('word_tokenizer'))}")
    for section_name in ("filters", "formatters"):
        section = data.get(section_name)
        if section is None:
            continue
        out.append(f"{section_name}:")
        for name, settings in section.items():
            if settings is None or not isinstance(settings, dict):
                out.append(f"  {name}: {_flow(settings)}")
                continue
            out.append(f"  {name}:" + (" {}" if not settings else ""))
            for key, value in _ordered(settings, section_name, name).items():
                note = notes.get(f"{name}.{key}") or notes.get(key)
                if note is None and key in _FINEWEB2_NAMES and section_name == "filters":
                    note = f"FineWeb2 {_FINEWEB2_NAMES[key]}"
                rendered = _flow(value)
                comment = f"  # {note}" if note else ""
                if rendered.startswith("\n"):  # a wrapped list: the comment stays on the key's line
                    out.append(f"    {key}:{comment}{rendered}")
                else:
                    out.append(f"    {key}: {rendered}{comment}")
    return "\n".join(out) + "\n"


def validate_text(text: str, where: str):
    """Parse and validate YAML config text (a ConfigError names the problem)."""
    from curate.language_configs.schema import LanguageConfig
    from curate.language_configs.validate import from_dict

    return from_dict(LanguageConfig, yaml.safe_load(text), where)


def import_fineweb2(path: str | Path) -> str:
    """Our YAML config text for FineWeb2's config file `path` (`…/configs/fin_Latn.yml`); save it as
    `language_configs/fin_Latn.yaml` (or in a `$CURATE_LANGUAGE_CONFIGS` folder)."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({error})") from None
    code = path.name.removesuffix(".yml").removesuffix(".yaml")
    data = convert_fineweb2(raw, code, str(path))
    header = (f"{data['name']} ({code}), imported from FineWeb2's configs/{code}.yml by "
              "`curate config import-fineweb2`:\nFineWeb2's per-language values, its pipeline's fixed settings, "
              "null where a check is off.\nKey meanings: language_configs/filters.py (and the README).")
    text = render_config(data, header)
    validate_text(text, f"import of {path}")
    return text
