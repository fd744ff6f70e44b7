"""The block graph of a run: blocks shared by every language (up to LID), then each language's own.

This is the Python API under `curate run`: build the graph from language configs, change it (add your
own block to a language's stage 1 or stage 3), and hand it to `curate.pipeline.execution.run.run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from curate.errors import UserError
from curate.blocks.base import Block
from curate.blocks.extract import Extract
from curate.blocks.lid import LanguageId, resolve_model
from curate.blocks.minhash import dedup_blocks
from curate.blocks.prefilter import Prefilter, PrefilterRule
from curate.blocks.quality import formatter_blocks, stage1_blocks, stage3_filter_blocks
from curate.blocks.scorers import scorer_blocks
from curate.blocks.url_filter import UrlFilter
from curate.language_configs import LanguageConfig, load_language_config
from curate.language_configs.cld2 import detected_as

LID_MODELS = ("glotlid", "ft176")


@dataclass
class LanguageGraph:
    """What one language runs: documents LID assigns to it with `language_score >= min_lid_score` go
    through `stage1` (tokens, statistics, signatures), dedup, then `stage3` (filters, formatters, scorers).
    `rehydration_rules` are the blocks whose removals count in the rehydration removal rates."""

    config: LanguageConfig
    min_lid_score: float
    stage1: list[Block] = field(default_factory=list)
    stage3: list[Block] = field(default_factory=list)
    rehydration_rules: tuple[str, ...] = ()

    @property
    def code(self) -> str:
        return self.config.code


@dataclass
class Graph:
    """Blocks every document goes through (`shared`, then `lid`), and the per-language graphs."""

    shared: list[Block]
    lid: LanguageId
    languages: dict[str, LanguageGraph]
    skipped: dict[str, str] = field(default_factory=dict)  # language → what it lacks (`skip_unavailable`)
    notes: list[str] = field(default_factory=list)  # what a run says first (default LID thresholds, skips)

    def blocks(self) -> list[Block]:
        return [*self.shared, self.lid, *(b for g in self.languages.values() for b in (*g.stage1, *g.stage3))]

    def check(self) -> None:
        """Load-check every block's models on the driver, so a missing model stops the run before it starts."""
        for block in self.blocks():
            block.check()

    def models(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for block in self.blocks():
            found.update(block.provenance())
        return found


def language_stage1_blocks(config: LanguageConfig) -> list[Block]:
    """Stage-1 blocks after LID for one language: word tokens → filter statistics → MinHash signature."""
    return stage1_blocks(config) + dedup_blocks(config.dedup)


def language_stage3_blocks(config: LanguageConfig) -> list[Block]:
    """Stage-3 blocks for one language, after dedup: filters on stored statistics → formatters → scorers."""
    return stage3_filter_blocks(config) + formatter_blocks(config) + scorer_blocks(config)


def build_graph(
    languages: list[str],
    lid: str | None = None,
    min_lid_score: float | None = None,
    extractor: str = "trafilatura",
    extract_timeout_s: float = 30.0,
    url_filter: bool = True,
    prefilter: bool = True,
    skip_unavailable: bool = False,
) -> Graph:
    """The graph for `languages` (codes as `--lang` takes them) from their configs.

    `lid` overrides the configs' LID model (`glotlid`, `ft176` or a path); `min_lid_score` overrides the
    threshold, which otherwise comes from each config's `lid.min_score[<model>]`. `prefilter=False` extracts
    every page (no LID-first cascade); so does a run where one language has no `lid.prefilter` for the model.

    Shared order: URL filter → opt-outs from URL and headers (`add_optouts`) → cheap parse and LID-first
    prefilter (CLD2 on the HTML where it detects every run language, then the run's LID model on the page's
    text) → extraction; then LID on the extracted text decides.
    """
    configs = [load_language_config(code) for code in languages]
    models = {lid or c.lid.model for c in configs}
    if len(models) > 1:
        raise UserError(f"the languages ask for different LID models ({', '.join(sorted(models))}): pass --lid")
    model = models.pop()
    if model not in LID_MODELS:
        resolve_model(model)  # a missing model file is the first thing to say
    check_labelled(configs, model)
    configs, skipped = available_configs(configs, skip_unavailable)
    notes = [f"skipped {len(skipped)} language(s) whose word tokenizer is not installed: "
             + ", ".join(f"{code} ({need})" for code, need in skipped.items())] if skipped else []
    if model == "ft176" and min_lid_score is None:
        notes += ft176_notes(configs)
    graphs = {}
    for config in configs:
        score = min_lid_score
        if score is None:
            key = model if model in LID_MODELS else "custom"
            score = config.lid.min_score.get(key)
            if score is None:
                raise UserError(f"{config.code} has no lid.min_score for model {key!r}: add it to its config "
                                f"or pass --lid-min-score")
        graphs[config.code] = LanguageGraph(config, score, language_stage1_blocks(config),
                                            language_stage3_blocks(config),
                                            tuple(b.name for b in stage3_filter_blocks(config)))
    language_id = LanguageId(model=model)
    shared: list[Block] = [UrlFilter()] if url_filter else []
    rules = prefilter_rules(configs, model) if prefilter else None
    if rules:
        shared.append(Prefilter(lid=language_id, rules=rules, cld2=detected_as(list(graphs)) or ()))
    shared.append(Extract(extractor=extractor, timeout_s=extract_timeout_s))
    return Graph(shared=shared, lid=language_id, languages=graphs, skipped=skipped, notes=notes)


def check_labelled(configs: list[LanguageConfig], model: str) -> None:
    """lid.176 labels 176 languages: every other one is refused in one line, all of them at once."""
    if model != "ft176":
        return
    from curate.language_configs.labels import ft176_labels

    known = set(ft176_labels().values())
    unknown = [c.code for c in configs if c.code not in known]
    if unknown:
        raise UserError(f"lid.176 (--lid ft176) cannot label {len(unknown)} of the languages: {', '.join(unknown)}; "
                        "run them with --lid glotlid")


def available_configs(configs: list[LanguageConfig], skip: bool) -> tuple[list[LanguageConfig], dict[str, str]]:
    """The configs whose word tokenizer can run here, and what each other one lacks. Without `skip`, any lack
    stops the run with one line naming every package (before any work)."""
    from curate.blocks.words import ALL_LANGUAGES_EXTRA, missing_requirement

    lacking = {c.code: need for c in configs if (need := missing_requirement(c)) is not None}
    if lacking and not skip:
        by_need: dict[str, list[str]] = {}
        for code, need in lacking.items():
            by_need.setdefault(need, []).append(code)
        listed = "; ".join(f"{need} for {', '.join(codes)}" for need, codes in sorted(by_need.items()))
        raise UserError(f"{len(lacking)} language(s) need what curate does not install: {listed}: "
                        f"pip install 'curate-corpus[{ALL_LANGUAGES_EXTRA}]' (Stanza's models: see docs/configs.md), "
                        "or pass --skip-unavailable to run the others")
    kept = [c for c in configs if c.code not in lacking]
    if not kept:
        raise UserError(f"no language can run here: {', '.join(lacking)} lack their word tokenizers: "
                        f"pip install 'curate-corpus[{ALL_LANGUAGES_EXTRA}]'")
    return kept, lacking


def ft176_notes(configs: list[LanguageConfig]) -> list[str]:
    """What a `--lid ft176` run says first: the languages at the default threshold, and lid.176's known
    confusions among them."""
    from curate.language_configs.lid_thresholds import FT176_DEFAULT_SCORE, confusions, derived_thresholds

    default = [c.code for c in configs if (c.code, "ft176") not in derived_thresholds()]
    notes = []
    if default:
        notes.append(f"{len(default)} language(s) use the default lid.176 threshold {FT176_DEFAULT_SCORE} (no text "
                     f"to derive theirs, docs/configs.md): {', '.join(default)}")
    confused = [confusions()[(code, "ft176")] for code in default if (code, "ft176") in confusions()]
    if confused:
        notes.append("lid.176 labels most pages of " + ", ".join(f"{c.code} as {c.labelled_as}" for c in confused)
                     + " (the model's limit: few or none of their pages reach them): use --lid glotlid for them")
    return notes


def add_optouts(graph: Graph, stage1: list[Block], stage3: list[Block]) -> None:
    """Put opt-out blocks in their slots: `stage1` (robots.txt, TDM: from URL and headers) right after the URL
    filter, before the prefilter; `stage3` (takedown lists) first in each language's stage 3, so a list change
    reruns stage 3 only. Blocks already there (a graph given twice) are replaced."""
    from curate.blocks.optout import ListOptOut, RobotsOptOut, TdmOptOut

    optout_types = (RobotsOptOut, TdmOptOut, ListOptOut)
    graph.shared = [b for b in graph.shared if not isinstance(b, optout_types)]
    slot = next((i + 1 for i, b in enumerate(graph.shared) if isinstance(b, UrlFilter)), 0)
    graph.shared[slot:slot] = stage1
    for language in graph.languages.values():
        language.stage3 = [*stage3, *(b for b in language.stage3 if not isinstance(b, optout_types))]


def add_decontamination(graph: Graph, specs: list[str]) -> None:
    """Put a decontamination block in each language's stage 3, after the filters (before formatters and scorers),
    for the sets of its config's `decontamination.sets` and `specs` (`--decontaminate`); its index is built here,
    once per run. A decontamination block already there is replaced."""
    from curate.blocks.decontamination import Decontaminate, decontamination_block
    from curate.blocks.evaluation_sets import load_sets, split_specs
    from curate.blocks.words import tokenizer_key

    for language in graph.languages.values():
        settings = language.config.decontamination
        wanted = split_specs([*settings.sets, *specs])
        if not wanted:  # a block put in by hand (Python API) stays
            continue
        blocks = [b for b in language.stage3 if not isinstance(b, Decontaminate)]
        block = decontamination_block(load_sets(wanted), tokenizer_key(language.config), language.config.script,
                                      settings.ngram_size, settings.max_documents, settings.min_item_words)
        slot = sum(1 for b in blocks if b.before_dedup or b.name in language.rehydration_rules)
        language.stage3 = [*blocks[:slot], block, *blocks[slot:]]


def prefilter_rules(configs: list[LanguageConfig], model: str) -> tuple[PrefilterRule, ...] | None:
    """Each language's `lid.prefilter` rule for `model`; None (extract every page) if one language has none."""
    key = model if model in LID_MODELS else "custom"
    rules = []
    for config in configs:
        settings = (config.lid.prefilter or {}).get(key)
        if settings is None:
            return None
        rules.append(PrefilterRule((config.code, *settings.also), settings.top_k, settings.min_score))
    return tuple(rules)
