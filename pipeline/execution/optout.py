"""Opt-outs of a run (`curate run --optout robots,tdm,list`): what applies, with which data, and what it removed.

`prepare` builds (or reuses) the robots.txt host table of the crawls read (plus `--robots-from`), reads the
takedown lists (given ones and those recorded in the output by earlier runs or `curate optout`), records the
lists under `<out>/_work/optout/lists/` and puts the blocks into the graph (`graph.add_optouts`). `summary`
gives what `stats.json["optout"]` holds: which opt-outs applied, the agents and lists, which crawls had
robots.txt files, and per crawl how many documents each opt-out removed.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

from curate.blocks.optout import ListOptOut, OptOutList, RobotsOptOut, TdmOptOut, parse_list, read_list
from curate.errors import UserError
from curate.pipeline.execution.graph import Graph, add_optouts
from curate.pipeline.execution.provenance import code_version, fingerprint
from curate.pipeline.execution.storage import Output
from curate.pipeline.sources.crawls import Source, match_crawls

log = logging.getLogger("curate")

OPTOUTS = ("robots", "tdm", "list")
LISTS_DIR = ("_work", "optout", "lists")


def choose(value: str | None) -> tuple[set[str], bool]:
    """The opt-outs `--optout` names (`robots,tdm,list`, `none`) and whether they were named; None: all three,
    each where it has data."""
    if value is None:
        return set(OPTOUTS), False
    names = {v.strip() for v in value.split(",") if v.strip()}
    if names == {"none"}:
        return set(), True
    unknown = sorted(names - set(OPTOUTS))
    if unknown:
        raise UserError(f"--optout {value!r}: unknown {', '.join(unknown)}; choose from robots, tdm, list or none")
    return names, True


@dataclass
class OptOutPlan:
    """What a run applies, for `stats.json`."""

    applied: list[str] = field(default_factory=list)
    agents: list[str] = field(default_factory=list)
    lists: list[dict] = field(default_factory=list)
    robots_crawls: dict[str, bool] = field(default_factory=dict)  # crawl → had robotstxt.paths.gz
    robots_table: dict = field(default_factory=dict)


def recorded_lists(output: Output) -> list[OptOutList]:
    """The lists earlier runs or `curate optout` recorded in the output (applied again by every rerun)."""
    index = output.read_json(output.path(*LISTS_DIR, "index.json")) or []
    lists = []
    for entry in index:
        path = output.path(*LISTS_DIR, f"{entry['digest']}.txt")
        with output.fs.open(path, "rb") as handle:
            lists.append(parse_list(entry["source"], handle.read().decode("utf-8")))
    return lists


def record_lists(output: Output, lists: list[OptOutList]) -> list[dict]:
    """Record `lists` (with those already recorded, one entry per distinct content); returns the index."""
    index = output.read_json(output.path(*LISTS_DIR, "index.json")) or []
    known = {entry["digest"] for entry in index}
    for item in lists:
        if item.digest in known:
            continue
        output.write_bytes(output.path(*LISTS_DIR, f"{item.digest}.txt"), ("\n".join(item.entries) + "\n").encode())
        index.append({"source": item.source, "digest": item.digest, "entries": len(item.entries)})
        known.add(item.digest)
    output.write_json(output.path(*LISTS_DIR, "index.json"), index)
    return index


def prepare(options, plan, graph: Graph, output: Output, map_fn) -> OptOutPlan:
    """Build what the chosen opt-outs need and add their blocks to `graph`."""
    from curate.pipeline.sources.robots import build_robots_table

    chosen, named = choose(options.optout)
    result = OptOutPlan()
    stage1, stage3 = [], []
    if "robots" in chosen:
        crawls = list(plan.crawls)
        if options.robots_from:
            crawls += [c for c in match_crawls(",".join(options.robots_from), plan.source.crawls()) if c not in crawls]
        settings = [code_version("curate.pipeline.sources.robots"), "robots-table"]
        table, missing = build_robots_table(plan.source, crawls, output, map_fn, settings, fingerprint)
        result.robots_crawls = {crawl: crawl not in missing for crawl in crawls}
        for crawl in missing:
            log.warning("robots.txt: %s has no robotstxt.paths.gz: its pages are not checked against its robots.txt "
                        "files", crawl)
        if table is not None:
            agents = tuple(options.robots_agents)
            stage1.append(RobotsOptOut(options.output, table.directory, table.partitions, table.fingerprint, agents))
            result.applied.append("robots")
            result.agents = list(agents)
            result.robots_table = {k: v for k, v in table.summary.items() if k != "fingerprint"}
    if "tdm" in chosen:
        stage1.append(TdmOptOut())
        result.applied.append("tdm")
    if "list" in chosen:
        lists = [read_list(location) for location in options.optout_lists]
        if lists or output.fs.exists(output.path(*LISTS_DIR, "index.json")):
            result.lists = record_lists(output, lists)
            stage3.append(ListOptOut.from_lists(recorded_lists(output)))
            result.applied.append("list")
        elif named:
            raise UserError("--optout list: give the list(s) with --optout-list FILE_OR_URL")
    elif options.optout_lists:
        raise UserError("--optout-list was given but --optout leaves out list: add list to --optout")
    add_optouts(graph, stage1, stage3)
    return result


def crawl_of(manifest: dict) -> str:
    """The crawl of a stage-1 unit (its files are of one crawl)."""
    for name in manifest["result"].get("files", []):
        if "/crawl-data/" in name:
            return name.split("/crawl-data/", 1)[1].split("/", 1)[0]
    return manifest["unit"].split("-index-")[0].rsplit("-", 2)[0]


def summary(plan: OptOutPlan, stage1: dict[str, dict], output: Output, code: str, buckets: int) -> dict:
    """`stats.json["optout"]`: what applied and, per crawl, the documents each opt-out removed (`robots`,
    `robots_unreachable`, `tdm`: stage 1, before LID, so of every language; `list`: stage 3, of this language)."""
    per_crawl: dict[str, Counter] = {}
    for manifest in stage1.values():
        counts = {k.removeprefix("optout."): v for k, v in manifest["result"]["counts"].items()
                  if k.startswith("optout.")}
        per_crawl.setdefault(crawl_of(manifest), Counter()).update(counts)
    for crawl, count in listed_per_crawl(output, code, buckets).items():
        per_crawl.setdefault(crawl, Counter())["list"] += count
    return {"applied": plan.applied, "agents": plan.agents, "lists": plan.lists, "robots_crawls": plan.robots_crawls,
            "robots_table": plan.robots_table,
            "per_crawl": {crawl: dict(sorted(c.items())) for crawl, c in sorted(per_crawl.items())}}


def listed_per_crawl(output: Output, code: str, buckets: int) -> Counter:
    """Documents of `code` stage 3 removed as `optout.list`, per crawl (from the stage-3 audit files)."""
    import pyarrow.compute as pc

    counts: Counter = Counter()
    for bucket in range(buckets):
        manifest = output.read_json(output.manifest("stage3", f"{code}-{bucket:05d}")) or {}
        result = manifest.get("result", {})
        if not result.get("counts", {}).get("optout.list") or not result.get("removed_file"):
            continue
        table = output.read_parquet([result["removed_file"]], columns=["dump", "drop_reason"])
        listed = table.filter(pc.equal(table["drop_reason"], "optout.list"))
        counts.update(listed["dump"].to_pylist())
    return counts
