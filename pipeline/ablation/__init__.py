"""`curate ablate`: FineWeb2's check that every curation step makes a better model at equal tokens.

From one `curate run` output, `build_corpora` writes the corpus each step gives (`raw`, `lid`,
`dedup`, `filtered`, `rehydrated`; see `corpora`), `run_ablation` trains one small model per
variant and seed with the project's trainer at the same token budget, evaluates held-out bits per
byte at regular token intervals, and writes `<out>/<lang>/ablation/` (results.json, table.md,
bpb.png) and the `ablation` key of `<out>/<lang>/stats.json`; `stats` holds the early-signal
statistics (monotonicity, signal-to-noise, ordering consistency).

    from curate.pipeline.ablation import AblationSettings, run_ablation
    ablation = run_ablation("out", "fin", AblationSettings(tokens=20_000_000,
                            eval_texts=["flores200/fin_Latn.txt"], seeds=[0, 1]))
"""

from curate.pipeline.ablation.corpora import VARIANTS, Corpus, build_corpora, parse_variants
from curate.pipeline.ablation.runner import Ablation, AblationSettings, parse_seeds, parse_tokens, run_ablation

__all__ = ["VARIANTS", "Ablation", "AblationSettings", "Corpus", "build_corpora", "parse_seeds",
           "parse_tokens", "parse_variants", "run_ablation"]
