"""Normalise language-ID labels to `iso639-3_Script` (the pipeline's language codes)."""

from __future__ import annotations

from functools import cache
from pathlib import Path

FT176_TABLE = Path(__file__).resolve().parent / "ft176_labels.tsv"

# ISO 639-3 macrolanguage codes a user may type, mapped to the member language a config is written for.
MACROLANGUAGES = {"est": "ekk", "nor": "nob", "ara": "arb", "zho": "cmn", "msa": "zsm", "fas": "pes",
                  "lav": "lvs", "swa": "swh", "uzb": "uzn", "aze": "azj", "mon": "khk", "nep": "npi",
                  "sqi": "als", "ori": "ory", "pus": "pbt", "kur": "kmr", "yid": "ydd", "mlg": "plt"}


@cache
def ft176_labels() -> dict[str, str]:
    """lid.176 label (`fi`) → `fin_Latn`."""
    rows = (line.split("\t") for line in FT176_TABLE.read_text(encoding="utf-8").splitlines())
    return {label: code for label, code in rows if not label.startswith("#")}


def normalise_label(label: str) -> str:
    """A model's label (`__label__fi`, `__label__fin_Latn`, `fi`) as `iso639-3_Script`; unknown labels pass through."""
    label = label.removeprefix("__label__")
    if "_" in label:
        return label
    return ft176_labels().get(label, label)


def code_for_label(code: str) -> str | None:
    """What a user's short code may mean: `fi` → `fin_Latn`, `est` → `ekk_Latn`; None if nothing fits."""
    if code in ft176_labels():
        return ft176_labels()[code]
    member = MACROLANGUAGES.get(code)
    if member is None:
        return None
    return next((c for c in ft176_labels().values() if c.startswith(member + "_")), None)
