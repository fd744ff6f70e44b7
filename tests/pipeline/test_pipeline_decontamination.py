"""Decontamination end to end: Finnish news pages (WMT newstest, not FLORES) with FLORES-200 sentences planted
(whole, inside a longer article, case and punctuation changed, split across a line break, a short item as a
paragraph), pages quoting 12 words of an item, and a boilerplate sentence on more pages than K. `--decontaminate
flores200/fin_Latn.txt` removes exactly the planted pages; `curate inspect` shows the item; the boilerplate is
reported and removes nothing. Editing the set reruns stage 3 and the final stage only, and the shards are those
of a fresh run with the edited set."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mirror import DATA, Record, page, write_warc
from run_helpers import cli

from curate.language_configs.schema import config_path
from curate.pipeline.execution.run import RunOptions, run
from curate.pipeline.publishing.documents import write_documents

CRAWL = "CC-MAIN-2024-22"
BOILERPLATE = ("Tämän sivun sisältö on suojattu tekijänoikeuslailla eikä sitä saa kopioida ilman kirjallista lupaa "
               "toimitukselta")


def _news() -> list[str]:
    lines = (DATA / "text/fi/wmt-newstest2016.fi.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if len(line.split()) >= 6]


def _article(news: list[str], number: int) -> list[str]:
    """Three paragraphs of three consecutive news sentences each, a different stretch per page."""
    start = number * 12
    return [" ".join(news[start + i:start + i + 3]) for i in (0, 3, 6)]


def _pages(flores: list[str]) -> tuple[list[Record], dict[str, str], list[str]]:
    """(records, planted page id → the FLORES item planted, the ids of the boilerplate pages)."""
    news = _news()
    long_items = [i for i in flores if len(i.split()) >= 20]
    short_item = next(i for i in flores if 6 <= len(i.split()) <= 9 and i.endswith("."))
    records, planted, boiler = [], {}, []

    def add(name: str, paragraphs: list[str]) -> str:
        record_id = f"<urn:uuid:decont-{name}>"
        records.append(Record(f"https://www.uutiset{len(records)}.fi/{name}", page("\n\n".join(paragraphs), "fi",
                                                                                   f"Uutinen {name}").encode(),
                              record_id=record_id))
        return record_id

    for number in range(16):
        add(f"clean-{number}", _article(news, number))
    first, second, third, fourth, fifth = long_items[:5]
    words = fourth.split()
    body = _article(news, 20)
    planted[add("whole", [*body[:2], first, body[2]])] = first
    body = _article(news, 21)
    planted[add("inside", [body[0], f"{body[1]} {second} {body[2]}"])] = second
    body = _article(news, 22)
    planted[add("case", [*body, " ".join(w.upper().strip(",.") for w in third.split()) + "!"])] = third
    body = _article(news, 23)
    planted[add("split", [body[0], " ".join(words[:8]), " ".join(words[8:]), *body[1:]])] = fourth
    body = _article(news, 24)
    planted[add("short", [body[0], short_item, *body[1:]])] = short_item
    body = _article(news, 25)
    add("quote", [body[0], f"{body[1]} Hän kirjoitti: {' '.join(fifth.split()[:12])}", body[2]])
    for number in range(5):
        boiler.append(add(f"boilerplate-{number}", [*_article(news, 30 + number), BOILERPLATE]))
    return records, planted, boiler


def _build(root: Path, records: list[Record]) -> None:
    relative = f"crawl-data/{CRAWL}/segments/1715971000001.1/warc/CC-MAIN-00001.warc.gz"
    write_warc(root / relative, records)
    (root / "crawl-data" / CRAWL / "warc.paths.gz").write_bytes(gzip.compress(relative.encode() + b"\n"))
    (root / "collinfo.json").write_text(json.dumps([{"id": CRAWL, "name": CRAWL[8:]}]))


def _options(source: Path, output: Path, sets: list[str]) -> RunOptions:
    return RunOptions(languages=["fin"], snapshots="2024-22", source=str(source), output=str(output), lid="ft176",
                      buckets=2, num_cpus=2, decontaminate=sets)


def _manifests(output: Path, stage: str) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((output / "_work" / "manifests" / stage).glob("*.json"))}


def _shards(output: Path) -> dict[str, bytes]:
    root = output / "fin_Latn" / "data"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.parquet"))}


def _removed(output: Path) -> dict[str, dict]:
    rows = [r for p in sorted((output / "fin_Latn/_work/removed").rglob("*.parquet")) for r in pq.read_table(p).to_pylist()]
    return {r["id"]: r for r in rows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, shared):
    """A run with the FLORES set (and, from the config, a boilerplate set with K = 3); the same output rerun with
    the set edited (the `whole` page's item taken out); a fresh run with the edited set."""
    flores_file = shared / "data/text/flores200/fin_Latn.txt"
    flores = [line.strip() for line in flores_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    source = tmp_path_factory.mktemp("decont-mirror")
    records, planted, boiler = _pages(flores)
    _build(source, records)
    work = tmp_path_factory.mktemp("decont-sets")
    common = work / "boilerplate.txt"
    common.write_text(BOILERPLATE + "\n", encoding="utf-8")
    configs = tmp_path_factory.mktemp("decont-configs")
    config = config_path("fin_Latn").read_text(encoding="utf-8")
    (configs / "fin_Latn.yaml").write_text(
        config + f"decontamination:\n  sets: [{common}]\n  max_documents: 3\n", encoding="utf-8")
    edited = work / "fin_Latn.txt"
    edited.write_text(flores_file.read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CURATE_LANGUAGE_CONFIGS", str(configs))
        output = tmp_path_factory.mktemp("decont-out")
        before = run(_options(source, output, [str(edited)])).languages["fin_Latn"]
        write_documents(str(output), ["fin_Latn"])
        state = {"stage1": _manifests(output, "stage1"), "stage3": _manifests(output, "stage3"),
                 "removed": _removed(output), "card": (output / "fin_Latn" / "README.md").read_text(encoding="utf-8"),
                 "report": (output / "report.html").read_text(encoding="utf-8"), "before": before}
        inspect = cli("inspect", str(output), "--lang", "fin", "--reason", "decontamination.fin_Latn", "-n", "10",
                      check=True)
        whole = next(i for i, item in planted.items() if "whole" in i)
        edited.write_text("\n".join(f for f in flores if f != planted[whole]) + "\n", encoding="utf-8")
        after = run(_options(source, output, [str(edited)])).languages["fin_Latn"]
        fresh_output = tmp_path_factory.mktemp("decont-fresh")
        run(_options(source, fresh_output, [str(edited)]))
    return {**state, "output": output, "fresh": fresh_output, "after": after, "planted": planted, "whole": whole,
            "boiler": boiler, "inspect": inspect.stdout, "records": records}


def test_exactly_the_planted_pages_are_removed_with_their_items(runs):
    removed = {i: r for i, r in runs["removed"].items() if (r["drop_reason"] or "").startswith("decontamination.")}
    assert {i: r["drop_reason"] for i, r in removed.items()} == {i: "decontamination.fin_Latn" for i in runs["planted"]}
    assert {i: r["decontamination_item"] for i, r in removed.items()} == runs["planted"]
    released = runs["before"]["released"]["documents"]
    assert released == len(runs["records"]) - len(runs["planted"])  # the quote and boilerplate pages are kept


def test_stats_card_and_report_say_what_was_removed_and_what_was_ignored(runs):
    section = runs["before"]["decontamination"]
    assert section["sets"]["fin_Latn"]["documents_removed"] == 5
    assert section["sets"]["fin_Latn"]["items_found"] == 5
    assert section["sets"]["fin_Latn"]["items"] == 1012
    assert section["sets"]["boilerplate"] | {"spec": ""} == {
        "spec": "", "fingerprint": section["sets"]["boilerplate"]["fingerprint"], "items": 1,
        "documents_removed": 0, "items_found": 0}
    from curate.blocks.decontamination import Tokenizer

    tokens = Tokenizer.for_language("fin_Latn", "Latn").lines(BOILERPLATE)[0]
    grams = [" ".join(tokens[i:i + 13]) for i in range(len(tokens) - 12)]  # every 13-gram of the boilerplate
    assert section["ignored"] == [{"text": g, "documents": 5} for g in sorted(grams)]
    assert (section["ngram_size"], section["max_documents"]) == (13, 3)
    assert "Decontaminated against: boilerplate (`" in runs["card"] and "), fin_Latn (`" in runs["card"]
    assert "Decontamination" in runs["report"] and f"{len(grams)} common n-grams ignored" in runs["report"]
    assert f"Index: {section['index_entries']:,} entries, {section['index_bytes']:,} bytes" in runs["report"]


def test_inspect_shows_the_matched_item(runs):
    assert "5 documents removed for decontamination.fin_Latn" in runs["inspect"]
    for item in runs["planted"].values():
        assert f"item: {item}" in runs["inspect"]
    assert "shared words: " in runs["inspect"]


def test_editing_the_set_reruns_no_stage1_unit_and_equals_a_fresh_run(runs):
    assert runs["stage1"] and _manifests(runs["output"], "stage1") == runs["stage1"]
    assert _manifests(runs["output"], "stage3") != runs["stage3"]
    assert runs["after"]["decontamination"]["sets"]["fin_Latn"]["documents_removed"] == 4
    assert runs["after"]["released"]["documents"] == runs["before"]["released"]["documents"] + 1
    assert _shards(runs["output"]) == _shards(runs["fresh"])


def test_the_config_section_changes_no_stage1_setting(tmp_path, monkeypatch, shared):
    """Sets named in a config change stage 3 only: the stage-1 signature of the graph is the same with and
    without them, and the block sits after the filters."""
    from curate.pipeline.execution.graph import add_decontamination, build_graph
    from curate.pipeline.execution.run import graph_signature

    plain = build_graph(["fin"], lid="ft176")
    config = config_path("fin_Latn").read_text(encoding="utf-8")
    (tmp_path / "fin_Latn.yaml").write_text(
        config + f"decontamination:\n  sets: [{shared / 'data/text/flores200/fin_Latn.txt'}]\n", encoding="utf-8")
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(tmp_path))
    decontaminated = build_graph(["fin"], lid="ft176")
    add_decontamination(decontaminated, [])
    assert graph_signature(decontaminated) == graph_signature(plain)
    names = [b.name for b in decontaminated.languages["fin_Latn"].stage3]
    filters = decontaminated.languages["fin_Latn"].rehydration_rules
    assert names[names.index("decontamination") - 1] == filters[-1] and names.count("decontamination") == 1
