"""What an ablation writes: `results.json`, `table.md`, `bpb.png` under `<out>/<lang>/ablation/`, and
the `ablation` key of `<out>/<lang>/stats.json` (the report page renders it).

    stats.json["ablation"] = {"variants": {name: {"tokens": [...], "bpb": [...], "final_bpb": x,
                                                  "seeds": n, ...}},
                              "statistics": {...}, "order": [name, ...], "tokens": n, "model": "tiny",
                              "plot": "ablation/bpb.png", "table": "ablation/table.md"}

`order` lists the variants in pipeline order (JSON objects are written with sorted keys).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from curate.pipeline.ablation.corpora import BYTES_PER_TOKEN_BOUND
from curate.pipeline.execution.storage import Output
from curate.pipeline.publishing.plots import bpb_plot

if TYPE_CHECKING:
    from curate.pipeline.ablation.runner import Ablation, AblationSettings

PLOT_NAME = "bpb.png"
TABLE_NAME = "table.md"
RESULTS_NAME = "results.json"


def aggregate_runs(runs: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Variant → mean curve over its seeds (`tokens`, `bpb`, `loss`), per-point seed std and min/max,
    `final_bpb` (mean over seeds) and `seeds`."""
    aggregate = {}
    for variant, results in runs.items():
        tokens = results[0]["tokens"]
        if any(r["tokens"] != tokens for r in results):
            raise ValueError(f"the seeds of {variant} were evaluated at different token counts")
        bpb = np.array([r["bpb"] for r in results], dtype=float)
        loss = np.array([r["loss"] for r in results], dtype=float)
        spread = bpb.std(axis=0, ddof=1) if len(results) > 1 else np.zeros(bpb.shape[1])
        aggregate[variant] = {
            "tokens": list(tokens),
            "bpb": bpb.mean(axis=0).tolist(),
            "bpb_std": spread.tolist(),
            "bpb_min": bpb.min(axis=0).tolist(),
            "bpb_max": bpb.max(axis=0).tolist(),
            "loss": loss.mean(axis=0).tolist(),
            "final_bpb": float(bpb[:, -1].mean()),
            "final_bpb_std": float(spread[-1]) if len(results) > 1 else None,
            "final_loss": float(loss[:, -1].mean()),
            "seeds": len(results),
        }
    return aggregate


def _number(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(ablation: Ablation, language: str) -> str:
    """One row per variant (documents, trained tokens, final bpb ± seed std, gain over the first
    variant, monotonicity), one per curation step (gain, signal-to-noise), then the other statistics."""
    statistics, aggregate = ablation.statistics, ablation.aggregate
    names = list(aggregate)
    base = aggregate[names[0]]["final_bpb"]
    lines = [
        f"# Ablation of the curation steps: {language}", "",
        ("Held-out bits per byte of one small model per variant, trained on the same number of tokens "
         "(lower is better)."), "",
        ("| variant | documents | trained tokens | seeds | final bpb | seed std "
         f"| gain vs {names[0]} | final loss | monotonicity |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in names:
        row, corpus = aggregate[name], ablation.corpora[name]
        trained = int(np.mean([r["trained_tokens"] for r in ablation.runs[name]]))
        lines.append(f"| {name} | {corpus.documents:,} | {trained:,} | {row['seeds']} | {row['final_bpb']:.4f} "
                     f"| {_number(row['final_bpb_std'])} | {base - row['final_bpb']:+.4f} "
                     f"| {row['final_loss']:.4f} | {_number(statistics['monotonicity'][name], 3)} |")
    lines += ["", "| curation step | bpb gain | signal-to-noise |", "|---|---:|---:|"]
    lines += [f"| {s['from']} → {s['to']} | {s['gain']:+.4f} | {_number(s['snr'], 1)} |" for s in statistics["steps"]]
    lines += [
        "",
        f"- pooled seed std of the final bpb: {_number(statistics['pooled_seed_std'])}",
        (f"- gap between the best and worst variant: {_number(statistics['variant_gap'])}; "
         f"signal-to-noise: {_number(statistics['snr'], 1)}"),
        f"- ordering consistency (Kendall τ, second half): {_number(statistics['ordering_consistency'], 3)}",
        f"- best variant: {statistics['best']}",
    ]
    sampled = [f"{name} {corpus.fraction:.1%}" for name, corpus in ablation.corpora.items() if corpus.fraction < 1]
    if sampled:
        lines.append(f"- share of the documents sampled into the corpus (by document key, about tokens × "
                     f"{BYTES_PER_TOKEN_BOUND} bytes of text): {', '.join(sampled)}")
    lines += ["", ("Monotonicity is Spearman's ρ between tokens and −bpb (1: bpb fell at every evaluation). "
                   "Signal-to-noise needs two or more seeds (`--seeds 0,1`)."), ""]
    return "\n".join(lines)


def write_outputs(ablation: Ablation, language_root: Path, settings: AblationSettings) -> None:
    """`results.json`, `table.md` and `bpb.png` under `ablation/`, then the `ablation` key of `stats.json`
    (other keys kept)."""
    language = language_root.name
    output = Output(str(language_root))
    folder = str(ablation.folder)
    summary = {"variants": {name: {**row, "documents": ablation.corpora[name].documents}
                            for name, row in ablation.aggregate.items()},
               "statistics": ablation.statistics}
    output.write_json(f"{folder}/{RESULTS_NAME}", {
        **summary,
        "settings": dataclasses.asdict(settings),
        "corpora": {name: dataclasses.asdict(corpus) for name, corpus in ablation.corpora.items()},
        "runs": ablation.runs,
    })
    output.write_bytes(f"{folder}/{TABLE_NAME}", markdown_table(ablation, language).encode())
    output.write_bytes(f"{folder}/{PLOT_NAME}", bpb_plot(ablation.aggregate, language))
    stats_path = str(language_root / "stats.json")
    stats = output.read_json(stats_path) or {}
    stats["ablation"] = {**summary, "order": list(ablation.aggregate), "tokens": settings.tokens,
                         "model": settings.model,
                         "plot": f"ablation/{PLOT_NAME}", "table": f"ablation/{TABLE_NAME}"}
    output.write_json(stats_path, stats)
