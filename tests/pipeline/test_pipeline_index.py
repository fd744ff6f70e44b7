"""Index-guided runs (`--select index`): Common Crawl's columnar URL index → byte ranges → the same blocks.

The mirror gets a real-schema index (tests/mirror.py `build_index`: offsets and lengths from warcio, languages from
lid.176 standing in for CLD2). Checked: the selection against the index rows, ranged reads (local, HTTP with
throttling and resets, S3 in moto), the Finnish documents of an index run against a full run, bytes read, resume
after a kill, and the one-line error for a crawl without an index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from http_server import FaultyServer
from mirror import build_index, build_mirror
from warcio.archiveiterator import ArchiveIterator

from curate.errors import UserError
from curate.blocks.warc import WarcReader
from curate.language_configs import configured_languages
from curate.language_configs.cld2 import CLD2_CODES, cld2_languages, index_code
from curate.pipeline.sources.cc_index import HTML_MIMES, Selection, recall
from curate.pipeline.sources.ranged import MAX_GAP, RangedStream, fsspec_fetch, merge_spans
from curate.pipeline.sources.remote import RetryPolicy
from curate.pipeline.execution.run import MIN_INDEX_RECORDS_PER_UNIT, RunOptions, describe_plan, make_plan, run
from curate.pipeline.sources.crawls import Source
from curate.pipeline.sources.estimate import request_bytes, responses_per_byte

FAST = RetryPolicy(attempts=5, initial_delay_s=0.01, max_delay_s=0.05)
CURATE = [sys.executable, "-m", "curate"]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A mirror of its own (the shared one stays read-only) with an index for CC-MAIN-2024-22 and -18 only."""
    mirror = build_mirror(tmp_path_factory.mktemp("indexed"))
    return mirror, build_index(mirror)


def options(mirror, output: Path, **extra) -> RunOptions:
    settings = {"languages": ["fin"], "snapshots": "2024-*", "source": str(mirror.root), "output": str(output),
                "lid": "ft176", "files_per_unit": 2, "buckets": 4, "num_cpus": 2}
    return RunOptions(**{**settings, **extra})


def expected_selection(tables: dict[str, pa.Table], codes: set[str], primary_only: bool = False) -> dict:
    """warc_filename → sorted (offset, length) of the rows a selection must read, computed from the rows."""
    chosen: dict[str, list] = {}
    for table in tables.values():
        for row in table.to_pylist():
            languages = (row["content_languages"] or "").split(",")
            hit = languages[0] in codes if primary_only else bool(codes & set(languages))
            if row["fetch_status"] == 200 and row["content_mime_detected"] in HTML_MIMES and hit:
                chosen.setdefault(row["warc_filename"], []).append((row["warc_record_offset"], row["warc_record_length"]))
    return {path: sorted(spans) for path, spans in chosen.items()}


def fetched_bytes(spans: list[tuple[int, int]], max_gap: int) -> int:
    """What reading `spans` costs when ranges at most `max_gap` apart share a request (computed apart)."""
    total, end = 0, None
    for offset, length in sorted(spans):
        gap = 0 if end is None else offset - end
        total += length + (gap if end is not None and gap <= max_gap else 0)
        end = offset + length
    return total


def released(output: Path) -> dict[str, dict]:
    return {row["id"]: row for path in sorted((output / "fin_Latn" / "data").rglob("*.parquet"))
            for row in pq.read_table(path).to_pylist()}


# --- languages and the selection ------------------------------------------------------------------------------


@pytest.mark.parametrize("code, expected", [("fin_Latn", "fin"), ("ekk_Latn", "est"), ("arb_Arab", "ara"),
                                            ("cmn_Hani", "zho"), ("nob_Latn", "nor"), ("swe_Latn", "swe"),
                                            ("nno_Latn", "nno"), ("zsm_Latn", "msa"), ("pes_Arab", "fas")])
def test_our_codes_map_to_the_codes_cld2_writes_in_the_index(code, expected):
    assert index_code(code) == expected


def test_every_configured_language_can_be_selected_and_others_say_use_full():
    assert all(index_code(code) in CLD2_CODES for code in configured_languages())
    with pytest.raises(UserError, match=r"CLD2 does not detect 'gsw'; use --select full"):
        index_code("gsw_Latn")


def test_selection_matches_any_position_or_only_the_first():
    languages = pa.array(["fin", "eng,fin", "est,fin,eng", "fij", "finn", "est", None, "eng,est"])
    import polars as pl

    def matches(selection: Selection) -> list[bool]:
        return pl.DataFrame({"l": languages}).select(selection.matches(pl.col("l")))["l"].to_list()

    assert matches(Selection.for_run(["fin"], "index")) == [True, True, True, False, False, False, False, False]
    assert matches(Selection(("fin",), primary_only=True)) == [True, False, False, False, False, False, False, False]
    neighbors = Selection.for_run(["fin"], "index+neighbors")
    assert neighbors.codes == ("fin", "est")
    assert matches(neighbors) == [True, True, True, False, False, True, False, True]
    assert Selection.for_run(["fin", "ekk", "nob"], "index").codes == ("fin", "est", "nor")
    with pytest.raises(UserError, match=r"unknown selection 'indexx' \(--select\): use one of auto, full, index, index\+neighbors"):
        Selection.for_run(["fin"], "indexx")


def test_a_small_selection_is_spread_over_the_workers(indexed):
    """A selection of a few dozen records is not one unit that one worker extracts while the other idles: units
    hold at least `MIN_INDEX_RECORDS_PER_UNIT` records, and otherwise enough units for every worker slot."""
    mirror, _ = indexed
    plan = make_plan(options(mirror, Path("unused"), select="index", num_cpus=2))
    records = [(unit.files[0].crawl, sum(f.records for f in unit.files)) for unit in plan.units]
    assert sum(size for _, size in records) > 2 * MIN_INDEX_RECORDS_PER_UNIT
    assert len(plan.units) > len(plan.crawls), "a crawl's few records make more than one unit"
    last = {crawl: index for index, (crawl, _) in enumerate(records)}
    assert all(size >= MIN_INDEX_RECORDS_PER_UNIT for index, (_, size) in enumerate(records)
               if index not in last.values()), "only a crawl's last unit holds fewer"


def test_an_index_scan_hands_polars_large_tables_whatever_the_row_groups():
    """A scan yields a batch per row group (16 rows in the test mirror's index): they reach polars joined."""
    from curate.pipeline.sources.cc_index import _joined

    batches = [pa.record_batch({"n": list(range(size))}) for size in (3, 0, 4, 5, 0)]
    assert [t.num_rows for t in _joined(batches, 6)] == [7, 5]
    assert [t.num_rows for t in _joined(batches, 100)] == [12]
    assert list(_joined([pa.record_batch({"n": pa.array([], pa.int64())})], 6)) == []


def test_neighbouring_ranges_share_one_request():
    blocks = merge_spans([(100, 10), (0, 50), (60, 20), (5000, 5)], max_gap=20)
    assert [(b.offset, b.length, b.spans) for b in blocks] == [
        (0, 110, ((0, 50), (60, 20), (100, 10))), (5000, 5, ((5000, 5),))]
    assert [(b.offset, b.length) for b in merge_spans([(0, 50), (50, 10), (70, 1)], max_gap=0)] == [(0, 60), (70, 1)]


def test_the_plan_selects_exactly_the_labelled_records(indexed):
    mirror, tables = indexed
    plan = make_plan(options(mirror, Path("unused"), select="index", index_records_per_unit=30))
    expected = expected_selection(tables, {"fin"})
    assert {f.path: f.spans() for f in plan.files} == expected
    assert sum(f.records for f in plan.files) == sum(len(v) for v in expected.values()) > 40
    html_200 = Counter(r["warc_filename"] for t in tables.values() for r in t.to_pylist()
                       if r["fetch_status"] == 200 and r["content_mime_detected"] in HTML_MIMES)
    assert {f.path: f.considered for f in plan.files} == {p: html_200[p] for p in expected}
    real_excerpt = mirror.crawls["CC-MAIN-2024-22"][-1]
    assert real_excerpt not in {f.path for f in plan.files}, "a WARC without a selected record is not read"
    assert all(f.canonical.startswith(f.name + "#ranges=") for f in plan.files)
    assert [u.files[0].crawl for u in plan.units] == ["CC-MAIN-2024-18", "CC-MAIN-2024-22", "CC-MAIN-2024-22"]

    primary = make_plan(options(mirror, Path("unused"), select="index", index_primary_only=True))
    assert {f.path: f.spans() for f in primary.files} == expected_selection(tables, {"fin"}, primary_only=True)
    neighbors = make_plan(options(mirror, Path("unused"), select="index+neighbors"))
    assert {f.path: f.spans() for f in neighbors.files} == expected_selection(tables, {"fin", "est"})
    full = make_plan(options(mirror, Path("unused"), select="full"))
    ids = [{u.id for u in p.units} for p in (plan, neighbors, full)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]), "a changed selection never reuses a unit"
    assert all(f.ranges is None and f.canonical == f.name for f in full.files)

    text = describe_plan(plan)
    selected_22 = sum(len(v) for k, v in expected.items() if "2024-22" in k)
    assert f"CC-MAIN-2024-22: {selected_22:,} of {sum(html_200[p] for p in expected if '2024-22' in p):,} HTML records" \
        in text and "core-hours" in text


def test_by_default_the_index_selects_where_it_can_label_every_language(indexed, tmp_path):
    """`select="auto"`: index+neighbors when CLD2 labels every language and every crawl has the index (the first
    line says so, with the share of bytes read); else full, saying why."""
    mirror, tables = indexed
    auto = make_plan(options(mirror, Path("unused")))
    assert (auto.select, auto.select_reason) == ("index+neighbors", "auto: Common Crawl's index labels fin_Latn (CLD2);"
                                                                     " --select full reads every record")
    assert {f.path: f.spans() for f in auto.files} == expected_selection(tables, {"fin", "est"})
    listed = sum((mirror.root / f.path).stat().st_size for f in auto.listed)
    read = sum(request_bytes(f) for f in auto.files)
    first = describe_plan(auto).splitlines()[0]
    assert first == (f"selection: index+neighbors ({auto.select_reason}): {sum(f.records for f in auto.files):,} "
                     f"HTML records in {len(auto.files)} of {len(auto.listed)} WARC files, ~{read / 1e6:,.1f} MB of "
                     f"~{listed / 1e6:,.1f} MB: {read / listed * 100:.1f} % of the bytes")
    full = make_plan(options(mirror, Path("unused"), select="full"))
    assert 0 < read < listed and [f.path for f in auto.listed] == [f.path for f in full.files]
    assert describe_plan(full).splitlines()[0] == (f"selection: full (--select full): every record of "
                                                   f"{len(full.files)} WARC files, 100 % of their bytes")
    no_index = make_plan(options(mirror, Path("unused"), snapshots="2020-34,2024-22"))
    assert no_index.select == "full" and all(f.ranges is None for f in no_index.files)
    assert no_index.select_reason == f"auto: no columnar index for CC-MAIN-2020-34 at {mirror.root}"
    unlabelled = make_plan(options(mirror, Path("unused"), languages=["fin", "gsw_Latn"]))
    assert (unlabelled.select, unlabelled.select_reason) == (
        "full", "auto: CLD2 cannot label gsw_Latn, so Common Crawl's index cannot select it")
    assert {f.path for f in unlabelled.files} == {f.path for f in full.files}


def test_the_languages_the_index_can_label_are_cld2s_in_its_scripts():
    labelled = cld2_languages()
    assert labelled["fin_Latn"] == "fin" and labelled["ekk_Latn"] == "est" and labelled["cmn_Hani"] == "zho"
    assert labelled["srp_Cyrl"] == labelled["srp_Latn"] == "srp" and labelled["rus_Cyrl"] == "rus"
    assert "hin_Latn" not in labelled and "arb_Latn" not in labelled and "gsw_Latn" not in labelled
    assert all(index_code(code) == index for code, index in labelled.items())
    assert set(labelled) >= set(configured_languages())


def test_only_languages_cld2_detects_are_labelled():
    """CLD2 names 12 languages it never detects (Twi, Ewe, …): a run of one reads every record, since the index
    would select nothing; CLD2's own codes map to the index's for every language it detects."""
    import pycld2

    from curate.language_configs.cld2 import detector_codes

    detected = {code for name, code in pycld2.LANGUAGES if name in pycld2.DETECTED_LANGUAGES}
    assert set(detector_codes()) == {c for c in detected if not c.startswith(("xx-", "zz")) and c not in
                                     ("xxx", "tlh", "nr")}  # script-only, test, Klingon; Ndebele has no index code
    assert CLD2_CODES >= set(cld2_languages().values()) and "twi" not in CLD2_CODES
    for code in ("twi_Latn", "ewe_Latn", "new_Deva"):
        assert code not in cld2_languages()
        with pytest.raises(UserError, match="CLD2 does not detect"):
            index_code(code)
    assert detector_codes()["fi"] == "fin" and detector_codes()["zh-Hant"] == "zho" and detector_codes()["iw"] == "heb"


def test_a_sampled_run_selects_within_the_same_sample(indexed):
    mirror, tables = indexed
    full = make_plan(options(mirror, Path("unused"), max_files=1, seed=3, select="full"))
    index = make_plan(options(mirror, Path("unused"), max_files=1, seed=3, select="index"))
    assert {f.path for f in index.files} <= {f.path for f in full.files}
    expected = expected_selection(tables, {"fin"})
    assert {f.path: f.spans() for f in index.files} == {f.path: expected[f.path] for f in full.files
                                                       if f.path in expected}


def test_a_crawl_without_an_index_is_one_line(indexed, tmp_path):
    mirror, _ = indexed
    with pytest.raises(UserError) as error:
        make_plan(options(mirror, tmp_path, snapshots="2020-34,2024-22", select="index"))
    assert str(error.value).startswith("no columnar index (cc-index/table/cc-main/warc/) for CC-MAIN-2020-34 at ")
    assert str(error.value).endswith("; use --select full for it")
    result = subprocess.run([*CURATE, "run", "--lang", "fin", "--snapshots", "2020-34", "--source", str(mirror.root),
                             "--lid", "ft176", "--output", str(tmp_path / "out"), "--select", "index"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: no columnar index (cc-index/table/cc-main/warc/) for CC-MAIN-2020-34")


# --- ranged reads -----------------------------------------------------------------------------------------------


def _first_file(indexed) -> tuple[str, list[tuple[int, int]]]:
    mirror, tables = indexed
    expected = expected_selection(tables, {"fin"})
    path = mirror.crawls["CC-MAIN-2024-18"][0]
    return path, expected[path]


def test_a_ranged_stream_reads_only_the_selected_records(indexed):
    mirror, tables = indexed
    path, spans = _first_file(indexed)
    data = (mirror.root / path).read_bytes()
    source = Source(str(mirror.root))
    stream = RangedStream(fsspec_fetch(source.fs, source.url(path)), spans, path, max_gap=0, batch_bytes=10_000)
    assert stream.read() == b"".join(data[o:o + n] for o, n in spans)
    assert stream.fetched == stream.position == sum(n for _, n in spans)

    counts: Counter = Counter()
    stream = source.open(path, spans)
    rows = [r for batch in WarcReader().read(stream, "x", "CC-MAIN-2024-18", counts) for r in batch.to_pylist()]
    urls = {r["url"] for t in tables.values() for r in t.to_pylist()
            if r["warc_filename"] == path and (r["warc_record_offset"], r["warc_record_length"]) in set(spans)}
    assert {r["url"] for r in rows} == urls and len(rows) == len(spans)
    assert counts["warc.records"] == len(spans)
    assert stream.position == sum(n for _, n in spans) and stream.fetched == fetched_bytes(spans, MAX_GAP)


def test_a_damaged_selected_record_is_counted_and_the_rest_read(indexed, tmp_path):
    mirror, _ = indexed
    path, spans = _first_file(indexed)
    data = bytearray((mirror.root / path).read_bytes())
    offset, length = spans[3]
    data[offset + length // 2: offset + length // 2 + 30] = bytes(b ^ 0x5A for b in data[offset + length // 2:
                                                                                         offset + length // 2 + 30])
    (tmp_path / "damaged.warc.gz").write_bytes(bytes(data))
    counts: Counter = Counter()
    stream = Source(str(tmp_path)).open("damaged.warc.gz", spans)
    rows = [r for batch in WarcReader().read(stream, "x", "c", counts) for r in batch.to_pylist()]
    assert counts["warc.corrupt_gzip"] == 1 and len(rows) == len(spans) - 1


def test_http_ranges_survive_throttling_and_dropped_connections(indexed):
    mirror, _ = indexed
    path, spans = _first_file(indexed)
    data = (mirror.root / path).read_bytes()
    tail = spans[-2:]  # neighbours: one request; near the end of the file, so a reset cuts it short
    assert len(merge_spans(tail)) == 1
    with FaultyServer(mirror.root) as server:
        server.faults[path] = ["503", "reset", "ok"]
        stream = Source(server.url, policy=FAST).open(path, tail)
        assert stream.read() == b"".join(data[o:o + n] for o, n in tail)
        assert stream.retries == 2
        ranges = [r for p, r in server.requests if p == path]
        assert ranges == [f"bytes={tail[0][0]}-{tail[-1][0] + tail[-1][1] - 1}"] * 3

        server.faults[path] = ["503"] * 10
        with pytest.raises(IOError, match="giving up after 5 attempts"):
            Source(server.url, policy=FAST).open(path, tail).read()

        http_plan = make_plan(options(mirror, Path("unused"), source=server.url, select="index"))
    assert http_plan.units == make_plan(options(mirror, Path("unused"), select="index")).units


def test_the_selection_is_cached_under_the_output_and_a_dry_run_only_reads_it(indexed, tmp_path):
    mirror, _ = indexed
    output = tmp_path / "out"
    with FaultyServer(mirror.root) as server:
        settings = options(mirror, output, source=server.url, select="index")

        def index_reads() -> int:
            return sum(n for path, n in server.gets.items() if "cc-index/" in path and path.endswith(".parquet"))

        dry = make_plan(settings)  # what --dry-run does: scans, writes nothing
        assert not output.exists() and index_reads() > 0
        first = make_plan(settings, fill_cache=True)
        cached = sorted((output / "_work" / "index").rglob("*.parquet"))
        assert [p.parent.name for p in cached] == ["CC-MAIN-2024-18", "CC-MAIN-2024-22"]
        reads = index_reads()
        again = make_plan(settings, fill_cache=True)
        assert index_reads() == reads, "the second plan reads no index file"
        assert dry.units == first.units == again.units
        assert make_plan(options(mirror, output, source=server.url, select="index+neighbors")).units != first.units
        assert index_reads() > reads, "another selection is another cache entry"


def test_s3_index_and_ranges_through_moto(indexed, monkeypatch):
    from moto.server import ThreadedMotoServer

    mirror, _ = indexed
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    import fsspec

    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                            ("AWS_DEFAULT_REGION", "us-east-1"), ("AWS_ENDPOINT_URL", endpoint)):
            monkeypatch.setenv(name, value)
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="commoncrawl")
        for path in mirror.root.rglob("*"):
            if path.is_file():
                s3.put_object(Bucket="commoncrawl", Key=str(path.relative_to(mirror.root)), Body=path.read_bytes())
        fsspec.config.conf["s3"] = {"client_kwargs": {"endpoint_url": endpoint}}
        plan = make_plan(options(mirror, Path("unused"), source="s3://commoncrawl", select="index"))
        assert plan.units == make_plan(options(mirror, Path("unused"), select="index")).units
        warc = plan.files[0]
        data = (mirror.root / warc.path).read_bytes()
        spans = warc.spans()
        stream = Source("s3://commoncrawl").open(warc.path, spans)
        assert stream.read() == b"".join(data[o:o + n] for o, n in spans)
        assert stream.fetched == fetched_bytes(spans, MAX_GAP)
    finally:
        fsspec.config.conf.pop("s3", None)
        server.stop()


# --- index runs end to end --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(indexed, tmp_path_factory):
    """A mirror without exact copies of pages (trafilatura's `deduplicate` cache makes a third copy's text depend
    on what its worker extracted before, i.e. on scheduling), run twice: in process with every record of every
    WARC, and through the CLI with only the index-selected records: killed after its first unit commit (the
    driver dies: the commit is the driver's), then rerun. The CLI runs join this process's Ray, as `ray job
    submit` joins a cluster (that saves starting one; the fault is armed in the CLI's driver only)."""
    import ray

    mirror = build_mirror(tmp_path_factory.mktemp("plain"), with_bad_records=False)
    build_index(mirror)
    full_output, index_output = tmp_path_factory.mktemp("full"), tmp_path_factory.mktemp("index")
    full = run(options(mirror, full_output, select="full")).languages["fin_Latn"]
    args = [*CURATE, "run", "--lang", "fin", "--snapshots", "2024-*", "--source", str(mirror.root), "--lid", "ft176",
            "--output", str(index_output), "--buckets", "4", "--select", "index"]
    env = {**os.environ, "RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    killed = subprocess.run(args, capture_output=True, text=True, timeout=600,
                            env={**env, "CURATE_FAULT": "after_unit_commit:1"})
    manifests = index_output / "_work" / "manifests" / "stage1"
    committed = {p.name: p.read_text() for p in manifests.glob("*.json")}
    stats_after_kill = (index_output / "fin_Latn" / "stats.json").exists()
    resumed = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "\nselection: index (--select index): " in "\n" + resumed.stderr, resumed.stderr[:2000]
    index = json.loads((index_output / "fin_Latn" / "stats.json").read_text())
    return {"mirror": mirror, "full": (full_output, full), "index": (index_output, index),
            "killed": (killed.returncode, committed, stats_after_kill)}


def test_an_index_run_releases_the_full_runs_finnish_documents(runs):
    (full_output, full), (index_output, index) = runs["full"], runs["index"]
    assert released(index_output) and released(index_output) == released(full_output)
    assert index["stage1"]["kept"] == full["stage1"]["kept"] == len(runs["mirror"].finnish)
    assert index["documents_read"] < full["documents_read"]
    assert index["shared"]["lid.other_language"] < full["shared"]["lid.other_language"]
    measured = recall(str(full_output), str(index_output), "fin")
    assert measured.recall == 1.0 and measured.full == measured.index == len(released(full_output))


def test_an_index_run_reads_only_the_selected_ranges(runs):
    mirror = runs["mirror"]
    index_output, stats = runs["index"]
    tables = {crawl: pq.read_table(mirror.root / "cc-index" / "table" / "cc-main" / "warc" / f"crawl={crawl}")
              for crawl in ("CC-MAIN-2024-22", "CC-MAIN-2024-18")}
    expected = expected_selection(tables, {"fin"})
    manifests = [json.loads(p.read_text()) for p in (index_output / "_work" / "manifests" / "stage1").glob("*.json")]
    assert len(manifests) == 2, "one unit per crawl (20,000 records per unit by default)"
    bytes_read = sum(m["result"]["bytes_read"] for m in manifests)
    assert bytes_read == sum(fetched_bytes(spans, MAX_GAP) for spans in expected.values())
    assert sum(n for spans in expected.values() for _, n in spans) <= bytes_read
    warc_bytes = sum(m["result"]["warc_bytes"] for m in manifests)
    assert warc_bytes == sum((mirror.root / path).stat().st_size for path in expected)
    assert bytes_read < warc_bytes
    assert (stats["input"]["bytes_read"], stats["input"]["warc_bytes"]) == (bytes_read, warc_bytes)
    assert stats["input"]["records_selected"] == sum(len(v) for v in expected.values())
    html_200 = sum(1 for t in tables.values() for r in t.to_pylist() if r["warc_filename"] in expected
                   and r["fetch_status"] == 200 and r["content_mime_detected"] in HTML_MIMES)
    assert stats["input"]["records_considered"] == html_200
    files = {f for m in manifests for f in m["files"]}
    assert all("#ranges=" in f for f in files) and len(files) == len(expected)


def test_an_index_run_killed_after_a_commit_resumes_without_redoing_it(runs):
    returncode, committed, stats_after_kill = runs["killed"]
    assert returncode != 0 and len(committed) == 1 and not stats_after_kill
    index_output, _ = runs["index"]
    after = {p.name: p.read_text() for p in (index_output / "_work" / "manifests" / "stage1").glob("*.json")}
    assert {name: after[name] for name in committed} == committed, "the committed unit was not read again"
    assert len(after) == 2


def test_a_dry_run_estimates_the_pages_and_the_bytes_the_runs_read(runs, tmp_path):
    """The full run's pages from the sampled record density (every file of the mirror is under the sample size:
    exact but for records the run cannot read), the index run's bytes as the merged ranged requests fetch them."""
    mirror = runs["mirror"]
    (_, full), (_, index) = runs["full"], runs["index"]
    full_plan = make_plan(options(mirror, tmp_path / "full", select="full"))
    estimated_pages = float(describe_plan(full_plan).splitlines()[-1].split("~")[2].split()[0].replace(",", ""))
    assert abs(estimated_pages - full["documents_read"]) <= 0.05 * full["documents_read"], (estimated_pages, full)
    index_plan = make_plan(options(mirror, tmp_path / "index", select="index"))
    assert sum(request_bytes(f) for f in index_plan.files) == index["input"]["bytes_read"]
    assert f"~{index['input']['bytes_read'] / 1e6:,.1f} MB to read," in describe_plan(index_plan)


def test_the_page_density_comes_from_whole_records_of_the_sampled_prefix(runs):
    """A whole small file gives its exact response count; a prefix that cuts a record counts the records before
    the cut only, so its density stays close."""
    mirror = runs["mirror"]
    source = Source(str(mirror.root))
    files = source.warc_files("CC-MAIN-2024-22")[:1]
    path = mirror.root / files[0].path
    with path.open("rb") as stream:
        responses = sum(1 for record in ArchiveIterator(stream) if record.rec_type == "response")
    assert responses_per_byte(source, files) * path.stat().st_size == pytest.approx(responses)
    cut = responses_per_byte(source, files, sample_bytes=path.stat().st_size // 2) * path.stat().st_size
    assert 0.7 * responses <= cut <= 1.3 * responses
