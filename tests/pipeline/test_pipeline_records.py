"""A record read more than once is one document: a mirror whose listing names one WARC twice and also holds
a byte copy of it under another name releases each `id` once, counting the extra rows `dedup.same_record`."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from mirror import build_mirror

from curate.pipeline.execution.run import RunOptions, run

CRAWL = "CC-MAIN-2024-22"


@pytest.fixture(scope="module")
def twice_listed(tmp_path_factory) -> tuple[Path, dict]:
    mirror = build_mirror(tmp_path_factory.mktemp("mirror"), files_per_crawl=1, with_bad_records=False)
    first = mirror.crawls[CRAWL][0]
    copy = first.replace(".warc.gz", "-copy.warc.gz")
    shutil.copy(mirror.root / first, mirror.root / copy)
    listing = [*mirror.crawls[CRAWL], first, copy]
    (mirror.root / "crawl-data" / CRAWL / "warc.paths.gz").write_bytes(gzip.compress("\n".join(listing).encode()))
    output = tmp_path_factory.mktemp("out")
    options = RunOptions(languages=["fin"], snapshots="2024-22", source=str(mirror.root), output=str(output),
                         lid="ft176", files_per_unit=1, buckets=3, num_cpus=2)
    return output, run(options).languages["fin_Latn"]


def test_each_id_is_released_once(twice_listed):
    output, stats = twice_listed
    ids = [i for path in sorted((output / "fin_Latn" / "data").rglob("*.parquet"))
           for i in pq.read_table(path, columns=["id"])["id"].to_pylist()]
    assert len(ids) == len(set(ids)) == stats["released"]["documents"] > 10


def test_the_extra_copies_are_counted_as_the_same_record(twice_listed):
    output, stats = twice_listed
    kept = stats["stage3"]["kept"]
    removed = pq.read_table(output / "fin_Latn" / "_work" / "removed" / "stage3").to_pandas()
    copies = removed[removed["drop_reason"] == "dedup.same_record"]
    assert stats["stage3"]["dedup.same_record"] == len(copies) > 0
    # the first file is read three times: each of its Finnish documents has two extra copies
    assert copies["id"].value_counts().eq(2).all()
    assert kept == stats["released"]["documents"]
