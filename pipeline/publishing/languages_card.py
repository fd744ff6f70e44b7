"""The card of a release of several languages: `<out>/README.md`, one Hub config per language that released
documents (its own `<code>/data/`, as FineWeb2's dataset has one per language) and a table of every language,
those with no document included (a language with no page in the crawls read is a result, not an error)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from curate.errors import UserError
from curate.pipeline.execution.storage import Output
from curate.pipeline.publishing.card import DATA_GLOB, LICENSE, language_info, markdown_table, size_category

CARD_NAME = "README.md"


def language_rows(output: Output, codes: list[str]) -> list[dict[str, Any]]:
    """Per language: code, name, Hub code, pages read, pages identified as it, documents released, shards."""
    rows = []
    for code in codes:
        stats = output.read_json(output.language(code, "stats.json"))
        if not isinstance(stats, dict):
            raise UserError(f"no {output.language(code, 'stats.json')}: run `curate run --lang {code} --output "
                            f"{output.root}` first")
        info = language_info(output, code)
        shards = output.fs.glob(output.language(code, "data", "**", "*.parquet"))
        stage1 = stats.get("stage1") or {}
        rows.append({"code": info.code, "name": info.name, "hub_code": info.hub_code,
                     "read": int(stats.get("documents_read") or 0),
                     "identified": sum(int(v) for v in stage1.values()) if isinstance(stage1, Mapping) else 0,
                     "released": int((stats.get("released") or {}).get("documents") or 0), "shards": len(shards)})
    return rows


def render_languages_card(rows: list[dict[str, Any]], repo_id: str | None, license: str = LICENSE) -> str:
    """The card's text: front matter with a config per released language, then the per-language table."""
    released = [row for row in rows if row["released"]]
    meta = {
        "license": license,
        "language": sorted({row["hub_code"] for row in released}),
        "pretty_name": f"Web text in {len(released)} languages",
        "size_categories": [size_category(sum(row["released"] for row in released))],
        "task_categories": ["text-generation"],
        "tags": ["common-crawl", "fineweb-2", "curate"],
        "configs": [{"config_name": row["code"],
                     "data_files": [{"split": "train", "path": f"{row['code']}/{DATA_GLOB}"}]} for row in released],
    }
    repo = repo_id or "ORG/NAME"
    example = released[0]["code"] if released else "fin_Latn"
    lines = ["---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# Web text in {len(released)} languages", "",
             f"Common Crawl pages curated per language by curate (FineWeb2's recipe) in one run over {len(rows)} "
             f"languages; {len(rows) - len(released)} of them released no document (no page of theirs passed "
             "language ID and the filters in the crawls read). Each language is a config of its own, with its own "
             "card in its folder (`<code>/README.md`: funnel, filters, dedup, provenance).", "",
             "```python", "from datasets import load_dataset", "",
             f'ds = load_dataset("{repo}", name="{example}", split="train")', "```", "",
             "## Languages", ""]
    table = [[row["code"], row["name"], row["read"], row["identified"], row["released"], row["shards"]]
             for row in rows]
    lines += markdown_table(["config", "language", "pages read", "identified as the language", "documents released",
                             "shards"], table)
    return "\n".join(lines) + "\n"


def write_languages_card(output_root: str, codes: list[str], repo_id: str | None = None,
                         license: str = LICENSE) -> str:
    """Write `<out>/README.md` for `codes`; returns its path."""
    output = Output(output_root)
    path = output.path(CARD_NAME)
    output.write_bytes(path, render_languages_card(language_rows(output, codes), repo_id, license).encode("utf-8"))
    return path
