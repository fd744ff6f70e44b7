"""Stage-3 scorers, built from a language config's `scorers:` section (see `language_configs/scorers.py`).

```
web_docs → quality → toxicity (word list) → toxicity_classifier → adult_domain → perplexity → transformers
```

| block | columns | drop reason (threshold set) | module |
|---|---|---|---|
| `WebDocsScore` | `web_docs_score` (0–10) | `web_docs.score_low` | `blocks/score_web_docs.py` |
| `QualityClassifier` | `quality_score` (P(label)) | `quality.score_low` | `blocks/score_quality.py` |
| `ToxicityLexicon` | `toxicity_share`, `toxicity_count` | `toxicity.share_high` | `blocks/score_toxicity.py` |
| `ToxicityClassifier` | `toxicity_score` (P(label)) | `toxicity_classifier.score_high` | `blocks/score_toxicity.py` |
| `AdultDomain` | `adult_domain` | — | `blocks/score_toxicity.py` |
| `Perplexity` | `perplexity` (KenLM, CCNet) | `perplexity.perplexity_high` | `blocks/score_perplexity.py` |
| `TransformerScores` | one or two columns per named model | `<name>.score_low/score_high/label` | `blocks/score_transformer.py` |

Each block's `check()` loads its model or list on the driver before the run, so a missing model, an unreachable
Hub or a wrong label stops the run with one line; nothing is skipped silently.
"""

from __future__ import annotations

from curate.blocks.base import Block
from curate.blocks.score_perplexity import Perplexity
from curate.blocks.score_quality import QualityClassifier
from curate.blocks.score_toxicity import AdultDomain, ToxicityClassifier, ToxicityLexicon
from curate.blocks.score_transformer import TransformerScorer, TransformerScores
from curate.blocks.score_web_docs import WebDocsScore
from curate.blocks.words import UNSPACED_SCRIPTS
from curate.language_configs.schema import LanguageConfig

__all__ = ["scorer_blocks", "scorer_columns"]


def scorer_blocks(config: LanguageConfig) -> list[Block]:
    """The switched-on scorers of a language, in the order above."""
    scorers, code = config.scorers, config.code
    blocks: list[Block] = []
    if scorers.web_docs is not None:
        blocks.append(WebDocsScore(scorers.web_docs))
    if scorers.quality is not None:
        quality = scorers.quality
        blocks.append(QualityClassifier(quality.model, quality.label, quality.min_score, code))
    toxicity = scorers.toxicity
    if toxicity is not None:
        if toxicity.words is not None:
            blocks.append(ToxicityLexicon(toxicity.words, config.script in UNSPACED_SCRIPTS, toxicity.max_share,
                                          code))
        if toxicity.classifier is not None:
            classifier = toxicity.classifier
            blocks.append(ToxicityClassifier(classifier.model, classifier.label, classifier.max_score, code))
        if toxicity.adult_domains:
            blocks.append(AdultDomain())
    if scorers.perplexity is not None:
        blocks.append(Perplexity(scorers.perplexity, code))
    if scorers.transformers:
        blocks.append(TransformerScores([TransformerScorer(name, settings, code)
                                         for name, settings in scorers.transformers.items()]))
    return blocks
