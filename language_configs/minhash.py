"""The `dedup` section: MinHash-LSH near-dedup and exact dedup settings."""

from __future__ import annotations

from dataclasses import dataclass

from curate.language_configs.validate import ConfigError


@dataclass(frozen=True)
class DedupConfig:
    """Global dedup of one language across every selected crawl, before the quality filters (FineWeb2's order).

    enabled: MinHash-LSH near-dedup: documents whose word n-gram sets are similar share a duplicate cluster;
        every document gets `minhash_cluster_id` / `minhash_cluster_size` (singletons: size 1) and one
        document per cluster is kept (the others: drop_reason `dedup.minhash`).
    ngram_size: words per shingle (of the normalised text: lowercase, no accents, no punctuation, digits → 0).
    bands × rows_per_band = number of hash permutations (14 × 8 = 112, FineWeb2's setting): two documents
        with Jaccard similarity J share a band, and so a cluster, with probability 1 − (1 − J^rows)^bands
        (0.92 at J = 0.8, 0.05 at J = 0.5).
    seed: seed of the hash permutations (fixed so signatures are comparable across runs and machines).
    exact: also remove documents whose normalised text is identical to another's (`dedup.exact`).
    by_url: also remove documents whose URL is that of another kept document (`dedup.url`; decided among
        the documents the two other methods keep).
    """

    enabled: bool = True
    ngram_size: int = 5
    bands: int = 14
    rows_per_band: int = 8
    seed: int = 1
    exact: bool = True
    by_url: bool = False

    def __post_init__(self) -> None:
        for name in ("ngram_size", "bands", "rows_per_band"):
            if getattr(self, name) < 1:
                raise ConfigError(f"dedup.{name}: at least 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ConfigError(f"dedup.seed: a non-negative integer, got {self.seed}")

    @property
    def num_permutations(self) -> int:
        return self.bands * self.rows_per_band

