"""What a run's decontamination did, for the dataset card and the report (`stats["decontamination"]`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HEADER = ("set", "items", "documents removed", "items found", "content sha256")


def rows(section: Mapping[str, Any]) -> list[list[Any]]:
    return [[name, int(s.get("items", 0)), int(s.get("documents_removed", 0)), int(s.get("items_found", 0)),
             s.get("fingerprint", "")] for name, s in (section.get("sets") or {}).items()]


def sentence(section: Mapping[str, Any]) -> str:
    """`decontaminated against: fin_Latn (../flores200/fin_Latn.txt), …` with the matching rule and K."""
    sets = ", ".join(f"{name} (`{s.get('spec')}`)" for name, s in (section.get("sets") or {}).items())
    ignored = section.get("ignored") or []
    return (f"Decontaminated against: {sets}. A document sharing a {section.get('ngram_size')}-word n-gram with an "
            f"item (or, for shorter items, a whole paragraph), after case, punctuation and whitespace are folded, "
            f"was removed; n-grams found in more than {section.get('max_documents')} documents of the language are "
            f"common text and were ignored ({len(ignored)} this run).")


def card_lines(section: Any) -> list[str]:
    """The card's "Decontamination" section (none when the run decontaminated against nothing)."""
    if not isinstance(section, Mapping):
        return []
    from curate.pipeline.publishing.card import _table

    out = ["## Decontamination", "", sentence(section), ""]
    return out + _table(list(HEADER), rows(section))


def report_part(section: Any) -> str:
    """The report's "Decontamination" part."""
    if not isinstance(section, Mapping):
        return ""
    from curate.pipeline.publishing.report import _details, _p, _table

    ignored = [[i.get("text", ""), int(i.get("documents", 0))] for i in section.get("ignored") or []]
    index = (f"Index: {section.get('index_entries', 0):,} entries, {section.get('index_bytes', 0):,} bytes; "
             f"{section.get('items_not_indexed', 0):,} items too short to match; tokenizer "
             f"{section.get('tokenizer', '')}.")
    return ("<h3>Decontamination</h3>" + _p(sentence(section).replace("`", ""), "note") + _p(index, "note")
            + _table(HEADER, rows(section))
            + (_details(f"{len(ignored)} common n-grams ignored", _table(("n-gram", "documents"), ignored))
               if ignored else ""))
