"""Crawl selection, file sampling and resilient reads from local, HTTP (with injected faults) and S3 (moto)."""

from __future__ import annotations

import gzip

import pytest
from http_server import FaultyServer

from curate.errors import UserError
from curate.pipeline.sources.remote import RetryPolicy
from curate.pipeline.sources.crawls import Source, WarcFile, match_crawls, sample_files

AVAILABLE = ["CC-MAIN-2024-22", "CC-MAIN-2024-18", "CC-MAIN-2024-10", "CC-MAIN-2023-50", "CC-MAIN-2020-34"]
FAST = RetryPolicy(attempts=5, initial_delay_s=0.01, max_delay_s=0.05)


@pytest.mark.parametrize("patterns, expected", [
    ("2024-*", ["CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-22"]),
    ("CC-MAIN-2024-1?", ["CC-MAIN-2024-10", "CC-MAIN-2024-18"]),
    ("2023-50, CC-MAIN-2020-34", ["CC-MAIN-2020-34", "CC-MAIN-2023-50"]),
    ("CC-MAIN-2024-22", ["CC-MAIN-2024-22"]),
])
def test_snapshot_globs(patterns, expected):
    assert match_crawls(patterns, AVAILABLE) == expected


def test_no_matching_snapshot_lists_what_the_source_has():
    with pytest.raises(UserError) as error:
        match_crawls("2099-*", AVAILABLE)
    assert str(error.value) == ("no crawl matches '2099-*'; the source has: CC-MAIN-2024-22, CC-MAIN-2024-18, "
                                "CC-MAIN-2024-10, CC-MAIN-2023-50, CC-MAIN-2020-34")


def test_file_sample_is_seeded_per_crawl_and_keeps_listing_order():
    files = [WarcFile("CC-MAIN-2024-22", f"f{i:03d}.warc.gz") for i in range(100)]
    first = sample_files(files, 4, seed=0)
    assert len(first) == 4 and first == sample_files(files, 4, seed=0)
    assert [f.path for f in first] == sorted(f.path for f in first)
    assert first != sample_files(files, 4, seed=1)
    assert sample_files(files, 200, seed=0) == files


def test_local_mirror_lists_crawls_and_files(mirror):
    source = Source(str(mirror.root))
    assert source.crawls() == ["CC-MAIN-2024-22", "CC-MAIN-2024-18", "CC-MAIN-2020-34"]
    files = source.warc_files("CC-MAIN-2024-22")
    assert [f.path for f in files] == mirror.crawls["CC-MAIN-2024-22"]
    assert files[0].canonical == "s3://commoncrawl/" + files[0].path


def test_not_a_cc_layout_is_one_clear_line(tmp_path):
    with pytest.raises(UserError, match="is not a Common Crawl layout"):
        Source(str(tmp_path)).crawls()


def test_http_reads_survive_throttling_and_dropped_connections(mirror):
    path = mirror.crawls["CC-MAIN-2024-22"][0]
    expected = (mirror.root / path).read_bytes()
    with FaultyServer(mirror.root) as server:
        server.faults[path] = ["503", "reset", "503", "reset", "ok"]
        source = Source(server.url, policy=FAST)
        assert source.crawls()[0] == "CC-MAIN-2024-22"
        stream = source.open(path)
        data = b""
        while chunk := stream.read(4096):
            data += chunk
        assert data == expected
        assert stream.retries == 4
        ranges = [r for p, r in server.requests if p == path]
        assert ranges[0] == "" and all(r.startswith("bytes=") for r in ranges[2:])


def test_http_gives_up_with_a_clear_error_after_the_retry_budget(mirror):
    path = mirror.crawls["CC-MAIN-2024-22"][0]
    with FaultyServer(mirror.root) as server:
        server.faults[path] = ["503"] * 10
        stream = Source(server.url, policy=FAST).open(path)
        with pytest.raises(IOError, match="giving up after 5 attempts"):
            stream.read()


def test_s3_layout_through_moto(mirror, monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        import boto3

        s3 = boto3.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="commoncrawl")
        for crawl, paths in mirror.crawls.items():
            for path in [*paths, f"crawl-data/{crawl}/warc.paths.gz"]:
                s3.put_object(Bucket="commoncrawl", Key=path, Body=(mirror.root / path).read_bytes())
        import fsspec

        fsspec.config.conf["s3"] = {"client_kwargs": {"endpoint_url": endpoint}}
        source = Source("s3://commoncrawl")
        assert source.crawls() == ["CC-MAIN-2024-22", "CC-MAIN-2024-18", "CC-MAIN-2020-34"]
        files = source.warc_files("CC-MAIN-2020-34")
        data = source.open(files[0].path).read()
        assert data == (mirror.root / files[0].path).read_bytes()
        assert gzip.decompress(data)[:5] == b"WARC/"
    finally:
        import fsspec

        fsspec.config.conf.pop("s3", None)
        server.stop()
