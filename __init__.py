"""curate: per-language web-data curation on Ray (Common Crawl → clean, deduplicated, rebalanced Parquet shards).

The repository root is this package: its folders are the sub-packages `curate.pipeline`, `curate.blocks`,
`curate.language_configs`, `curate.dedup`, `curate.rebalancing` and `curate.trainer` (mapped by
`[tool.setuptools.package-dir]` in pyproject.toml), `errors.py` holds the error types every layer shares, and
`__main__.py` makes `python -m curate` the `curate` command. Importing `curate` imports nothing heavy.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("curate-corpus")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "0+unknown"
