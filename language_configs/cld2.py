"""What CLD2 can label: the languages Common Crawl's index labels with it (`content_languages`), the close
relatives it confuses them with, and CLD2's own codes for them (what `pycld2.detect` returns).

Codes: ours (`fin_Latn`), the index's ISO 639-3 codes (`fin`; macrolanguages as CLD2 knows them: `est`, `nor`,
`zho`, …) and CLD2's own (`fi`, `zh-Hant`, `iw`, `ceb`).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from curate.errors import UserError
from curate.language_configs.labels import MACROLANGUAGES

HERE = Path(__file__).resolve().parent


def _table(name: str) -> dict[str, str]:
    lines = (HERE / name).read_text(encoding="utf-8").splitlines()
    return dict(line.split("\t") for line in lines if line and not line.startswith("#"))


@cache
def detector_codes() -> dict[str, str]:
    """CLD2's own code → the index's code (`fi` → `fin`, `zh-Hant` → `zho`, `iw` → `heb`; `cld2_codes.tsv`)."""
    return _table("cld2_codes.tsv")


# The ISO 639-3 codes Common Crawl writes in `content_languages`: the languages CLD2 detects, as commoncrawl/
# language-detection-cld2 names them (Language.java). Macrolanguages, as CLD2 knows them: `est` (not `ekk`),
# `nor` (Bokmål; Nynorsk is `nno`), `ara`, `zho` (both scripts), `msa`, `fas`, `lav`, `swa`, `uzb`, ….
CLD2_CODES = frozenset(detector_codes().values())

# Closely related languages a page of the language may be labelled as (CLD2 reads FLORES-200's Rundi as
# Kinyarwanda: benchmarks/prefilter_recall.py; a Northern Sotho page has Tswana spans).
NEIGHBORS = {
    "fin": ("est",), "est": ("fin",),
    "nor": ("dan", "nno", "swe"), "nno": ("nor", "dan"), "dan": ("nor", "nno"), "swe": ("nor", "dan"),
    "msa": ("ind",), "ind": ("msa",),
    "bos": ("hrv", "srp"), "hrv": ("bos", "srp"), "srp": ("bos", "hrv"),
    "ces": ("slk",), "slk": ("ces",),
    "rus": ("ukr", "bel"), "ukr": ("rus", "bel"), "bel": ("rus", "ukr"),
    "zho": ("jpn",), "jpn": ("zho",),
    "run": ("kin",), "kin": ("run",),
    "sot": ("nso", "tsn"), "nso": ("sot", "tsn"), "tsn": ("sot", "nso"),
}

_MACRO_OF = {member: macro for macro, member in MACROLANGUAGES.items()}


def index_code(code: str) -> str:
    """The code the index writes for one of our languages: `fin_Latn` → `fin`, `ekk_Latn` → `est`,
    `cmn_Hani` → `zho`, `nob_Latn` → `nor`; UserError if CLD2 does not detect the language."""
    language = code.split("_")[0]
    cld2 = _MACRO_OF.get(language, language)
    if cld2 not in CLD2_CODES:
        raise UserError(f"Common Crawl's index cannot select {code}: CLD2 does not detect {language!r}; "
                        f"use --select full")
    return cld2


@cache
def cld2_languages() -> dict[str, str]:
    """Our codes the index can label → the code it writes (`fin_Latn` → `fin`, `ekk_Latn` → `est`): the languages
    CLD2 detects, in the scripts it reads them in (`cld2_languages.tsv`)."""
    return _table("cld2_languages.tsv")


def detected_as(languages: list[str]) -> tuple[str, ...] | None:
    """CLD2's own codes for our `languages` and their close relatives, sorted (`fin_Latn` → (`et`, `fi`)); None if
    CLD2 cannot label one of them."""
    labelled = cld2_languages()
    if any(code not in labelled for code in languages):
        return None
    wanted = {labelled[code] for code in languages}
    wanted |= {neighbor for code in list(wanted) for neighbor in NEIGHBORS.get(code, ())}
    return tuple(sorted(own for own, index in detector_codes().items() if index in wanted))
