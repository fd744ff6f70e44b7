"""The LID-first cascade's recall per language against the full path, on pages of every FLORES-200 half-0
language (tests/all_languages_mirror.py: real cc-sample100 templates with the language's text), one stage-1
pass over all languages at once, with lid.176 and with a GlotLID-format fastText model trained on FLORES-200
half 0 of every language (labels `fin_Latn`, run under the configs' `glotlid` settings).

Recall of a language = pages of it the cascade keeps / pages of it the full path (`--no-prefilter`) keeps. A run
of every language has languages CLD2 does not detect, so the cascade there is the LID pass alone; the CLD2 pass
is measured apart, as a single-language run of each language CLD2 detects would run it: of the language's pages
the full path keeps, those CLD2 lets through (`cld2` in the rows; `-` where CLD2 does not detect the language).
Prints a Markdown table (languages below 100 %, and the totals) and, with `--save`, writes every number as JSON.

    python benchmarks/prefilter_recall.py [--per-language 4] [--save recall.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.setup()
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from all_languages_mirror import HALF0, MIN_SENTENCES, build_languages_mirror, config_code  # noqa: E402
from prefilter_pages import run_stage1  # noqa: E402


def train_half0_model(out: Path) -> Path:
    """A small fastText LID model with config-code labels, trained on FLORES-200 half 0 of every language."""
    import fasttext

    lines = []
    for path in sorted(HALF0.glob("*.txt")):
        code = config_code(path.stem)
        sentences = [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]
        if code and len(sentences) >= MIN_SENTENCES:
            lines += [f"__label__{code} {sentence}" for sentence in sentences]
    random.Random(0).shuffle(lines)
    train = out.with_suffix(".txt")
    train.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(input=str(train), epoch=10, lr=0.5, dim=32, minn=2, maxn=4, minCount=1,
                                      bucket=200_000, seed=0, thread=2, verbose=0)
    model.save_model(str(out))
    return out


def page_htmls(warcs: list[Path]) -> dict[str, str]:
    """Every page of the mirror's WARCs: URL → HTML."""
    from collections import Counter

    from curate.blocks.warc import WarcReader

    found = {}
    for warc in warcs:
        with open(warc, "rb") as stream:
            for batch in WarcReader().read(stream, str(warc), "", Counter()):
                found.update(zip(batch["url"].to_pylist(), batch["html"].to_pylist()))
    return found


def recall(model: str, languages: list[str], warcs: list[Path], work: Path, model_path: Path | None,
           htmls: dict[str, str]) -> dict:
    from curate.blocks.prefilter import cld2_candidates
    from curate.language_configs.cld2 import detected_as
    from curate.pipeline.execution.graph import build_graph

    kept: dict[str, dict[str, set[str]]] = {"full": {}, "cascade": {}}
    for side, prefilter in (("full", False), ("cascade", True)):
        graph = build_graph(languages, lid=model, prefilter=prefilter, min_lid_score=None)
        if model_path is not None:
            graph.lid.model = str(model_path)
        for number, warc in enumerate(warcs):
            found, _ = run_stage1(graph, warc, work / f"{model}-{side}-{number}")
            for code, urls in found.items():
                kept[side].setdefault(code, set()).update(urls)
    rows = {}
    for code in languages:
        full = {u for u in kept["full"].get(code, set()) if code.lower().replace("_", "-") in u}
        cascade = {u for u in kept["cascade"].get(code, set()) if u in full}
        codes = detected_as([code])
        passed = int(cld2_candidates([htmls[u] for u in sorted(full)], codes).sum()) if codes else None
        rows[code] = {"full": len(full), "cascade": len(cascade), "cld2": passed}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-language", type=int, default=4)
    parser.add_argument("--save", type=Path)
    args = parser.parse_args()
    from curate.blocks.words import missing_requirement
    from curate.language_configs import load_language_config
    from curate.language_configs.labels import ft176_labels

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        mirror = build_languages_mirror(work / "mirror", per_language=args.per_language)
        warcs = sorted((work / "mirror").rglob("*.warc.gz"))
        runnable = [c for c in sorted(mirror.pages) if missing_requirement(load_language_config(c)) is None]
        labelled = set(ft176_labels().values())
        htmls = page_htmls(warcs)
        results = {"ft176": recall("ft176", [c for c in runnable if c in labelled], warcs, work, None, htmls),
                   "glotlid-format (FLORES half 0)": recall("glotlid", runnable, warcs, work,
                                                            train_half0_model(work / "half0.bin"), htmls)}
    for model, rows in results.items():
        full = sum(r["full"] for r in rows.values())
        cascade = sum(r["cascade"] for r in rows.values())
        detected = {c: r for c, r in rows.items() if r["cld2"] is not None}
        below = {c: r for c, r in rows.items()
                 if r["cascade"] < r["full"] or (r["cld2"] is not None and r["cld2"] < r["full"])}
        print(f"\n{model}: {len(rows)} languages, the full path keeps {full} pages, the cascade {cascade} of them "
              f"({cascade / max(full, 1):.1%}); of the {len(detected)} languages CLD2 detects, the full path keeps "
              f"{sum(r['full'] for r in detected.values())} pages and CLD2 lets "
              f"{sum(r['cld2'] for r in detected.values())} of them through; languages below 100 %: {len(below)}")
        print(common.table([[c, r["full"], r["cascade"], "-" if r["cld2"] is None else r["cld2"]]
                            for c, r in sorted(below.items())],
                           ["language", "full path keeps", "cascade keeps", "CLD2 lets through"]))
    if args.save:
        args.save.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
