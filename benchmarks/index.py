"""Index-guided stage 1 (`--select index`) against a full read, on the same WARCs: bytes read and wall time, as ratios.

    .venv/bin/python benchmarks/index.py [--files 6] [--pages 300] [--finnish-share 0.01] [--http]

Input: a Common Crawl layout built with the tests' mirror helpers (tests/mirror.py), one crawl of `--files`
gzip-per-record WARCs of `--pages` pages each, `--finnish-share` of them Finnish (Common Crawl has ~0.3-0.4 %
Finnish pages) and the rest Estonian, Swedish and English, each page carrying ~24 KB of inline script as real pages
do, so that records weigh ~15 KB compressed, as Common Crawl's do; plus the columnar URL index of the crawl
(`build_index`: offsets and lengths from warcio, languages from lid.176 standing in for CLD2). Kept under
$CURATE_BENCH_DIR.

Both sides run curate's stage 1 in this process (`Stage1Work.run`, one unit holding every file: read → URL filter →
trafilatura → lid.176 → Finnish statistics), on one core, from the local folder (or, with `--http`, through a
loopback HTTP server, where every range is a request):

- full: every record of every WARC;
- index: `make_plan(select="index")` (the index query, timed apart) → the selected byte ranges only.

Prints bytes read, records read, Finnish documents kept and wall seconds of each side, the ratios index/full, and
the share of the full side's Finnish documents the index side keeps too (recall at stage 1).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.setup()
common.use_test_helpers()

from mirror import Mirror, Record, build_index, documents, page, write_warc  # noqa: E402

CRAWL = "CC-MAIN-2024-22"
TLDS = {"fin": "fi", "est": "ee", "swe": "se", "eng": "com"}


def padded_page(text: str, language: str, title: str, rng: random.Random) -> bytes:
    """A page with ~24 KB of inline script (random hex, half as compressible as text), as real pages carry."""
    script = "".join(rng.choices("0123456789abcdef", k=24_000))
    html = page(text, language[:2], title)
    return html.replace("</head>", f"<script>var state='{script}';</script></head>").encode()


def build_corpus(root: Path, files: int, pages: int, finnish_share: float) -> Mirror:
    """One crawl of `files` WARCs, `pages` pages each; the index of the crawl."""
    mirror = Mirror(root)
    paths = []
    finnish = max(1, round(pages * finnish_share))
    for number in range(files):
        rng = random.Random(number)
        others = (pages - finnish) // 3
        records = []
        for language, count in (("fin", finnish), ("est", others), ("swe", others), ("eng", pages - finnish - 2 * others)):
            for i, text in enumerate(documents(language, count, seed=1000 + number, sentences_per_doc=(12, 30))):
                record_id = f"<urn:uuid:bench-{language}-{number}-{i:05d}>"
                records.append(Record(f"https://news.bench{number}.{TLDS[language]}/{language}/{i}",
                                      padded_page(text, language, f"{language} {i}", rng), record_id=record_id))
                if language == "fin":
                    mirror.finnish[record_id] = text
        rng.shuffle(records)
        relative = f"crawl-data/{CRAWL}/segments/1715971{number:05d}.0/warc/CC-MAIN-bench-{number:05d}.warc.gz"
        write_warc(root / relative, records)
        paths.append(relative)
    listing = root / "crawl-data" / CRAWL / "warc.paths.gz"
    listing.write_bytes(gzip.compress("\n".join(paths).encode() + b"\n"))
    (root / "collinfo.json").write_text(json.dumps([{"id": CRAWL, "name": CRAWL}]))
    mirror.crawls = {CRAWL: paths}
    build_index(mirror, crawls=(CRAWL,))
    return mirror


def corpus(args: argparse.Namespace) -> Path:
    root = common.cache_dir() / f"index-corpus-{args.files}x{args.pages}-{args.finnish_share}"
    if not (root / "collinfo.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        print(f"building {root} …", file=sys.stderr)
        build_corpus(root, args.files, args.pages, args.finnish_share)
    return root


def stage1(source: str, files: tuple, out: Path, label: str) -> dict:
    """One stage-1 unit over `files` in this process; wall seconds, bytes, records, Finnish ids kept."""
    from curate.blocks.extract import extractor_process
    from curate.blocks.warc import WarcReader
    from curate.pipeline.execution.graph import build_graph
    from curate.pipeline.execution.stage1 import Stage1Work, Unit
    from curate.pipeline.execution.storage import Output
    from curate.pipeline.execution.streams import read_parts

    graph = build_graph(["fin"], lid="ft176")
    graph.check()
    work = Stage1Work(graph, source, str(out / label), WarcReader())
    warmup = Unit("warmup", files[:1])  # LID model, tokenizer, URL lists: loaded before the timing
    Stage1Work(graph, source, str(out / "warmup"), WarcReader(limit=2)).run(warmup)
    # a fresh extractor subprocess, started outside the timing: trafilatura's `deduplicate` cache drops a text
    # segment seen more than twice in one process, so pages seen by an earlier pass would come out shorter
    block = next(b for b in graph.shared if b.name == "extract")
    extractor = extractor_process(block.extractor, block.favour_precision)
    extractor._kill()
    assert extractor.extract("<html><body><p>Käynnistys.</p></body></html>", block.timeout_s)[0] == "ok"
    started = time.perf_counter()
    result = work.run(Unit(label, files))
    seconds = time.perf_counter() - started
    kept = set()
    if result.kept_parts.get("fin_Latn"):
        kept |= set(read_parts(Output(work.output), result.kept_parts["fin_Latn"], ["id"])["id"].to_pylist())
    return {"seconds": seconds, "bytes": result.bytes_read, "records": result.counts.get("warc.records", 0),
            "documents": result.documents_read, "kept": kept, "warc_bytes": result.warc_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--pages", type=int, default=300, help="pages per WARC")
    parser.add_argument("--finnish-share", type=float, default=0.01)
    parser.add_argument("--http", action="store_true", help="read through a loopback HTTP server")
    args = parser.parse_args()
    common.pin_to_one_core()
    root = corpus(args)

    from curate.pipeline.execution.run import RunOptions, make_plan

    server = None
    source = str(root)
    if args.http:
        from http_server import FaultyServer

        server = FaultyServer(root).__enter__()
        # it answers `Range: bytes=a-b` with everything from a on: the client reads b - a + 1 bytes and hangs up,
        # and the server's complaint about the reset connection is noise
        server.httpd.handle_error = lambda request, address: None
        source = server.url
    out = Path(tempfile.mkdtemp(prefix="curate-bench-index-"))
    try:
        options = RunOptions(languages=["fin"], snapshots=CRAWL, source=source, lid="ft176", select="full")
        full_files = tuple(make_plan(options).files)
        started = time.perf_counter()
        plan = make_plan(RunOptions(languages=["fin"], snapshots=CRAWL, source=source, lid="ft176", select="index"))
        query = time.perf_counter() - started
        full = stage1(source, full_files, out, "full")
        index = stage1(source, tuple(plan.files), out, "index")
    finally:
        if server is not None:
            server.__exit__(None, None, None)
        shutil.rmtree(out, ignore_errors=True)

    index_total = index["seconds"] + query
    both = len(full["kept"] & index["kept"])
    print(f"corpus: {len(full_files)} WARCs x {args.pages} pages, {args.finnish_share:.1%} Finnish, "
          f"{full['bytes'] / 1e6:,.1f} MB; read from {'loopback HTTP' if args.http else 'a local folder'}; one core")
    print(f"{'':8}{'bytes read':>14}{'records':>10}{'fin kept':>10}{'seconds':>10}")
    print(f"{'full':8}{full['bytes']:>14,}{full['records']:>10,}{len(full['kept']):>10,}{full['seconds']:>10.2f}")
    print(f"{'index':8}{index['bytes']:>14,}{index['records']:>10,}{len(index['kept']):>10,}{index_total:>10.2f}"
          f"   (index query {query:.2f} s + stage 1 {index['seconds']:.2f} s)")
    print(f"ratio index/full: bytes read {index['bytes'] / full['bytes']:.4f}, records {index['records'] / full['records']:.4f}, "
          f"wall time {index_total / full['seconds']:.4f} ({full['seconds'] / index_total:.1f}x faster)")
    print(f"recall at stage 1: {both} of the full side's {len(full['kept'])} Finnish documents "
          f"({both / max(1, len(full['kept'])):.4f}); index-only: {len(index['kept'] - full['kept'])}")


if __name__ == "__main__":
    main()
