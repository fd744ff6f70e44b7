"""Per-language quality: the blocks the graph builder places in stage 1 and stage 3, from a `LanguageConfig`.

```
stage 1:  WordTokens → FilterStatistics (→ PrecisionStatistics)      [MinHash reads the same `words`]
stage 3:  GopherRepetitionFilter → FineWebQualityFilter → GopherQualityFilter (→ C4Filter) (→ PrecisionFilter)
          then FixText → ReplacePii → RemoveTableArtifacts
```

`rule_statistic(reason)` maps a `drop_reason` to the statistic column its rule compared, and
`rule_threshold(reason, config)` to the bound it was compared with (for `curate inspect`).
"""

from __future__ import annotations

from curate.blocks.base import Block
from curate.blocks.filters import RULE_TABLE, Rule, rule_for, rule_statistic, rule_threshold, stage3_threshold_filters
from curate.blocks.formatters import formatter_blocks_of
from curate.blocks.precision import PrecisionFilter, PrecisionStatistics
from curate.blocks.statistics import FilterStatistics
from curate.blocks.words import WORDS, WordTokens
from curate.language_configs.schema import LanguageConfig

__all__ = [
    "RULE_TABLE",
    "Rule",
    "WORDS",
    "formatter_blocks",
    "rule_for",
    "rule_statistic",
    "rule_threshold",
    "stage1_blocks",
    "stage1_columns",
    "stage3_filter_blocks",
]


def stage1_blocks(config: LanguageConfig) -> list[Block]:
    """Word tokens (transient `words` column) and the filter statistics (`stat_*` columns to store)."""
    blocks: list[Block] = [WordTokens(config), FilterStatistics(config)]
    if config.filters.precision is not None:
        blocks.append(PrecisionStatistics(config.filters.precision))
    return blocks


def stage3_filter_blocks(config: LanguageConfig) -> list[Block]:
    """The heuristic filters (and the precision filter), comparing stored statistics with thresholds."""
    blocks = stage3_threshold_filters(config.filters)
    if config.filters.precision is not None:
        blocks.append(PrecisionFilter(config.filters.precision))
    return blocks


def formatter_blocks(config: LanguageConfig) -> list[Block]:
    """The switched-on formatters, to run after the filters."""
    return formatter_blocks_of(config.formatters)
