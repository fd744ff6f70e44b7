"""What `curate run` takes (`RunOptions`): the one place where its options, their defaults and their help are
defined; `pipeline/cli/options.py` builds the command's options from these fields.

A light module: the command line imports it to build `curate --help`, so it imports nothing heavy. A default
whose home module is heavy comes from that module when a `RunOptions` is made (`default_factory`), or, where the
command line shows it, is written here and a test checks it equals its home's (`MAX_ERRORS` of `stage1.py`,
`DEFAULT_MIN_DOCS_PER_SIZE` of `rebalancing`).
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Any

from curate.errors import UserError

DEFAULT_SOURCE = "https://data.commoncrawl.org"

# Stage-1 Parquet bytes per bucket: at FineWeb2-like keep rates a bucket releases about one shard of SHARD_BYTES.
# A bucket task's memory does not grow with it (stage 3 and the final stage stream); it sets the task count.
BUCKET_BYTES = 1_000_000_000


@dataclass
class Resources:
    """What each task asks of Ray: CPUs, memory (bytes, None = no reservation) and retries on worker death."""

    cpus_per_task: float = field(default=1.0, metadata={"help": "CPUs Ray reserves per unit"})
    # bytes; `curate run --memory-per-task` takes MB
    memory_per_task: int | None = field(default=None, metadata={"help": "memory (MB) Ray reserves per unit"})
    max_retries: int = field(default=3, metadata={"help": "Ray retries of a unit whose worker died, before bisecting "
                                                          "it"})


def option(default: Any = dataclasses.MISSING, *, help: str, flags: tuple[str, ...] = (), minimum: int | None = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A `RunOptions` field with what `curate run` says of it: its help, its flags (default: `--field-name`) and the
    least value the command line accepts. `pipeline/cli/options.py` builds the command's options from these."""
    return field(default=default, default_factory=default_factory,
                 metadata={"help": help, "flags": flags, "minimum": minimum})


@dataclass
class RunOptions:
    """What `curate run` takes: the one place where its options and their defaults are defined (the command's
    options are built from these fields; a field without help is for the API only)."""

    languages: list[str] = option(flags=("--lang",), help="language(s): fin, fin_Latn, fin,ekk,swe, all (FineWeb2's "
                                                           "1,929 and the configured ones) or all-configured")
    snapshots: str = option(help="crawl globs, comma-separated: '2024-*', 'CC-MAIN-2024-1?'")
    source: str = option(DEFAULT_SOURCE, help="https://data.commoncrawl.org, s3://commoncrawl or a local mirror")
    output: str = option("out", flags=("--output", "-o"), help="output folder or fsspec URL")
    max_files: int | None = option(None, help="seeded sample of at most N WARCs per crawl")
    limit: int | None = option(None, help="read at most N response records per WARC")
    lid: str | None = option(None, help="LID model: glotlid, ft176 (offline; 176 languages, and it labels most "
                                        "Bosnian and Malay pages Croatian and Indonesian: docs/configs.md) or a path")
    lid_min_score: float | None = option(None, help="override the configs' LID threshold")
    extractor: str = option("trafilatura", help="trafilatura or resiliparse")
    # the LID-first cascade: extract only pages a cheap LID pass finds possibly the language
    prefilter: bool = option(True, flags=("--no-prefilter",),
                             help="extract every page (no cheap LID pass before extraction)")
    files_per_unit: int = option(8, help="at most N WARCs a unit (fewer for 4 units a worker)")
    buckets: int | None = option(None, help="buckets (doc_key ranges) per language for stage 3 and the shards "
                                            "(default: one per --bucket-bytes of stage-1 files)")
    bucket_bytes: int = option(BUCKET_BYTES, help="stage-1 Parquet bytes per bucket when --buckets is not given")
    num_cpus: int | None = option(None, flags=("--cpus",), help="CPUs of the local Ray (default: all)")
    resources: Resources = field(default_factory=Resources)  # its fields are options too (executor.py)
    rehydration: str = option("removal_rates", help="upsampling by cluster size: removal_rates (FineWeb2's rule, "
                                                    "from this run's statistics), fineweb2_fixed or none")
    max_repetitions: int = option(10, minimum=1, help="repetitions of the best-kept cluster size")
    # rebalancing.DEFAULT_MIN_DOCS_PER_SIZE (a test checks)
    rehydration_min_docs: int = option(100, minimum=1, help="cluster sizes with fewer "
                                                                                  "documents are pooled into the tail "
                                                                                  "entry")
    materialize: bool = option(False, help="write repeated rows instead of a weight")
    seed: int = option(0, help="seed of the file sample and of the shard shuffle")
    # released shards' target size (a bucket over it is cut in equal pieces)
    shard_bytes: int = field(default_factory=lambda: _default("curate.pipeline.execution.stages", "SHARD_BYTES"))
    # auto: index+neighbors where Common Crawl's index labels every language (CLD2's), else full; full: every record
    # of every WARC; index / index+neighbors: only the records the columnar index labels with the languages (+ closely
    # related ones), read by byte range (pipeline/sources/cc_index.py)
    select: str = option("auto", help="auto (index+neighbors where Common Crawl's index can label every language, "
                                      "else full; the run's first line says which), full (every record of every "
                                      "WARC), index (only the records Common Crawl's columnar URL index labels with "
                                      "the language, read by byte range) or index+neighbors (also closely related "
                                      "languages)")
    index_primary_only: bool = option(False, help="with --select index: only records whose first index language is "
                                                  "the language")
    index_records_per_unit: int = 20_000  # index selections: selected records per unit (~4 core-minutes)
    skip_quarantined: bool = option(False, help="keep files an earlier run quarantined out (default: retry them)")
    max_quarantined: int | None = option(None, help="fail the run when more files are quarantined (default: 1 % of "
                                                    "the files, at least 1)")
    # stage1.MAX_ERRORS (a test checks)
    max_errors: int = option(100, minimum=0, help="documents blocks may raise on (per language) before the run "
                                                         "stops: a bug in a block, not bad input")
    scorer_gpus: int | None = option(None, minimum=0, help="GPUs for the transformer scorers' actor pool (default: "
                                                           "every GPU of the cluster; 0: CPUs)")
    optout: str | None = option(None, help="opt-outs to honour: robots,tdm,list or none (default: each that has "
                                           "data; see docs/optout.md)")
    robots_agents: tuple[str, ...] = option(
        default_factory=lambda: _default("curate.blocks.optout", "DEFAULT_AGENTS"),
        help="user agents, comma-separated: a page is dropped if its host's robots.txt disallows any of them "
             "(default: CCBot and the AI-training crawlers, docs/optout.md)")
    robots_from: list[str] = option(default_factory=list, help="also use the robots.txt files of this crawl (e.g. "
                                                               "the latest; its WARCs are not read); repeatable")
    optout_lists: list[str] = option(default_factory=list, flags=("--optout-list",),
                                     help="takedown list (file or URL): one domain, host or URL prefix a line; "
                                          "repeatable; recorded in the output")
    decontaminate: list[str] = option(default_factory=list, help="evaluation sets to remove documents of: FILE (an "
                                                                 "item a line), FILE.jsonl#COL, FILE.parquet#COL or "
                                                                 "hf:ORG/DATA:CONFIG:SPLIT#COL, comma-separated or "
                                                                 "repeated (docs/decontamination.md)")

    def __post_init__(self) -> None:
        """Bad values end with one line, before anything runs."""
        at_least = {"--files-per-unit": (self.files_per_unit, 1), "--buckets": (self.buckets, 1),
                    "--max-files": (self.max_files, 1), "--limit": (self.limit, 1), "--cpus": (self.num_cpus, 1),
                    "--bucket-bytes": (self.bucket_bytes, 1), "--max-repetitions": (self.max_repetitions, 1),
                    "--max-retries": (self.resources.max_retries, 0),
                    "--max-quarantined": (self.max_quarantined, 0), "--max-errors": (self.max_errors, 0),
                    "--memory-per-task": (self.resources.memory_per_task, 1)}
        for flag, (value, minimum) in at_least.items():
            if value is not None and value < minimum:
                raise UserError(f"{flag} {value}: give a number of at least {minimum}")
        if self.rehydration not in ("removal_rates", "fineweb2_fixed", "none"):
            raise UserError(f"--rehydration {self.rehydration!r}: choose removal_rates, fineweb2_fixed or none")
        if self.resources.cpus_per_task <= 0:
            raise UserError(f"--cpus-per-task {self.resources.cpus_per_task}: give a positive number")
        from curate.pipeline.execution import optout

        optout.choose(self.optout)  # an unknown opt-out name ends here, before anything runs


def _default(module: str, name: str) -> Any:
    """A default whose home module is heavy, read when a `RunOptions` is made."""
    return getattr(importlib.import_module(module), name)
