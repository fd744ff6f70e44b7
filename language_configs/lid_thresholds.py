"""Per-language LID thresholds for lid.176 (`lid.min_score.ft176`), derived the way FineWeb2 derived its GlotLID
ones: from the score distribution of the language's documents, `max(0.3, min(0.9, median − σ))` (FineWeb2,
Penedo et al. 2025, arXiv:2506.20920; docs/configs.md says where the formula was read).

The documents are known text of the language made to look like what reaches LID on the web
(`reference.web_documents`: FLORES-200 sentences in web-length windows, boilerplate around them), scored by the
pipeline's own `LanguageId` block (same model file, same one-line normalisation; the derivation runs blocks, so
it is `pipeline/calibration/lid.py`'s). The scores are those of the documents lid.176 assigns to the language (a
run routes no other document to it). `curate calibrate --lid ft176` derives a threshold; `--write` records it in `lid_thresholds.tsv`, which `curate config import-fineweb2` reads,
and in the language's shipped config. A language without such text gets `FT176_DEFAULT_SCORE`, said so in its
config.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from functools import cache
from pathlib import Path

from curate.language_configs.validate import ConfigError

TABLE = Path(__file__).resolve().parent / "lid_thresholds.tsv"
RULE = "max(0.3, min(0.9, median − σ))"
FLOOR, CEILING = 0.3, 0.9
DOCUMENTS = 1000
SEED = 0
MIN_SENTENCES = 100  # `--lang all` derives no threshold from a file of fewer sentences (a placeholder)
MIN_KEPT = 0.8
"""A derived threshold keeps at least this share of the calibration documents lid.176 assigns to the language
(FineWeb2's rule does not promise it; the table's languages hold it, a test checks: docs/configs.md)."""
FT176_DEFAULT_SCORE = 0.65
"""lid.176 threshold of a language without known text to derive one from: datatrove's `LanguageFilter` default,
which FineWeb used for English with lid.176."""
MODELS = ("ft176",)
CONFUSIONS = TABLE.with_name("lid_confusions.tsv")
_CONFUSIONS_HEADER = ("# Languages lid.176 labels but gives most of their known text to another label (`labelled_as`): "
                      "no threshold is derived, the default applies, and a run names them. Written by `curate "
                      "calibrate --lid ft176 --lang all --write`.\n")
_HEADER = (f"# lid.176 thresholds per language: {RULE} of the lid.176 scores of web-like documents built from known "
           "text of the language (language_configs/lid_thresholds.py, docs/configs.md). Written by `curate "
           "calibrate --lid ft176 --write`; read by `curate config import-fineweb2`.\n")


@dataclass(frozen=True)
class LidCalibration:
    """A derived threshold and the distribution it comes from: `assigned` is the share of the documents the model
    gives the language, `median` and `sigma` are those of their scores, `kept` the share of all documents a run
    keeps with `min_score` (assigned and scored at or above it)."""

    code: str
    model: str
    min_score: float
    documents: int
    assigned: float
    median: float
    sigma: float
    kept: float
    reference: str

    def comment(self) -> str:
        """The YAML comment beside the threshold in a config: the method and the data."""
        return (f"{self.model}: {RULE} of {self.documents:,} web-like docs of {self.reference} "
                f"(keeps {self.kept:.1%}; docs/configs.md)")

    def summary(self) -> str:
        return (f"{self.code} lid.min_score.{self.model}: {self.min_score:g} — {RULE} over {self.documents:,} web-like "
                f"documents of {self.reference}: {self.assigned:.1%} assigned to {self.code}, median "
                f"{self.median:.3f}, σ {self.sigma:.3f}; keeps {self.kept:.1%}")


@dataclass(frozen=True)
class Confusion:
    """A language `model` labels but gives most of its known text to another (`labelled_as`): it keeps the
    default threshold, and a run says so (lid.176's Bosnian → Croatian, Malay → Indonesian: the model's limit)."""

    code: str
    model: str
    assigned: float
    labelled_as: str
    reference: str


def describe_reference(paths: Iterable[str | Path]) -> str:
    """File names with their folder (`flores200/fin_Latn.txt`), a folder of several as `fi/*.txt (6 files)`."""
    by_folder: dict[str, list[str]] = {}
    for path in map(Path, paths):
        by_folder.setdefault(path.parent.name, []).append(path.name)
    parts = []
    for folder, names in by_folder.items():
        suffix = Path(names[0]).suffix
        parts.append(f"{folder}/{names[0]}" if len(names) == 1 else f"{folder}/*{suffix} ({len(names)} files)")
    return " + ".join(parts)


def reference_files(folders: Iterable[str | Path], codes: Iterable[str]) -> dict[str, Path]:
    """`code` → its sentence file in the first of `folders` that has one: `fin_Latn.txt`, or FLORES-200's name
    for it (`est_Latn.txt` for ekk_Latn through the macrolanguage, `cmn_Hans.txt` for cmn_Hani)."""
    from curate.language_configs.labels import MACROLANGUAGES

    macro_of = {member: macro for macro, member in MACROLANGUAGES.items()}
    found = {}
    for code in codes:
        language, script = code.split("_")
        scripts = [script, "Hans", "Hant"] if script == "Hani" else [script]
        names = [f"{lang}_{s}.txt" for lang in (language, macro_of.get(language)) if lang for s in scripts]
        for folder in map(Path, folders):
            path = next((folder / name for name in names if (folder / name).is_file()), None)
            if path is not None:
                found[code] = path
                break
    return found


@cache
def derived_thresholds() -> dict[tuple[str, str], LidCalibration]:
    """(code, model) → its derived threshold, from `lid_thresholds.tsv`."""
    if not TABLE.is_file():
        return {}
    names = {f.name: f.type for f in fields(LidCalibration)}
    rows = csv.DictReader((line for line in TABLE.read_text(encoding="utf-8").splitlines()
                           if not line.startswith("#")), delimiter="\t")
    table = {}
    for row in rows:
        values = {k: (v if names[k] == "str" else int(v) if names[k] == "int" else float(v)) for k, v in row.items()}
        table[(row["code"], row["model"])] = LidCalibration(**values)
    return table


def confusions() -> dict[tuple[str, str], Confusion]:
    """(code, model) → its confusion, from `lid_confusions.tsv` (`curate calibrate --lid ft176 --lang all`)."""
    if not CONFUSIONS.is_file():
        return {}
    rows = csv.DictReader((line for line in CONFUSIONS.read_text(encoding="utf-8").splitlines()
                           if not line.startswith("#")), delimiter="\t")
    return {(row["code"], row["model"]): Confusion(row["code"], row["model"], float(row["assigned"]),
                                                   row["labelled_as"], row["reference"]) for row in rows}


def record_confusions(found: Iterable[Confusion]) -> None:
    """Write `lid_confusions.tsv` (replacing the rows of the languages in `found`)."""
    table = confusions() | {(c.code, c.model): c for c in found}
    lines = ["\t".join(f.name for f in fields(Confusion))]
    lines += ["\t".join(f"{v:g}" if isinstance(v, float) else str(v) for v in asdict(table[key]).values())
              for key in sorted(table)]
    CONFUSIONS.write_text(_CONFUSIONS_HEADER + "\n".join(lines) + "\n", encoding="utf-8")


def ft176_threshold(code: str) -> tuple[float, str]:
    """lid.176's threshold for `code` and the comment that says where it comes from."""
    derived = derived_thresholds().get((code, "ft176"))
    if derived is not None:
        return derived.min_score, derived.comment()
    return FT176_DEFAULT_SCORE, (f"ft176: the documented default, datatrove's LanguageFilter one: no known text "
                                 f"of {code} was scored to derive one (docs/configs.md)")


def record(calibration: LidCalibration) -> None:
    """Write `calibration` into `lid_thresholds.tsv` (replacing the language's row for the model)."""
    table = dict(derived_thresholds())
    table[(calibration.code, calibration.model)] = calibration
    columns = [f.name for f in fields(LidCalibration)]
    lines = ["\t".join(columns)]
    for key in sorted(table):
        lines.append("\t".join(f"{value:g}" if isinstance(value, float) else str(value)
                               for value in asdict(table[key]).values()))
    TABLE.write_text(_HEADER + "\n".join(lines) + "\n", encoding="utf-8")
    derived_thresholds.cache_clear()


_MIN_SCORE_LINE = re.compile(r"^(  min_score: )(\{[^}\n]*\})(?:[ \t]*#.*)?$", re.MULTILINE)


def set_config_threshold(text: str, model: str, value: float, comment: str) -> str:
    """Config YAML `text` with `lid.min_score.<model>` set to `value` and `comment` beside it; nothing else changes."""
    import yaml

    from curate.language_configs.fineweb2 import validate_text

    match = _MIN_SCORE_LINE.search(text)
    if match is None:
        raise ConfigError("the config has no one-line `  min_score: {…}` in its lid section to update")
    scores = yaml.safe_load(match[2]) | {model: value}
    flow = "{" + ", ".join(f"{name}: {score:g}" for name, score in scores.items()) + "}"
    updated = text[:match.start()] + f"{match[1]}{flow}  # {comment}" + text[match.end():]
    validate_text(updated, "the updated config")
    return updated
