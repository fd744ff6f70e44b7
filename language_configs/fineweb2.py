"""Import a FineWeb2 per-language config (`configs/<iso639-3>_<Script>.yml` of huggingface/fineweb-2) as ours.

FineWeb2's files hold only the per-language values; the rest of its filter settings are fixed in its
pipeline script (paragraph and Gopher line-character checks off, FineWeb duplicated-line characters at 0.1,
short lines off, at least 2 stopwords, Gopher's word-count, symbol, bullet and ellipsis defaults). The import
writes all of them out under our key names, and maps datatrove's "0 means off" values to `null`, so that the
imported config keeps and drops exactly what FineWeb2's pipeline keeps and drops:

| FineWeb2 key | ours |
|---|---|
| `language_score` | `lid.min_score.glotlid` |
| `dup_line_frac` | `filters.gopher_repetition.max_dup_line_share` (0 → null; above 1 → null, never drops) |
| `top_n_grams` [[n, share], …] | `filters.gopher_repetition.max_top_ngram_char_share` {n: share} (as is) |
| `dup_n_grams` [[n, share], …] | `filters.gopher_repetition.max_dup_ngram_char_share` {n: share} (as is) |
| `line_punct_thr` | `filters.fineweb_quality.min_punct_line_share` (0 → null: nothing is below 0) |
| `new_line_ratio` | `filters.fineweb_quality.max_newline_token_ratio` |
| `min_avg_word_length`, `max_avg_word_length` | `filters.gopher_quality.min_mean_word_length`, `max_…` (0 → null) |
| `max_non_alpha_words_ratio` (a minimum!) | `filters.gopher_quality.min_alpha_token_share` (0 → null) |
| `stopwords` | `filters.gopher_quality.stopwords` |
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import typing
import unicodedata
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from curate.language_configs.filters import FiltersConfig, FormattersConfig
from curate.language_configs.lid_thresholds import ft176_threshold
from curate.language_configs.tokenizer_packages import TOKENIZER_PACKAGES
from curate.language_configs.validate import ConfigError

CODE = re.compile(r"^([a-z]{3})_([A-Z][a-z]{3})$")

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
def tokenizer_assignment() -> dict[str, dict[str, str]]:
    """`fin_Latn` → its row of datatrove's tokenizer assignment table (name, tokenizer type, its language code)."""
    from datatrove.utils._import_utils import ASSETS_PATH

    with open(Path(ASSETS_PATH) / "tokenizer_assignment.csv", encoding="utf-8") as handle:
        return {f"{row['code_3']}_{row['script']}": row for row in csv.DictReader(handle)}


def datatrove_language_names() -> dict[str, str]:
    """`fin_Latn` → `Finnish`, from datatrove's tokenizer assignment table."""
    return {code: row["name"] for code, row in tokenizer_assignment().items()}


def tokenizer_note(code: str) -> str:
    """Which word tokenizer `word_tokenizer: datatrove` really uses for `code`, and what it needs."""
    row = tokenizer_assignment().get(code)
    if row is None or not row["type"]:
        return (f"datatrove assigns no word tokenizer to {code}: set word_tokenizer to datatrove:<code> (a related "
                "variety's) or unicode_words before running")
    note = f"datatrove's assignment for {code}: {row['type']}({row['tok_code']})"
    package = TOKENIZER_PACKAGES.get(row["type"])
    if package:
        note += (f".\nIt needs the {package.pip} package, not installed with curate (`pip install "
                 f"'curate-corpus[{package.extra}]'`); without it a run stops with one line, never with another "
                 "tokenizer")
    if row["type"] == "StanzaTokenizer":
        note += (f".\nIts model is Stanza's {row['tok_code']!r} tokenize model, read from Stanza's resources folder "
                 "($STANZA_RESOURCES_DIR, else ~/stanza_resources), never downloaded by a run: fetch it once with "
                 f"stanza.download('{row['tok_code']}', processors='tokenize')")
    return note


def _ft176_knows(code: str) -> bool:
    try:
        from curate.language_configs.labels import ft176_labels
    except ImportError:
        return False
    return code in ft176_labels().values()


def _off_if_zero(value: Any) -> float | None:
    """datatrove skips a check whose threshold is falsy; ours says so with null."""
    return None if not value else float(value)


def _line_share(value: Any) -> float | None:
    """`dup_line_frac`: 0 is off in datatrove, and above 1 no share of lines can pass it (null, with a note)."""
    value = _off_if_zero(value)
    return None if value is None or value > 1 else value


def _notes(raw: dict[str, Any], code: str) -> dict[str, str]:
    """End-of-line comments for FineWeb2 values that are written differently from how FineWeb2 writes them, and for
    the lid.176 threshold (where it comes from)."""
    notes = {}
    if _ft176_knows(code):
        notes["lid.min_score"] = ft176_threshold(code)[1]
    if float(raw["dup_line_frac"]) > 1:
        notes["max_dup_line_share"] = (f"FineWeb2 dup_line_frac {raw['dup_line_frac']}: above 1, which no share "
                                       "of lines exceeds (never drops)")
    return notes


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
    if _ft176_knows(code):  # lid.176's scores are not GlotLID's: its own threshold, derived or the default
        min_score["ft176"] = ft176_threshold(code)[0]
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
                "max_dup_line_share": _line_share(raw["dup_line_frac"]),
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


def _plain(value: Any) -> Any:
    """A value ready for YAML: floats rounded to 6 places, whole ones written as integers."""
    if isinstance(value, float) and not isinstance(value, bool):
        value = round(value, 6)
        return int(value) if value.is_integer() else value
    return value


def _flow(value: Any) -> Any:
    """Lists and mappings inside a section are written on one line (wrapped when long)."""
    if isinstance(value, dict):
        mapping = CommentedMap((k, _plain(v)) for k, v in value.items())
        mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_plain(v) for v in value)
        sequence.fa.set_flow_style()
        return sequence
    return _plain(value)


def _ordered(settings: dict[str, Any], section: str, name: str) -> dict[str, Any]:
    """Settings in the order of the config dataclass's fields (unknown keys last)."""
    parent = FiltersConfig if section == "filters" else FormattersConfig
    if name not in {f.name for f in dataclasses.fields(parent)}:
        return settings
    hint = typing.get_type_hints(parent)[name]
    cls = next((a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)), hint)
    order = [f.name for f in dataclasses.fields(cls)] if dataclasses.is_dataclass(cls) else []
    return {**{k: settings[k] for k in order if k in settings},
            **{k: v for k, v in settings.items() if k not in order}}


def _plain_word(value: str) -> bool:
    """Letters, marks, digits (then `.`, `'`, `-`, `_`): safe unquoted in any YAML reader, in flow lists too."""
    return bool(value) and all(unicodedata.category(c)[0] in "LMN" or (i and c in ".'-_") for i, c in enumerate(value))


def _represent_str(representer: Any, value: str) -> Any:
    """Words are written plain unless PyYAML (YAML 1.1, which reads our configs) would take them for something
    else (`on`, `no`); every other string is double-quoted, with escapes for what YAML would not keep."""
    as_plain = yaml.resolver.Resolver().resolve(yaml.ScalarNode, value, (True, False))
    style = None if _plain_word(value) and as_plain == "tag:yaml.org,2002:str" else '"'
    return representer.represent_scalar("tag:yaml.org,2002:str", value, style=style)


def _yaml() -> YAML:
    emitter = YAML()  # round-trip mode: comments and key order are kept

    class Emitter(emitter.Emitter):  # type: ignore[name-defined,misc]
        def write_double_quoted(self, text: str, split: bool = True) -> None:
            # never wrap inside a quoted string: ruamel may break between two escapes without the `\` that keeps
            # the break out of the value, and the line break then reads back as a space
            super().write_double_quoted(text, split=False)

    emitter.Emitter = Emitter
    emitter.representer.add_representer(str, _represent_str)
    emitter.representer.add_representer(
        type(None), lambda representer, _: representer.represent_scalar("tag:yaml.org,2002:null", "null"))
    emitter.width = 110
    emitter.allow_unicode = True
    emitter.indent(mapping=2, sequence=2, offset=0)
    return emitter


def render_config(data: dict[str, Any], header: str, notes: dict[str, str] | None = None) -> str:
    """YAML text of a config (plain data), with `header` as leading comments and FineWeb2's key names (or
    `notes[key]`) as end-of-line comments. Written by ruamel.yaml, so any string reads back as it was."""
    notes = notes or {}
    document = CommentedMap((key, _plain(data[key])) for key in ("language", "script", "name"))
    document["lid"] = CommentedMap([("model", data["lid"]["model"]), ("min_score", _flow(data["lid"]["min_score"]))])
    if notes.get("lid.min_score"):
        document["lid"].yaml_add_eol_comment(notes["lid.min_score"], "min_score")
    document["word_tokenizer"] = data.get("word_tokenizer")
    for section_name in ("filters", "formatters"):
        section = data.get(section_name)
        if section is None:
            continue
        out = document[section_name] = CommentedMap()
        for name, settings in section.items():
            if not isinstance(settings, dict):
                out[name] = _flow(settings)
                continue
            block = out[name] = CommentedMap()
            if not settings:
                block.fa.set_flow_style()
            for key, value in _ordered(settings, section_name, name).items():
                block[key] = _flow(value)
                note = notes.get(f"{name}.{key}") or notes.get(key)
                if note is None and key in _FINEWEB2_NAMES and section_name == "filters":
                    note = f"FineWeb2 {_FINEWEB2_NAMES[key]}"
                if note:
                    block.yaml_add_eol_comment(note, key)
    document.yaml_set_start_comment(header.strip())
    stream = io.StringIO()
    _yaml().dump(document, stream)
    return "\n".join(line.rstrip(" ") for line in stream.getvalue().split("\n"))


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
              "null where a check is off.\nKey meanings: language_configs/filters.py (and the README).\n"
              f"Word tokenizer: {tokenizer_note(code)}.")
    text = render_config(data, header, _notes(raw, code))
    validate_text(text, f"import of {path}")
    return text


def import_fineweb2_folder(folder: str | Path, out: str | Path) -> list[Path]:
    """Import every FineWeb2 config of `folder` (`*_*.yml`) into `out/<code>.yaml`; returns the files written.
    Every file is converted before any is written, so a bad one leaves `out` as it was."""
    paths = sorted(p for p in Path(folder).glob("*_*.yml"))
    if not paths:
        raise ConfigError(f"{folder}: no FineWeb2 config (<iso639-3>_<Script>.yml) in this folder")
    texts = {path.name.removesuffix(".yml"): import_fineweb2(path) for path in paths}
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for code, text in texts.items():
            (out / f"{code}.yaml").write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot write into {out}: {error.strerror}") from None
    return [out / f"{code}.yaml" for code in texts]
