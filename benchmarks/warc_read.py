"""The read step alone, one core: CPU ms a page to turn the corpus' WARCs into HTML pages, for curate's reader
(fastwarc records, its own undoing of chunked transfer and content encodings), the warcio reader it replaced
(tests/blocks/warcio_reference.py: the same gzip framing, warcio's record parsing and `content_stream()`) and
datatrove's `WarcReader` (warcio's `ArchiveIterator` over the whole file, its `process_record`), on the same WARCs
of the crawl-like corpus (benchmarks/corpus.py). Each reader reads every file `--repeat` times in turns; the
fastest pass is reported (CPU seconds of this process: the machine's other load does not inflate it much).

    python benchmarks/warc_read.py [--scale 4] [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "blocks")]
import common  # noqa: E402

common.setup()

from corpus import build_corpus, load_manifest  # noqa: E402


def ours(data: bytes) -> int:
    from curate.blocks.warc import WarcReader

    return sum(batch.num_rows for batch in WarcReader().read(io.BytesIO(data), "f", "d", Counter()))


def warcio_reader(data: bytes) -> int:
    from warcio_reference import warcio_rows

    return len(warcio_rows(data)[0])


def datatrove_reader(data: bytes) -> int:
    from datatrove.pipeline.readers.warc import process_record
    from warcio.archiveiterator import ArchiveIterator

    return sum(1 for record in ArchiveIterator(io.BytesIO(data)) if process_record(record))


READERS = {"curate (fastwarc)": ours, "curate before (warcio)": warcio_reader, "datatrove WarcReader": datatrove_reader}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--corpus-dir", type=Path, default=common.cache_dir())
    args = parser.parse_args(argv)
    root = build_corpus(args.corpus_dir / f"corpus-scale{args.scale}-share0.01-seed0", args.scale)
    manifest = load_manifest(root)
    files = [(root / path).read_bytes() for path in manifest["files"]]
    cpu = common.pin_to_one_core()
    best: dict[str, float] = {}
    pages: dict[str, int] = {}
    for name, reader in READERS.items():
        reader(files[0])  # imports
    for _ in range(args.repeat):
        for name, reader in READERS.items():
            started = time.process_time()
            pages[name] = sum(reader(data) for data in files)
            best[name] = min(best.get(name, float("inf")), time.process_time() - started)
    print(f"{manifest['pages']:,} pages in {len(files)} WARCs ({sum(map(len, files)) / 1e6:.1f} MB), pinned to CPU "
          f"{cpu}, best of {args.repeat}")
    rows = [[name, pages[name], 1000 * best[name] / pages[name], best['datatrove WarcReader'] / best[name]]
            for name in READERS]
    print(common.table(rows, ["reader", "pages", "CPU ms a page", "× datatrove's speed"]))


if __name__ == "__main__":
    main()
