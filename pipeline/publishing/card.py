"""The dataset card of one language: `<out>/<lang>/README.md` with Hub YAML front matter, and its plots.

`write_card(out, "fin")` reads what a run left (`<lang>/stats.json`, the unit manifests' provenance under
`_work/manifests/`, the released shards `<lang>/data/*.parquet`) and writes the card and
`<lang>/images/*.png`. The front matter's one config points at `data/**/*.parquet`, so
`datasets.load_dataset(<folder>)` and the Hub read only the released shards, never `_work/`. Every shard mixes
the crawls (a Hub config selects files, not rows): the card shows how to select one by its `dump` column.

Counts come from `stats.json` (per stage and rule) and from the shards themselves (documents, words and
characters per crawl, from the `dump` column; bytes per shard): the shards are what is released. Optional parts appear when the run
recorded them: `dedup` (cluster-size histogram), `rehydration` (step table and method), score columns
(`*_score`, `perplexity`) and a `weight` column.
"""

from __future__ import annotations

import logging
import math
import re
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from curate.errors import UserError
from curate.pipeline.execution.storage import Output
from curate.pipeline.publishing import decontamination

log = logging.getLogger("curate")

LICENSE = "odc-by"  # FineWeb2's license (ODC-By 1.0), also subject to Common Crawl's terms of use
CHARS_PER_TOKEN = 4.0  # rule of thumb for English-centric BPE tokenizers; see the card's note on tokens
SCORE_SAMPLE = 200_000  # score values kept per column for plots and quantiles (an even stride over rows)
READ_BATCH_ROWS = 8_192
DATA_GLOB = "data/**/*.parquet"
LANGUAGE_SCORE = "language_score"
WEIGHT = "weight"
# What `str.split()` splits on, for RE2: ASCII whitespace, \v, the separators \x1c-\x1f, NEL and Unicode Z*.
WORD_PATTERN = r"[^\s\v\x1c-\x1f\x85\p{Z}]+"

# The Hub's size categories (datasets/utils/resources/size_categories.json), by document count.
SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                   (10_000_000_000, "1B<n<10B"), (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T")]


def size_category(documents: int) -> str:
    """The Hub's `size_categories` bucket for a number of rows (`1K<n<10K` holds 1,000 to 9,999)."""
    for upper, name in SIZE_CATEGORIES:
        if documents < upper:
            return name
    return "n>1T"


@dataclass
class LanguageInfo:
    """Who the card is about: `code` (`fin_Latn`), English name, Hub language code (ISO 639-1 if any)."""

    code: str
    name: str
    hub_code: str
    config_file: str | None = None


def language_info(output: Output, language: str) -> LanguageInfo:
    """Resolve `fin` / `fi` / `fin_Latn` through the language configs; a folder without a config still works."""
    from curate.language_configs import ConfigError, load_language_config
    from curate.language_configs.schema import config_path

    try:
        config = load_language_config(language)
    except ConfigError as error:
        if output.fs.exists(output.language(language, "stats.json")):
            iso = language.split("_")[0]
            return LanguageInfo(language, language, hub_language_code(iso, language))
        raise UserError(str(error)) from None
    try:
        config_file = config_path(config.code).name
    except ConfigError:
        config_file = None
    return LanguageInfo(config.code, config.name, hub_language_code(config.language, config.code), config_file)


def hub_language_code(iso639_3: str, code: str) -> str:
    """ISO 639-1 when one exists (`fin` → `fi`, `ekk` → `et`), else the ISO 639-3 code, as the Hub accepts both."""
    from curate.language_configs.labels import ft176_labels

    two_letter = sorted(label for label, target in ft176_labels().items()
                        if len(label) == 2 and target.split("_")[0] == iso639_3)
    exact = [label for label in two_letter if ft176_labels()[label] == code]
    return (exact or two_letter or [iso639_3])[0]


# --- what the shards hold ---------------------------------------------------------------------------------------
@dataclass
class Shard:
    """One released Parquet file: its path relative to the language folder and what it holds."""

    path: str
    documents: int
    bytes: int
    words: int = 0
    characters: int = 0


@dataclass
class Crawl:
    """What the released shards hold of one crawl (rows whose `dump` is it)."""

    documents: int = 0
    words: int = 0
    characters: int = 0


@dataclass
class Released:
    """The released shards of one language, summarised."""

    shards: list[Shard]
    columns: list[tuple[str, str]]
    crawls: dict[str, Crawl] = field(default_factory=dict)
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    score_stride: int = 1
    weight_sum: float | None = None

    @property
    def documents(self) -> int:
        return sum(s.documents for s in self.shards)

    @property
    def words(self) -> int:
        return sum(s.words for s in self.shards)

    @property
    def characters(self) -> int:
        return sum(s.characters for s in self.shards)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.shards)

    def per_dump(self) -> dict[str, Crawl]:
        """Documents, words and characters per crawl over every shard, by crawl id ("" without `dump`)."""
        return dict(sorted(self.crawls.items()))


def is_score_column(name: str, type_: pa.DataType) -> bool:
    """`*_score` and `perplexity` / `*_perplexity` numeric columns (`language_score` included)."""
    numeric = pa.types.is_floating(type_) or pa.types.is_integer(type_)
    return numeric and (name.endswith("_score") or name == "perplexity" or name.endswith("_perplexity"))


def shard_paths(output: Output, code: str) -> list[str]:
    """The released shards, `data/**/*.parquet`, sorted (fsspec paths)."""
    return sorted(output.fs.glob(output.language(code, "data", "**", "*.parquet")))


def read_released(output: Output, code: str, allow_empty: bool = False) -> Released:
    """Count documents, words (whitespace split), characters and bytes per shard; sample score columns.
    `allow_empty`: a language its run released nothing of (its stats say 0) is an empty `Released`."""
    paths = shard_paths(output, code)
    if not paths and allow_empty:
        return Released([], [])
    if not paths:
        raise UserError(f"no released shards under {output.url(code, 'data')}: "
                        f"run `curate run --lang {code} --output {output.root}` first")
    prefix = output.language(code) + "/"
    files = []
    total_rows = 0
    for path in paths:
        handle = output.fs.open(path, "rb")
        parquet = pq.ParquetFile(handle)
        files.append((path, handle, parquet))
        total_rows += parquet.metadata.num_rows
    schema = files[0][2].schema_arrow
    columns = [(f.name, str(f.type)) for f in schema]
    score_names = sorted((f.name for f in schema if is_score_column(f.name, f.type)),
                         key=lambda n: (n != LANGUAGE_SCORE, n))
    has_weight = WEIGHT in schema.names
    stride = max(1, math.ceil(total_rows / SCORE_SAMPLE))
    samples: dict[str, list[np.ndarray]] = {name: [] for name in score_names}
    weight_sum = 0.0
    offset = 0
    shards = []
    crawls: dict[str, Crawl] = defaultdict(Crawl)
    for path, handle, parquet in files:
        relative = path[len(prefix):] if path.startswith(prefix) else path.split(f"/{code}/", 1)[-1]
        shard = Shard(relative, parquet.metadata.num_rows, int(output.fs.size(path)))
        present = set(parquet.schema_arrow.names)
        wanted = ["text", *[n for n in score_names if n in present], *([WEIGHT] if WEIGHT in present else []),
                  *(["dump"] if "dump" in present else [])]
        with handle:
            for batch in parquet.iter_batches(batch_size=READ_BATCH_ROWS, columns=wanted):
                text = batch.column("text")
                words = pc.fill_null(pc.count_substring_regex(text, WORD_PATTERN), 0)
                characters = pc.fill_null(pc.utf8_length(text), 0)
                shard.words += int(pc.sum(words).as_py() or 0)
                shard.characters += int(pc.sum(characters).as_py() or 0)
                dumps = batch.column("dump") if "dump" in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
                per_dump = pa.table({"dump": pc.fill_null(dumps, ""), "words": words, "characters": characters})
                for row in per_dump.group_by("dump").aggregate(
                        [("words", "sum"), ("characters", "sum"), ("dump", "count")]).to_pylist():
                    crawl = crawls[row["dump"]]
                    crawl.documents += row["dump_count"]
                    crawl.words += row["words_sum"]
                    crawl.characters += row["characters_sum"]
                start = (-offset) % stride
                for name in score_names:
                    if name in batch.schema.names:
                        values = batch.column(name).to_numpy(zero_copy_only=False).astype(float, copy=False)
                        samples[name].append(values[start::stride])
                if WEIGHT in batch.schema.names:
                    weight_sum += float(pc.sum(batch.column(WEIGHT)).as_py() or 0)
                offset += batch.num_rows
        shards.append(shard)
    scores = {name: np.concatenate(parts) if parts else np.array([]) for name, parts in samples.items()}
    return Released(shards, columns, dict(crawls), scores, stride, weight_sum if has_weight else None)


# --- provenance from the manifests -----------------------------------------------------------------------------
@dataclass
class Provenance:
    """Versions, commits and model hashes recorded by the manifests of the units that made one language."""

    versions: dict[str, list[str]] = field(default_factory=dict)
    models: dict[str, list[str]] = field(default_factory=dict)
    git_commits: list[str] = field(default_factory=list)
    first_commit_time: str | None = None
    last_commit_time: str | None = None
    manifests: int = 0


def read_provenance(output: Output, code: str) -> Provenance:
    """Merge the `provenance` of `_work/manifests/<stage>/*.json`.

    A stage whose units are per language (`fin_Latn-00003.json`) contributes only this language's units;
    a shared stage (stage 1, one unit per group of WARCs for every language) contributes all of its units.
    """
    paths = sorted(output.fs.glob(output.path("_work", "manifests", "*", "*.json")))
    by_stage: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        by_stage[path.rsplit("/", 2)[-2]].append(path)
    versions: dict[str, set[str]] = defaultdict(set)
    models: dict[str, set[str]] = defaultdict(set)
    commits: set[str] = set()
    times: list[str] = []
    count = 0
    for stage_paths in by_stage.values():
        own = [p for p in stage_paths if p.rsplit("/", 1)[-1].startswith(f"{code}-")]
        for path in own or stage_paths:
            manifest = output.read_json(path)
            if not isinstance(manifest, dict):
                continue
            count += 1
            if manifest.get("committed"):
                times.append(str(manifest["committed"]))
            recorded = manifest.get("provenance") or {}
            for name, version in (recorded.get("versions") or {}).items():
                versions[name].add(str(version))
            for name, value in (recorded.get("models") or {}).items():
                models[name].add(str(value))
            if recorded.get("git_commit"):
                commits.add(str(recorded["git_commit"]))
    return Provenance({k: sorted(v) for k, v in sorted(versions.items())},
                      {k: sorted(v) for k, v in sorted(models.items())}, sorted(commits),
                      min(times) if times else None, max(times) if times else None, count)


# --- optional stats sections -----------------------------------------------------------------------------------
def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def int_keyed(value: Any) -> dict[int, int] | None:
    """`value` as {int: int} sorted by key (JSON writes keys as strings), or None if it is not such a mapping."""
    if not isinstance(value, Mapping) or not value:
        return None
    parsed = {}
    for key, count in value.items():
        key_int, count_int = _as_int(key), _as_int(count)
        if key_int is None or count_int is None:
            return None
        parsed[key_int] = count_int
    return dict(sorted(parsed.items()))


def find_table(value: Any, preferred: tuple[str, ...]) -> dict[int, int] | None:
    """An {int: int} table: `value` itself, else under one of `preferred` keys, else the first nested one."""
    direct = int_keyed(value)
    if direct is not None or not isinstance(value, Mapping):
        return direct
    for key in (*preferred, *value):
        table = int_keyed(value.get(key))
        if table is not None:
            return table
    return None


def dedup_histogram(stats: Mapping[str, Any]) -> dict[int, int] | None:
    """{cluster size: clusters} of the run's MinHash dedup (`stats["dedup"]["minhash"]["histogram"]`), if any."""
    minhash = (stats.get("dedup") or {}).get("minhash")
    return int_keyed(minhash.get("histogram")) if isinstance(minhash, Mapping) else None


def scalars(value: Any) -> dict[str, Any]:
    """The scalar entries of a stats section (numbers, strings), for a small key/value table."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, (int, float, str)) and not isinstance(v, bool)}


def count_stages(stats: Mapping[str, Any]) -> dict[str, dict[str, int]]:
    """Sections of `stats.json` that count documents per outcome (`kept` and `<block>.<rule>`), in file order."""
    stages = {}
    for key, value in stats.items():
        table = value if isinstance(value, Mapping) else None
        if table and "kept" in table and all(_as_int(v) is not None for v in table.values()):
            stages[key] = {str(k): int(v) for k, v in table.items()}
    return stages


# --- rendering -------------------------------------------------------------------------------------------------
def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    return f"{n:,.1f} TB"


def size_range(first: int, next_first: int | None) -> str:
    """A step table run as text: `5–99`, `2` (a run of one size) or `1,000+` (the last run)."""
    if next_first is None:
        return f"{first:,}+"
    return f"{first:,}" if next_first == first + 1 else f"{first:,}–{next_first - 1:,}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table (numbers with thousands separators), then an empty line."""
    return _table(header, rows)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:,.4g}"
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def front_matter(info: LanguageInfo, released: Released, license: str) -> dict[str, Any]:
    """The Hub's YAML metadata: license, language, size category, and one config over `data/**` only (every
    shard mixes the crawls: a per-crawl config would select files, not rows)."""
    configs: list[dict[str, Any]] = [{"config_name": "default", "data_files": [{"split": "train", "path": DATA_GLOB}]}]
    return {
        "license": license,
        "language": [info.hub_code],
        "pretty_name": f"{info.name} web text ({info.code})",
        "size_categories": [size_category(released.documents)],
        "task_categories": ["text-generation"],
        "tags": ["common-crawl", "fineweb-2", "curate"],
        "configs": configs,
    }


OPTOUT_COLUMNS = ("robots", "robots_unreachable", "tdm", "list")


def optout_lines(optout: Any) -> list[str]:
    """The card's "Opt-outs" section from `stats["optout"]`: what was honoured, with which agents and lists,
    and per crawl the documents each opt-out removed (none when the run recorded no opt-outs)."""
    if not isinstance(optout, Mapping):
        return []
    applied = list(optout.get("applied") or [])
    out = ["## Opt-outs", ""]
    if not applied:
        return out + ["No machine-readable opt-outs were applied to this data.", ""]
    said = []
    if "robots" in applied:
        agents = ", ".join(f"`{a}`" for a in optout.get("agents") or [])
        said.append("pages whose host's newest robots.txt among the crawls read (as Common Crawl fetched it) "
                    f"disallows any of these user agents were removed: {agents} (RFC 9309; a robots.txt that "
                    "answered 5xx is a complete disallow, `robots_unreachable`)")
    if "tdm" in applied:
        said.append("pages reserving text-and-data-mining rights under the W3C TDM Reservation Protocol "
                    "(`tdm-reservation: 1` header or meta tag) were removed")
    if "list" in applied:
        lists = ", ".join(f"`{item.get('source')}` ({int(item.get('entries', 0)):,} entries, "
                          f"{digest_label(str(item.get('digest')))})" for item in optout.get("lists") or [])
        said.append(f"documents on the takedown / opt-out lists {lists} were removed")
    sentence = "; ".join(said)
    out += [sentence[0].upper() + sentence[1:] + ".", ""]
    crawls = optout.get("robots_crawls") or {}
    unavailable = [c for c, available in crawls.items() if not available]
    if "robots" in applied or crawls:
        if unavailable and len(unavailable) == len(crawls):
            out += [f"No robots.txt file was available for {', '.join(unavailable)}: no page was checked against "
                    "robots.txt.", ""]
        elif unavailable:
            out += [f"robots.txt files were not available for {', '.join(unavailable)}: its pages were checked "
                    "only against the robots.txt files of the other crawls read.", ""]
    per_crawl = optout.get("per_crawl") or {}
    rows = []
    for crawl in sorted(set(per_crawl) | set(crawls)):
        counts = per_crawl.get(crawl) or {}
        robots = "yes" if crawls.get(crawl) else ("not available" if crawl in crawls else "not used")
        rows.append([crawl, robots, *(int(counts.get(c, 0)) for c in OPTOUT_COLUMNS)])
    if rows:
        out += ["Documents removed per crawl (robots.txt and TDM before language ID, of every language read; "
                "lists of this language):", ""]
        out += _table(["crawl", "robots.txt", *OPTOUT_COLUMNS], rows)
    return out


def render_card(info: LanguageInfo, stats: Mapping[str, Any], released: Released, provenance: Provenance,
                images: Mapping[str, str], *, license: str = LICENSE, repo_id: str | None = None,
                chars_per_token: float = CHARS_PER_TOKEN) -> str:
    """The card's Markdown (front matter included) from the numbers; `images` maps a plot's key to its path."""
    meta = yaml.safe_dump(front_matter(info, released, license), sort_keys=False, allow_unicode=True, width=1000)
    per_dump = released.per_dump()
    dumps = [d for d in per_dump if d]
    stages = count_stages(stats)
    histogram = dedup_histogram(stats)
    rehydration = stats.get("rehydration")
    step_table = find_table(rehydration, ("table", "step_table", "weights", "repetitions"))
    tokens = round(released.characters / chars_per_token)
    repo = repo_id or "<org>/<name>"
    out: list[str] = ["---", meta.rstrip(), "---", "", f"# {info.name} web text ({info.code})", ""]

    lid_models = sorted(k.split(":", 1)[1] for k in provenance.models if k.startswith("lid_model:"))
    steps = ["text extracted from Common Crawl HTML with trafilatura",
             f"identified as {info.name} by language ID" + (f" ({', '.join(lid_models)})" if lid_models else "")]
    steps.append("filtered with FineWeb2's heuristic filters" + (f" (`{info.config_file}`)" if info.config_file else ""))
    if histogram is not None:
        steps.append("near-deduplicated with MinHash")
    if step_table is not None:
        steps.append("rehydrated (documents from duplicate clusters weighted by cluster size)")
    crawls = f"{len(dumps)} Common Crawl snapshot{'s' if len(dumps) != 1 else ''}"
    out += [f"{released.documents:,} {info.name} documents (~{released.words:,} words) from {crawls}"
            f"{' (' + ', '.join(dumps) + ')' if dumps else ''}: " + ", ".join(steps) + ". "
            "Made with curate, a per-language curation pipeline in the FineWeb2 tradition; "
            "the columns follow FineWeb2's release.", ""]

    out += ["## Loading", "", "```python", "from datasets import load_dataset", "",
            f'ds = load_dataset("{repo}", split="train")  # every crawl']
    if dumps:
        out.append(f'one_crawl = ds.filter(lambda row: row["dump"] == "{dumps[-1]}")')
    out += ["```", "", "```python", "import polars as pl", "",
            f'df = pl.scan_parquet("hf://datasets/{repo}/{DATA_GLOB}")']
    if dumps:
        out.append(f'one_crawl = df.filter(pl.col("dump") == "{dumps[-1]}")')
    out += ["```", "",
            "Every shard is a seeded random sample of the documents of every crawl, so any prefix of the shards "
            "holds the crawls in proportion; the `dump` column says which crawl a document comes from. A local "
            "copy of this folder loads the same way (`load_dataset(\"path/to/folder\")`): the `configs` above "
            "point at `data/` only.", ""]

    out += ["## Size", ""]
    size_rows: list[list[Any]] = [["documents", released.documents], ["words (whitespace-separated)", released.words],
                                  ["characters", released.characters],
                                  [f"tokens (estimate: characters ÷ {chars_per_token:g})", tokens],
                                  ["Parquet size on disk", _size(released.bytes)]]
    if released.weight_sum is not None:
        size_rows.append(["documents after rehydration (sum of `weight`)", round(released.weight_sum)])
    out += _table(["", "count"], size_rows)
    out += [f"Tokens are an estimate, characters ÷ {chars_per_token:g}: a rule of thumb for English-centric BPE "
            "tokenizers (GPT-2 style); such tokenizers split most other languages into more tokens, so count with "
            "your own tokenizer for a training budget. Words are `len(text.split())`.", ""]
    out += ["### Per crawl", ""]
    dump_rows = [[d or "(none)", s.documents, s.words, round(s.characters / chars_per_token)]
                 for d, s in per_dump.items()]
    dump_rows.append(["**total**", released.documents, released.words, tokens])
    out += _table(["crawl", "documents", "words", "tokens (est.)"], dump_rows)
    recorded = (stats.get("released") or {}).get("per_dump") if isinstance(stats.get("released"), Mapping) else None
    if isinstance(recorded, Mapping) and {k: int(v) for k, v in recorded.items()} != {
            d: s.documents for d, s in per_dump.items()}:
        log.warning("card for %s: the shards under data/ hold other counts than stats.json's released.per_dump",
                    info.code)
        out += ["> Note: the shards hold other document counts than the run recorded in `stats.json`; the "
                "table above counts the shards.", ""]

    out += optout_lines(stats.get("optout"))
    out += decontamination.card_lines(stats.get("decontamination"))
    out += ["## How the data was made", ""]
    shared = stats.get("shared")
    if isinstance(shared, Mapping) and shared:
        out += ["### Pages read (every language of the run)", "",
                f"{int(stats.get('documents_read', 0)):,} HTML pages were read. "
                "WARC records read, and pages skipped before or at language ID, by reason:", ""]
        out += _table(["reason", "count"], [[k, int(v)] for k, v in shared.items()])
    mix = stats.get("language_mix")
    if isinstance(mix, Mapping) and mix:
        top = sorted(mix.items(), key=lambda kv: (-int(kv[1]), kv[0]))[:10]
        out += ["Language mix of those pages (top 10):", ""]
        out += _table(["language", "pages"], [[k, int(v)] for k, v in top])
    if stages:
        out += ["### Documents kept and removed, per stage and rule", ""]
        rows = []
        for stage, counts in stages.items():
            entering = sum(counts.values())
            for rule, count in sorted(counts.items(), key=lambda kv: (kv[0] != "kept", -kv[1], kv[0])):
                rows.append([stage, rule, count, f"{count / entering:.2%}" if entering else "-"])
        out += _table(["stage", "outcome", "documents", "share of the stage's input"], rows)
        if "removal" in images:
            out += [f"![Documents removed per rule]({images['removal']})", ""]
    quarantined = stats.get("quarantined") or []
    if quarantined:
        out += [f"{len(quarantined)} input file(s) were quarantined (they kept crashing a worker); `stats.json` "
                "lists them.", ""]

    dedup = stats.get("dedup")
    if isinstance(dedup, Mapping):
        out += ["## Deduplication", ""]
        details = scalars(dedup.get("minhash") or {})
        if details:
            out += _table(["", "value"], [[k, v] for k, v in details.items()])
        if histogram:
            largest = max(histogram)
            out += [f"Near-duplicate clusters by size (MinHash, before quality filtering as in FineWeb2): "
                    f"{len(histogram):,} distinct sizes, largest cluster {largest:,} documents, "
                    f"{histogram.get(1, 0):,} of size 1.", ""]
            if "clusters" in images:
                out += [f"![Cluster-size histogram]({images['clusters']})", ""]

    if rehydration is not None:
        out += ["## Rehydration", ""]
        method = rehydration.get("method") if isinstance(rehydration, Mapping) else None
        if method is not None:
            out += [f"Method: {method if not isinstance(method, Mapping) else yaml.safe_dump(dict(method)).strip()}",
                    ""]
        if step_table:
            keys = list(step_table)
            rows = [[size_range(k, keys[i + 1] if i + 1 < len(keys) else None), step_table[k]]
                    for i, k in enumerate(keys)]
            out += ["A document of a given cluster size is repeated this many times (the `weight` column):", ""]
            out += _table(["cluster size", "repetitions"], rows)
        details = {k: v for k, v in scalars(rehydration).items() if k != "method"}
        if details:
            out += _table(["", "value"], [[k, v] for k, v in details.items()])

    if released.scores:
        out += ["## Scores", ""]
        sampled = released.score_stride > 1
        rows = []
        for name, values in released.scores.items():
            finite = values[np.isfinite(values)]
            if finite.size:
                p10, p50, p90 = np.quantile(finite, [0.1, 0.5, 0.9])
                rows.append([f"`{name}`", float(finite.mean()), float(p10), float(p50), float(p90)])
        if rows:
            out += _table(["column", "mean", "p10", "median", "p90"], rows)
        if sampled:
            out += [f"(from every {released.score_stride:,}th document)", ""]
        for name in released.scores:
            if f"score:{name}" in images:
                out += [f"![Distribution of {name}]({images[f'score:{name}']})", ""]

    out += ["## Columns", ""]
    out += _table(["column", "type"], [[f"`{n}`", f"`{t}`"] for n, t in released.columns])

    out += ["## Provenance", ""]
    if provenance.manifests:
        when = (f", committed {provenance.first_commit_time} to {provenance.last_commit_time}"
                if provenance.first_commit_time else "")
        out += [f"From {provenance.manifests:,} unit manifests{when}.", ""]
        if provenance.git_commits:
            out += ["curate commit: " + ", ".join(f"`{c}`" for c in provenance.git_commits), ""]
        if provenance.versions:
            out += _table(["package", "version"], [[k, ", ".join(v)] for k, v in provenance.versions.items()])
        if provenance.models:
            out += _table(["model or list", "digest / version"],
                          [[k, ", ".join(digest_label(x) for x in v)] for k, v in provenance.models.items()])
    else:
        out += ["No unit manifests were found next to the data, so versions and model hashes are not recorded "
                "here.", ""]

    out += ["## License", "", f"`{license}`" + (" (Open Data Commons Attribution License 1.0, as FineWeb2)"
                                               if license == "odc-by" else "")
            + ". The text comes from Common Crawl and is subject to Common Crawl's terms of use.", ""]
    return "\n".join(out).rstrip() + "\n"


def digest_label(value: str) -> str:
    """A digest as what it is: a full sha256 (64 hex digits), the first 16 hex digits of one, or a version."""
    if re.fullmatch(r"[0-9a-f]{64}", value):
        return f"sha256 `{value}`"
    if re.fullmatch(r"[0-9a-f]{16}", value):
        return f"sha256 prefix `{value}` (first 16 hex digits)"
    return f"`{value}`"


def _plots(released: Released, stats: Mapping[str, Any]) -> dict[str, tuple[str, bytes]]:
    """Plot key → (file name under images/, PNG bytes)."""
    from curate.pipeline.publishing import plots

    made: dict[str, tuple[str, bytes]] = {}
    stages = count_stages(stats)
    removed: dict[str, int] = {}
    shares: dict[str, float] = {}
    for counts in stages.values():
        entering = sum(counts.values())
        for rule, count in counts.items():
            if rule != "kept" and count:
                removed[rule] = removed.get(rule, 0) + count
                shares[rule] = removed[rule] / entering if entering else 0.0
    if stages:
        made["removal"] = ("removal_per_rule.png", plots.removal_per_rule(removed, shares))
    histogram = dedup_histogram(stats)
    if histogram:
        made["clusters"] = ("cluster_sizes.png", plots.cluster_size_histogram(histogram))
    for name, values in released.scores.items():
        if len(values) < plots.FEWEST_PLOTTED:
            continue
        made[f"score:{name}"] = (f"score_{name}.png", plots.score_distribution(name, values))
    return made


def write_card(output_root: str, language: str, *, repo_id: str | None = None, license: str = LICENSE,
               plots: bool = True, chars_per_token: float = CHARS_PER_TOKEN) -> str:
    """Write `<out>/<lang>/README.md` and `<out>/<lang>/images/*.png`; returns the README's path.

    `repo_id` only fills the loading snippet (`org/name`); `license` is the Hub license id; `plots=False`
    writes the card without images (no matplotlib needed).
    """
    output = Output(output_root)
    info = language_info(output, language)
    stats = output.read_json(output.language(info.code, "stats.json"))
    if not isinstance(stats, dict):
        raise UserError(f"no {output.url(info.code, 'stats.json')}: "
                        f"run `curate run --lang {info.code} --output {output_root}` first")
    released = read_released(output, info.code, allow_empty=(stats.get("released") or {}).get("documents") == 0)
    provenance = read_provenance(output, info.code)
    images: dict[str, str] = {}
    written = set()
    if plots:
        for key, (name, png) in _plots(released, stats).items():
            output.write_bytes(output.language(info.code, "images", name), png)
            images[key] = f"images/{name}"
            written.add(name)
    for stale in output.fs.glob(output.language(info.code, "images", "*.png")):
        if stale.rsplit("/", 1)[-1] not in written:
            output.fs.rm(stale)
    card = render_card(info, stats, released, provenance, images, license=license, repo_id=repo_id,
                       chars_per_token=chars_per_token)
    path = output.language(info.code, "README.md")
    output.write_bytes(path, card.encode("utf-8"))
    return output.url(path)
