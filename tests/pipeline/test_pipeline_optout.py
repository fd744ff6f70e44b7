"""Opt-outs in `curate run`: robots.txt of the crawl, TDM reservations, takedown lists (`curate optout`).

One small mirror (two crawls: 2024-22 with robots.txt WARCs in Common Crawl's layout, 2024-18 without) and one
run. Every expected outcome below is written by hand from RFC 9309 and the TDMRep report; `protego` decides in
the pipeline. The default agents include GPTBot and CCBot (and not `Dummybot`, the agent of one `*`-only test).
"""

from __future__ import annotations

import gzip
import json
import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.blocks.optout import ListOptOut, RobotsOptOut, TdmOptOut, parse_list, tdm_meta
from typer.testing import CliRunner

from curate.pipeline.cli.main import app
from curate.pipeline.execution.graph import build_graph
from curate.pipeline.execution.optout import prepare
from curate.pipeline.execution.run import RunOptions, run
from curate.pipeline.publishing.documents import write_documents
from curate.pipeline.execution.storage import Output
from curate.pipeline.publishing.takedown import apply_takedown
from curate.pipeline.sources.robots import build_robots_table, host_key
from curate.pipeline.execution.provenance import fingerprint
from curate.pipeline.sources.crawls import Source
from mirror import Record, documents, page, released, write_warc

ROBOTS = "CC-MAIN-2024-22"  # has robotstxt.paths.gz
NO_ROBOTS = "CC-MAIN-2024-18"  # has none

# host → (robots.txt status, body, extra headers, WARC date); hosts with no entry have no robots.txt capture
ROBOTS_FILES = {
    "https://gpt.fi": ("200 OK", "User-agent: GPTBot\nDisallow: /\n", (), "2024-05-20T00:00:00Z"),
    "https://ccbot.fi": ("200 OK", "User-agent: CCBot\nDisallow: /uutiset/\n", (), "2024-05-20T00:00:00Z"),
    "https://wild.fi": ("200 OK", "User-agent: *\nDisallow: /*.php$\nDisallow: /haku\n", (), "2024-05-20T00:00:00Z"),
    "https://longest.fi": ("200 OK", "User-agent: *\nDisallow: /arkisto/\nAllow: /arkisto/avoin/\n", (),
                           "2024-05-20T00:00:00Z"),
    "https://down.fi": ("503 Service Unavailable", "busy", (), "2024-05-20T00:00:00Z"),
    "https://broken.fi": ("???", "User-agent: *\nAllow: /\n", (), "2024-05-20T00:00:00Z"),  # HTTP part unreadable
    "https://gone.fi": ("404 Not Found", "not here", (), "2024-05-20T00:00:00Z"),
    "http://moved.fi": ("301 Moved Permanently", "", (("Location", "https://target.fi/robots.txt"),),
                        "2024-05-20T00:00:00Z"),
    "https://target.fi": ("200 OK", "User-agent: *\nDisallow: /\n", (), "2024-05-20T00:00:00Z"),
    "https://elsewhere.fi": ("302 Found", "", (("Location", "https://target.fi/"),), "2024-05-20T00:00:00Z"),
}
# an older capture of a host, in the same crawl: the newest capture (allow all) decides
OLD_ROBOTS = {"https://renewed.fi": ("200 OK", "User-agent: *\nDisallow: /\n", (), "2024-01-01T00:00:00Z")}
NEW_ROBOTS = {"https://renewed.fi": ("200 OK", "User-agent: *\nDisallow:\n", (), "2024-05-21T00:00:00Z")}

# page URL → expected reason (None: kept by the opt-outs), by hand from RFC 9309
PAGES = {
    "https://gpt.fi/uutiset/1": "optout.robots",  # GPTBot's own group disallows /
    "https://gpt.fi/": "optout.robots",
    "https://ccbot.fi/uutiset/2": "optout.robots",  # CCBot's group: /uutiset/ prefix
    "https://ccbot.fi/muut/2": None,  # other path; no other agent has a group, no `*` group: allowed
    "https://wild.fi/sivu.php": "optout.robots",  # `*` applies to every default agent; `$` anchors the end
    "https://wild.fi/sivu.php?id=4": None,  # `$`: the path+query does not end in .php
    "https://wild.fi/hakutulos": "optout.robots",  # /haku is a prefix of /hakutulos
    "https://wild.fi/artikkeli": None,
    "https://longest.fi/arkisto/avoin/3": None,  # the longer Allow wins over Disallow /arkisto/
    "https://longest.fi/arkisto/suljettu/3": "optout.robots",
    "https://down.fi/a": "optout.robots_unreachable",  # 5xx: complete disallow
    "https://broken.fi/a": "optout.robots_unreachable",  # unreadable: complete disallow
    "https://gone.fi/a": None,  # 4xx: allow all
    "https://none.fi/a": None,  # no robots.txt captured
    "http://moved.fi/a": "optout.robots",  # redirect → target.fi's rules apply to moved.fi
    "https://elsewhere.fi/a": None,  # a redirect to a page, not to a robots.txt: unavailable, allow all
    "https://renewed.fi/a": None,  # the newest robots.txt allows
    "https://tdm.fi/header": "optout.tdm",  # tdm-reservation: 1 header
    "https://tdm.fi/meta": "optout.tdm",  # <meta name="tdm-reservation" content="1">
    "https://tdm.fi/zero": None,  # content="0": not reserved
}
TDM_HEADERS = {"https://tdm.fi/header": (("TDM-Reservation", " 1 "), ("tdm-policy", "https://tdm.fi/policy.json"))}
TDM_META = {"https://tdm.fi/meta": '<meta content="1" NAME="TDM-Reservation"><meta name="tdm-policy" '
                                   'content="https://tdm.fi/p.json">',
            "https://tdm.fi/zero": '<meta name="tdm-reservation" content="0">'}
# 2024-18 has no robotstxt.paths.gz: the newest robots.txt among the crawls read (2024-22's) still applies
OLDER_PAGES = {"https://gpt.fi/vanha/1": "optout.robots", "https://none.fi/vanha/1": None,
               "https://takedown.fi/vanha/1": None}


def robots_record(host: str, status: str, body: str, headers, date: str) -> Record:
    return Record(f"{host}/robots.txt", body.encode(), "text/plain", status, headers=headers, date=date)


def finnish_pages(urls: list[str], seed: int) -> list[Record]:
    records = []
    for i, (url, text) in enumerate(zip(urls, documents("fin", len(urls), seed))):
        html = page(text, "fi", f"Uutinen {i}")
        if url in TDM_META:
            html = html.replace("<meta charset=\"utf-8\">", "<meta charset=\"utf-8\">" + TDM_META[url])
        records.append(Record(url, html.encode(), record_id=f"<urn:uuid:optout-{seed}-{i:03d}>",
                              headers=TDM_HEADERS.get(url, ())))
    return records


@pytest.fixture(scope="module")
def optout_mirror(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("optout-mirror")
    current = list(PAGES) + ["https://takedown.fi/a", "https://sub.takedown.fi/b", "https://keep.fi/x/1"]
    listings = {ROBOTS: ["crawl-data/CC-MAIN-2024-22/segments/1/warc/pages.warc.gz"],
                NO_ROBOTS: ["crawl-data/CC-MAIN-2024-18/segments/1/warc/pages.warc.gz"]}
    write_warc(root / listings[ROBOTS][0], finnish_pages(current, 1))
    write_warc(root / listings[NO_ROBOTS][0], finnish_pages(list(OLDER_PAGES), 2))
    robots = [f"crawl-data/{ROBOTS}/segments/1/robotstxt/robots-{n}.warc.gz" for n in (0, 1)]
    write_warc(root / robots[0], [robots_record(h, *v) for h, v in {**ROBOTS_FILES, **NEW_ROBOTS}.items()])
    write_warc(root / robots[1], [robots_record(h, *v) for h, v in OLD_ROBOTS.items()])
    for crawl, paths in listings.items():
        (root / "crawl-data" / crawl / "warc.paths.gz").write_bytes(gzip.compress("\n".join(paths).encode()))
    (root / "crawl-data" / ROBOTS / "robotstxt.paths.gz").write_bytes(gzip.compress("\n".join(robots).encode()))
    (root / "collinfo.json").write_text(json.dumps([{"id": ROBOTS}, {"id": NO_ROBOTS}]))
    return root


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture(scope="module")
def finished(optout_mirror, tmp_path_factory):
    output = tmp_path_factory.mktemp("optout-run")
    handler = Lines()
    logging.getLogger("curate").addHandler(handler)
    try:
        stats = run(RunOptions(languages=["fin"], snapshots="2024-*", source=str(optout_mirror), output=str(output),
                               lid="ft176", files_per_unit=1, buckets=2, num_cpus=2))
    finally:
        logging.getLogger("curate").removeHandler(handler)
    write_documents(str(output), stats.languages)
    return output, stats.languages["fin_Latn"], handler.lines


def shared_audit(output: Path) -> list[dict]:
    """The rows stage 1 removed before LID (one file per unit; only some have `tdm_policy`)."""
    return [row for path in sorted((output / "_work" / "removed" / "stage1").glob("*.parquet"))
            for row in pq.read_table(path).to_pylist()]


def shared_removed(output: Path) -> dict[str, str]:
    return {row["url"]: row["drop_reason"] for row in shared_audit(output)}


def test_run_drops_exactly_the_opted_out_pages(finished):
    output, stats, _ = finished
    expected = {url: reason for url, reason in {**PAGES, **OLDER_PAGES}.items() if reason}
    removed = {url: reason for url, reason in shared_removed(output).items() if reason.startswith("optout.")}
    assert removed == expected
    assert stats["shared"]["optout.robots"] == 8 and stats["shared"]["optout.robots_unreachable"] == 2
    assert stats["shared"]["optout.tdm"] == 2
    kept = {d["url"] for d in released(output).values()}
    assert not kept & set(expected)
    audit = shared_audit(output)
    policies = {row["url"]: row["tdm_policy"] for row in audit if row["drop_reason"] == "optout.tdm"}
    assert policies == {"https://tdm.fi/header": "https://tdm.fi/policy.json",
                        "https://tdm.fi/meta": "https://tdm.fi/p.json"}
    assert stats["stage1"]["kept"] == len(PAGES) + 3 + len(OLDER_PAGES) - len(expected)


def test_stats_state_per_crawl_counts_agents_and_availability(finished):
    _, stats, lines = finished
    optout = stats["optout"]
    assert optout["applied"] == ["robots", "tdm"]
    assert "GPTBot" in optout["agents"] and "CCBot" in optout["agents"]
    assert optout["robots_crawls"] == {ROBOTS: True, NO_ROBOTS: False}
    assert optout["per_crawl"] == {ROBOTS: {"robots": 7, "robots_unreachable": 2, "tdm": 2},
                                   NO_ROBOTS: {"robots": 1}}
    assert optout["robots_table"]["hosts"] == 11
    assert optout["robots_table"]["counts"]["robots.unreadable"] == 1
    missing = [line for line in lines if "robotstxt.paths.gz" in line]
    assert missing == [f"robots.txt: {NO_ROBOTS} has no robotstxt.paths.gz: its pages are not checked against "
                       "its robots.txt files"]


def test_card_and_report_state_the_optouts(finished):
    output, _, _ = finished
    card = (output / "fin_Latn" / "README.md").read_text()
    assert "## Opt-outs" in card
    assert f"| {ROBOTS} | yes | 7 | 2 | 2 | 0 |" in card
    assert f"| {NO_ROBOTS} | not available | 1 | 0 | 0 | 0 |" in card
    assert "GPTBot" in card
    assert "Opt-outs" in (output / "report.html").read_text()


def test_host_table_is_reused_and_keyed_by_scheme_host_port(optout_mirror, tmp_path, monkeypatch):
    from curate.pipeline.sources import robots

    monkeypatch.setattr(robots, "CHUNK_ROWS", 4)  # captures written out in several chunks per task
    output = tmp_path
    calls = []

    def counting_map(fn, items):
        calls.append(len(items))
        return [fn(i) for i in items]

    table, missing = build_robots_table(Source(str(optout_mirror)), [ROBOTS, NO_ROBOTS], Output(str(output)),
                                        counting_map, ["x"], fingerprint)
    assert missing == [NO_ROBOTS] and calls == [2, 2, 2]  # 2 robots.txt WARCs, 2 host-hash partitions
    again, _ = build_robots_table(Source(str(optout_mirror)), [ROBOTS, NO_ROBOTS], Output(str(output)),
                                  counting_map, ["x"], fingerprint)
    assert calls == [2, 2, 2] and again.fingerprint == table.fingerprint  # reused
    rows = []
    for partition in range(table.partitions):
        part = pq.read_table(output / table.directory / f"part-{partition:05d}.parquet").to_pylist()
        assert [r["host"] for r in part] == sorted(r["host"] for r in part)
        rows += part
    kinds = {r["host"]: (r["status"], r["kind"]) for r in rows}
    assert kinds["https://down.fi:443"] == (503, "disallow")
    assert kinds["https://broken.fi:443"] == (-1, "disallow")
    assert kinds["https://gone.fi:443"] == (404, "allow")
    assert kinds["http://moved.fi:80"] == (200, "rules")
    assert kinds["https://elsewhere.fi:443"] == (302, "allow")
    assert len(rows) == 11 and not (output / table.directory / "captures").exists()
    assert host_key("HTTPS://Example.FI/x") == "https://example.fi:443" and host_key("http://a.fi:8080/") == \
        "http://a.fi:8080" and host_key("ftp://a.fi/") is None


def test_robots_block_any_agent_and_own_group_on_a_table(finished):
    output, stats, _ = finished
    directory = next((output / "_work" / "robots").iterdir())
    summary = json.loads((directory / "_SUCCESS.json").read_text())
    block = RobotsOptOut(str(output), f"_work/robots/{directory.name}", summary["partitions"],
                         summary["fingerprint"], ("Dummybot",))
    urls = ["https://gpt.fi/x", "https://ccbot.fi/uutiset/9", "https://wild.fi/a.php", "https://down.fi/b", "bad"]
    out = block(pa.table({"url": urls}))
    # Dummybot has no group on gpt.fi or ccbot.fi and neither host has a `*` group: allowed; on wild.fi `*` applies
    assert out["drop_reason"].to_pylist() == [None, None, "optout.robots", "optout.robots_unreachable", None]


def test_tdm_header_and_meta_variants():
    html = '<html><head>{}</head><body><meta name="tdm-reservation" content="1"></body></html>'
    cases = [
        (None, '<meta name="tdm-reservation" content="1">', "optout.tdm"),
        (None, "<META NAME='TDM-RESERVATION' CONTENT='1'>", "optout.tdm"),
        (None, '<meta  content = "1"  name = "tdm-reservation" >', "optout.tdm"),
        (None, '<meta name="tdm-reservation" content="0">', None),
        (None, '', None),  # a tag in the body is not the head's
        ("1", '', "optout.tdm"),
        (" 1 ", '', "optout.tdm"),
        ("0", '<meta name="tdm-reservation" content="1">', None),  # the header, when sent, decides
    ]
    table = pa.table({"html": [html.format(meta) for _, meta, _ in cases],
                      "http_tdm_reservation": pa.array([h for h, _, _ in cases], pa.string()),
                      "http_tdm_policy": pa.array(["https://p.fi/policy"] + [None] * (len(cases) - 1), pa.string())})
    out = TdmOptOut()(table)
    assert out["drop_reason"].to_pylist() == [reason for _, _, reason in cases]
    assert out["tdm_policy"].to_pylist()[0] == "https://p.fi/policy"
    assert tdm_meta('<head><meta name="tdm-policy" content="https://x.fi/p"><meta name="tdm-reservation" '
                    'content="1"></head>') == ("1", "https://x.fi/p")


def test_list_matches_domains_hosts_and_url_prefixes():
    listed = parse_list("test", "# takedowns\ntakedown.fi  # request 12\nHTTPS://Keep.fi/x/\nwww.only-host.fi\n\n")
    block = ListOptOut.from_lists([listed])
    urls = ["https://takedown.fi/a", "https://sub.takedown.fi/b", "https://nottakedown.fi/",
            "https://keep.fi/x/1", "https://keep.fi/y", "http://keep.fi/x/1", "https://www.only-host.fi/",
            "https://only-host.fi/"]
    assert [block.listed(u) for u in urls] == [True, True, False, True, False, False, True, False]
    assert listed.entries == ("https://keep.fi/x/", "takedown.fi", "www.only-host.fi")
    assert "takedown.fi" not in repr(block) and block.digest in repr(block)


def test_optout_command_rewrites_only_affected_shards(finished, tmp_path):
    output = tmp_path / "out"
    shutil.copytree(finished[0], output)
    before = {p.name: p.read_bytes() for p in (output / "fin_Latn" / "data").glob("*.parquet")}
    documents = released(output)
    listed = {i for i, d in documents.items() if "takedown.fi" in d["url"]}
    assert len(listed) == 3
    card_before = (output / "fin_Latn" / "README.md").read_text()
    (tmp_path / "list.txt").write_text("takedown.fi\n")
    results = apply_takedown(str(output), [str(tmp_path / "list.txt")])
    result = results["fin_Latn"]
    assert result.removed == 3
    after = released(output)
    assert set(after) == set(documents) - listed
    touched = {documents[i]["_shard"].rsplit("/", 1)[-1] for i in listed}
    for name, data in before.items():
        if name not in touched:
            assert (output / "fin_Latn" / "data" / name).read_bytes() == data, name
    stats = json.loads((output / "fin_Latn" / "stats.json").read_text())
    assert stats["released"]["documents"] == len(documents) - 3
    assert stats["optout"]["per_crawl"][ROBOTS]["list"] == 2 and stats["optout"]["per_crawl"][NO_ROBOTS]["list"] == 1
    card = (output / "fin_Latn" / "README.md").read_text()
    assert card != card_before and f"| {ROBOTS} | yes | 7 | 2 | 2 | 2 |" in card
    assert json.loads((output / "_work" / "optout" / "lists" / "index.json").read_text())[0]["entries"] == 1

    # the command line: a second list, a URL prefix; the first list stays recorded and applied
    (tmp_path / "prefix.txt").write_text("https://keep.fi/x/\n")
    result = CliRunner().invoke(app, ["optout", str(output), "--list", str(tmp_path / "prefix.txt")])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["fin_Latn: removed 1 documents, rewrote 1 of "
                                          f"{len(list((output / 'fin_Latn' / 'data').glob('*.parquet')))} shards "
                                          "(the others are unchanged)"]
    assert not [d for d in released(output).values() if d["url"].startswith("https://keep.fi/x/")]
    recorded = json.loads((output / "_work" / "optout" / "lists" / "index.json").read_text())
    assert [entry["entries"] for entry in recorded] == [1, 1]

    # a rerun applies the recorded lists in stage 3 (and nothing of them in stage 1)
    graph = build_graph(["fin"], lid="ft176")
    plan = prepare(RunOptions(languages=["fin"], snapshots="2024-*", output=str(output), optout="list"), None, graph,
                   Output(str(output)), map_fn=None)
    assert plan.applied == ["list"] and len(plan.lists) == 2
    first = graph.languages["fin_Latn"].stage3[0]
    assert isinstance(first, ListOptOut)
    assert first.listed("https://takedown.fi/z") and first.listed("https://keep.fi/x/2")
    assert not [b for b in graph.shared if isinstance(b, (ListOptOut, RobotsOptOut, TdmOptOut))]


def test_group_selection_follows_rfc9309_exact_product_tokens():
    from curate.blocks.optout import Robots

    robots = Robots.parse("User-agent: Google\nAllow: /\n\nUser-agent: *\nDisallow: /\n\n"
                          "user-agent: gptbot\nDisallow: /private\n")
    url = "https://a.fi/page"
    # Google-Extended has no group of its own: the `*` group applies (not the `Google` group)
    assert robots.allowed(url, "Google-Extended") is False
    assert robots.allowed(url, "Google") is True
    assert robots.allowed(url, "GPTBot") is True  # its own group (case-insensitive), which allows /page
    assert robots.allowed("https://a.fi/private/x", "GPTBot") is False
    assert robots.allowed(url, "CCBot") is False  # no own group: `*`
    assert Robots.parse("User-agent: CCBot\nDisallow: /\n").allowed(url, "GPTBot") is True  # no `*` group: allow


def test_sorted_lookup_reads_only_the_row_groups_of_the_wanted_hosts(tmp_path, monkeypatch):
    from curate.blocks import optout

    hosts = sorted(f"https://h{n:05d}.fi:443" for n in range(2_500))
    table = pa.table({"host": hosts, "kind": ["rules"] * len(hosts), "digest": [h[-9:] for h in hosts]})
    Output(str(tmp_path)).write_parquet(str(tmp_path / "t" / "part-00000.parquet"), table, row_group_rows=1_000)
    read: list[list[int]] = []
    original = pq.ParquetFile.read_row_groups
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups",
                        lambda self, groups, **kw: read.append(list(groups)) or original(self, groups, **kw))
    wanted = [hosts[5], hosts[2_400], "https://missing.fi:443"]
    found = optout.lookup_sorted(Output(str(tmp_path)), "t", wanted, 1)
    assert {h: row["digest"] for h, row in found.items()} == {hosts[5]: hosts[5][-9:], hosts[2_400]: hosts[2_400][-9:]}
    assert read == [[0, 2]]  # row groups 0 and 2 of 3 (the missing host sorts after every range)
    assert found == optout.lookup(Output(str(tmp_path)), "t", wanted, 1)


def test_optout_mistakes_are_one_line(tmp_path):
    from curate.errors import UserError

    with pytest.raises(UserError, match=r"^--optout 'robots,cookies': unknown cookies; choose from robots, tdm, list "
                                        r"or none$"):
        RunOptions(languages=["fin"], snapshots="2024-*", optout="robots,cookies")
    graph = build_graph(["fin"], lid="ft176")
    with pytest.raises(UserError, match=r"^--optout list: give the list\(s\) with --optout-list FILE_OR_URL$"):
        prepare(RunOptions(languages=["fin"], snapshots="2024-*", output=str(tmp_path), optout="list"), None, graph,
                Output(str(tmp_path)), map_fn=None)
    with pytest.raises(UserError, match=r"^cannot read the opt-out list .*no-such-list.txt \(FileNotFoundError"):
        prepare(RunOptions(languages=["fin"], snapshots="2024-*", output=str(tmp_path),
                           optout_lists=[str(tmp_path / "no-such-list.txt")], optout="list"), None, graph,
                Output(str(tmp_path)), map_fn=None)


def test_robots_from_adds_a_crawls_robots_files_and_blocks_take_their_slots(optout_mirror, tmp_path):
    from types import SimpleNamespace

    from curate.blocks.prefilter import Prefilter
    from curate.blocks.url_filter import UrlFilter

    def serial(fn, items):
        return [fn(item) for item in items]

    plan = SimpleNamespace(crawls=[NO_ROBOTS], source=Source(str(optout_mirror)))
    options = RunOptions(languages=["fin"], snapshots="2024-18", source=str(optout_mirror), output=str(tmp_path),
                         lid="ft176", robots_from=["2024-22"], robots_agents=("GPTBot",))
    graph = build_graph(["fin"], lid="ft176")
    applied = prepare(options, plan, graph, Output(str(tmp_path)), serial)
    assert applied.applied == ["robots", "tdm"] and applied.agents == ["GPTBot"]
    assert applied.robots_crawls == {NO_ROBOTS: False, ROBOTS: True}
    assert [type(b) for b in graph.shared][:4] == [UrlFilter, RobotsOptOut, TdmOptOut, Prefilter]
    robots = graph.shared[1]
    assert robots(pa.table({"url": ["https://gpt.fi/vanha/1", "https://ccbot.fi/uutiset/1"]}))[
        "drop_reason"].to_pylist() == ["optout.robots", None]  # GPTBot only: CCBot's group does not count

    none = build_graph(["fin"], lid="ft176")
    assert prepare(RunOptions(languages=["fin"], snapshots="2024-18", output=str(tmp_path), optout="none"), plan,
                   none, Output(str(tmp_path)), serial).applied == []
    assert [type(b) for b in none.shared][:2] == [UrlFilter, Prefilter]
