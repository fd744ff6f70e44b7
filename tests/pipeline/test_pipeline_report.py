"""The run report: `report.html` rendered in headless Chromium shows stats.json's numbers and fetches nothing.

The output folder is built by hand as a run leaves it: three languages, Parquet shards for one of them
(its score distributions come from the shards), stats.json in the shape `pipeline/execution/run.py` writes (dedup per
method with histograms and timings, rehydration table and distribution, seconds per stage), plus `scores`
and `ablation` sections and keys the report does not know. Chromium is driven over the DevTools protocol:
every network request of the page is recorded, and the page's text and table rows are read back.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from card_helpers import build_output
from typer.testing import CliRunner

from curate.errors import UserError
from curate.pipeline.cli.report import report as report_command
from curate.pipeline.publishing.report import format_key, format_number, write_report

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
PLOT_WIDTH = 640  # pixels: pipeline/plots.py draws 6.4 in at 100 dpi

QUARANTINED = ("s3://commoncrawl/crawl-data/CC-MAIN-2024-18/segments/1715971057216.39/warc/"
               "CC-MAIN-20240517233122-20240518023122-00712.warc.gz: the worker died 4 times")
MINHASH_CLUSTERS = {"2": 61, "3": 12, "4": 5, "7": 2, "31": 1}  # 223 documents in 81 clusters: 142 removed
EXACT_CLUSTERS = {"2": 29, "3": 1}  # 61 documents in 30 clusters: 31 removed


def _histograms(clusters: dict[str, int], documents: int) -> dict:
    """What run.py's `_dedup_stats` writes for one method: clusters, documents, removed, histograms with size 1."""
    clustered = sum(int(size) * count for size, count in clusters.items())
    histogram = {"1": documents - clustered, **clusters}
    return {"clusters": sum(clusters.values()), "clustered": clustered, "removed": clustered - sum(clusters.values()),
            "histogram": histogram, "documents_by_size": {size: int(size) * n for size, n in histogram.items()}}


def finnish_stats(per_dump: dict[str, int]) -> dict:
    """stats.json of fin_Latn: 5,210 pages → 5,187 after the URL filter → 5,172 after extraction → 1,570
    identified as Finnish → 1,506 kept in stage 1 → 1,333 after dedup → 1,266 after the filters, released."""
    minhash = _histograms(MINHASH_CLUSTERS, 1_506) | {"candidate_edges": 512, "rounds": 3}
    exact = _histograms(EXACT_CLUSTERS, 1_506)
    return {
        "language": "fin_Latn",
        "documents_read": 5_210,
        "shared": {"extract.empty": 14, "extract.timeout": 1, "lid.other_language": 3_602, "url_filter.adult": 21,
                   "url_filter.soft_banned_words": 2, "warc.binary": 4, "warc.corrupt_gzip": 1,
                   "warc.http_status": 57, "warc.not_html": 12, "warc.records": 15_400, "warc.responses": 5_300,
                   "warc.too_large": 2},
        "stage1": {"gopher_quality.min_words": 42, "kept": 1_506, "lid.low_score": 22},
        "stage3": {"dedup.exact": 31, "dedup.minhash": 142, "fineweb_quality.min_punct_line_share": 17,
                   "gopher_quality.alpha_token_share": 41, "gopher_repetition.max_dup_line_share": 9, "kept": 1_266},
        "released": {"documents": sum(per_dump.values()), "per_dump": per_dump},
        "language_mix": {"eng_Latn": 2_900, "fin_Latn": 1_570, "swe_Latn": 502, "ekk_Latn": 200},
        "quarantined": [QUARANTINED],
        "seconds": {"startup": 6.5, "stage1": 17.08, "dedup": 1.93, "stage3": 0.41, "final": 0.22},
        "documents_per_second": 305.0,
        "dedup": {"documents": 1_506, "partitions": 1, "signatures": 1_506, "text_hashes": 1_506, "urls": 1_506,
                  "timings": {"tasks": 14, "tasks_skipped": 0, "map": 0.812, "lsh": 0.304, "components": 0.521,
                              "exact-groups": 0.117},
                  "minhash": minhash, "exact": exact},
        "rehydration": {"method": "removal_rates", "max_repetitions": 10, "table": {"1": 1, "2": 3, "4": 5, "8": 2},
                        "distribution": {"cluster_sizes": [1, 2, 3, 4],
                                         "cluster_removal_rates": [6.12, 3.33, 0.0, 25.0],
                                         "cluster_post_filtering_doc_counts": [1_204, 118, 36, 15],
                                         "tail_threshold": 5, "tail_removal_rate": 7.5,
                                         "tail_post_filtering_doc_counts": 43, "global_removal_rate": 5.03}},
        "extractor": {"name": "trafilatura", "pages_per_second": 88.4},  # a key the report does not know
    }


SWEDISH = {
    "language": "swe_Latn", "documents_read": 5_210,
    "stage1": {"kept": 480, "lid.low_score": 22}, "stage3": {"gopher_quality.alpha_token_share": 25, "kept": 455},
    "released": {"documents": 455, "per_dump": {"CC-MAIN-2024-18": 300, "CC-MAIN-2024-22": 155}},
    "seconds": {"stage1": 17.08, "stage3": 0.19, "final": 0.12}, "documents_per_second": 305.0,
    "scores": {"quality_score": {"bins": [0.0, 0.25, 0.5, 0.75, 1.0], "counts": [40, 115, 210, 90],
                                 "quantiles": {"p10": 0.2213, "p50": 0.5471, "p90": 0.8329}},
               "perplexity": {"bins": [112.5, 480.25, 848.0], "counts": [301, 154],
                              "quantiles": {"p10": 190.2, "p50": 402.71, "p90": 1_020.5}}},
    "ablation": {  # as pipeline/ablation/report.py writes it
        "variants": {
            "raw": {"tokens": [1_048_576, 2_097_152, 4_194_304], "bpb": [1.4312, 1.2207, 1.1043],
                    "bpb_std": [0.0121, 0.0093, 0.0071], "bpb_min": [1.4201, 1.2113, 1.0982],
                    "bpb_max": [1.4437, 1.2301, 1.1124], "loss": [4.311, 3.672, 3.325], "final_bpb": 1.1043,
                    "final_bpb_std": 0.0071, "final_loss": 3.325, "seeds": 2, "documents": 9_812},
            "rehydrated": {"tokens": [1_048_576, 2_097_152, 4_194_304], "bpb": [1.4120, 1.1985, 1.0871],
                           "bpb_std": [0.0132, 0.0101, 0.0064], "bpb_min": [1.4004, 1.1891, 1.0822],
                           "bpb_max": [1.4251, 1.2084, 1.0915], "loss": [4.252, 3.609, 3.273], "final_bpb": 1.0871,
                           "final_bpb_std": 0.0064, "final_loss": 3.273, "seeds": 2, "documents": 455},
        },
        "statistics": {"best": "rehydrated", "pooled_seed_std": 0.0068, "variant_gap": 0.0172, "snr": 2.53,
                       "monotonicity": {"raw": 1.0, "rehydrated": 1.0}},
        "tokens": 4_194_304, "model": "gpt-25M", "plot": "ablation/bpb.png", "table": "ablation/table.md",
    },
}
ESTONIAN = {"language": "ekk_Latn", "documents_read": 5_210, "stage1": {"kept": 0, "lid.low_score": 3}}


# --- Chromium over the DevTools protocol ------------------------------------------------------------------------
def chromium_path() -> str:
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is needed to check report.html: apt-get install -y chromium "
                "(CI installs it in .ci/run)")


@dataclass
class Page:
    """What a page did and showed: every request URL, failed loads, visible text, table rows, images."""

    requests: list[str]
    failed: list[str]
    websockets: list[str]
    resources: list[str]
    text: str  # innerText of <body>: what a reader sees
    sections: dict[str, str]  # section id → its text nodes, one per line (see SECTION_TEXTS)
    rows: list[dict]  # {"section", "cells", "visible"} for every table row
    images: list[dict]  # {"width", "loaded"}


class Chromium:
    """A headless Chromium with the DevTools protocol on a loopback port (read from DevToolsActivePort)."""

    def __init__(self, workdir: Path):
        try:
            import websocket
        except ImportError:
            pytest.fail("the report test drives Chromium with websocket-client: pip install -e '.[dev]'")
        self.profile = Path(tempfile.mkdtemp(dir=workdir))
        self.process = subprocess.Popen(
            [chromium_path(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.is_file() and len(active.read_text().split()) >= 2):
            if self.process.poll() is not None:
                raise RuntimeError(f"chromium exited: {self.process.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("chromium did not open its DevTools port within 60 s")
            time.sleep(0.05)
        port, path = active.read_text().split()[:2]
        self.socket = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv())
            if reply.get("id") == self.next_id:
                assert "error" not in reply, reply
                return reply["result"]
            self.events.append(reply)

    def evaluate(self, expression: str, session: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        return result["result"]["value"]

    def open(self, url: str) -> Page:
        """Load `url` in a fresh tab, wait until the network is idle, and read what the page did and shows."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Network.enable", "Page.enable"):
            self.call(method, session=session)
        self.call("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
        self.events = []
        loader = self.call("Page.navigate", {"url": url}, session)["loaderId"]

        def idle(event: dict) -> bool:
            return (event.get("method") == "Page.lifecycleEvent" and event["params"]["name"] == "networkIdle"
                    and event["params"]["loaderId"] == loader)

        while not any(idle(e) for e in self.events):
            self.events.append(json.loads(self.socket.recv()))
        mine = [e for e in self.events if e.get("sessionId") == session]
        page = Page(
            requests=[e["params"]["request"]["url"] for e in mine if e.get("method") == "Network.requestWillBeSent"],
            failed=[e["params"]["errorText"] for e in mine if e.get("method") == "Network.loadingFailed"],
            websockets=[e["params"]["url"] for e in mine if e.get("method") == "Network.webSocketCreated"],
            resources=self.evaluate("performance.getEntriesByType('resource').map(e => e.name)", session),
            text=self.evaluate("document.body.innerText", session),
            sections=self.evaluate(SECTION_TEXTS, session),
            rows=self.evaluate("Array.from(document.querySelectorAll('tr')).map(r => ({"
                               "section: r.closest('section') ? r.closest('section').id : '',"
                               "cells: Array.from(r.cells).map(c => c.textContent.trim()),"
                               "visible: r.checkVisibility()}))", session),
            images=self.evaluate("Array.from(document.images).map(i => ({width: i.naturalWidth,"
                                 "loaded: i.complete && i.naturalWidth > 0}))", session),
        )
        self.call("Target.closeTarget", {"targetId": target})
        return page

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# The text nodes of each <section> (closed <details> included, as --dump-dom has them), one per line.
SECTION_TEXTS = """Object.fromEntries(Array.from(document.querySelectorAll('section')).map(section => {
    const walker = document.createTreeWalker(section, NodeFilter.SHOW_TEXT), texts = [];
    while (walker.nextNode()) texts.push(walker.currentNode.nodeValue);
    return [section.id, texts.join('\\n')];
}))"""


def left_the_page(page: Page, own_url: str) -> list[str]:
    """Requests to anything but the page's own file and inline `data:` images (plus sockets and resources)."""
    fetched = [u for u in page.requests + page.resources if u != own_url and not u.startswith("data:")]
    return fetched + page.websockets


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    browser = Chromium(tmp_path_factory.mktemp("chromium"))
    yield browser
    browser.close()


# --- the output folder ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def output(tmp_path_factory, shared):
    """A run's output with fin_Latn (shards and stats), swe_Latn (stats with scores and ablation), ekk_Latn (little)."""
    built = build_output(tmp_path_factory.mktemp("out"), shared, full=True)
    stats = {"fin_Latn": finnish_stats(built.per_dump), "swe_Latn": SWEDISH, "ekk_Latn": ESTONIAN}
    for code, values in stats.items():
        (built.root / code).mkdir(exist_ok=True)
        (built.root / code / "stats.json").write_text(json.dumps(values, indent=1, sort_keys=True))
    path = write_report(str(built.root))
    return built, stats, Path(path)


@pytest.fixture(scope="module")
def page(output, chromium) -> Page:
    _, _, path = output
    return chromium.open(path.as_uri())


def has_row(page: Page, section: str, *cells: str, visible: bool | None = None) -> bool:
    """Some table row of the section holds these cell texts, in this order."""
    for row in page.rows:
        if row["section"] != section or (visible is not None and row["visible"] != visible):
            continue
        values = iter(row["cells"])
        if all(any(cell == value for value in values) for cell in cells):
            return True
    return False


def numbers_and_names(value, top: bool = True) -> list[str]:
    """Every number (formatted) and string of a stats value, and the names of what its tables count (keys with
    a scalar value below the top level; section names such as `dedup` become headings)."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if format_key(key) != key or (not top and not isinstance(item, (dict, list))):
                found.append(format_key(key))
            found += numbers_and_names(item, top=False)
    elif isinstance(value, list):
        for item in value:
            found += numbers_and_names(item, top=False)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        found.append(format_number(value))
    elif isinstance(value, str):
        found.append(value)
    return found


def _leaves(value):
    """Every number of a stats value, numeric keys included."""
    if isinstance(value, dict):
        for key, item in value.items():
            if format_key(key) != key:
                yield int(key) if key.isdigit() else float(key)
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


# --- tests ------------------------------------------------------------------------------------------------------
def test_format_number():
    assert format_number(1_234_567) == "1,234,567"
    assert format_number(0) == "0"
    assert format_number(17.08) == "17.08"
    assert format_number(305.0) == "305"
    assert format_number(5.7) == "5.7"
    assert format_number(0.82346) == "0.8235"
    assert format_number(12_345.6) == "12,346"
    assert format_number(0.000123) == "0.000123"
    assert format_key("1000") == "1,000"
    assert format_key("0.5") == "0.5"
    assert format_key("p50") == "p50"


def test_no_request_leaves_the_page(output, page):
    _, _, path = output
    assert page.requests[0] == path.as_uri()
    assert any(u.startswith("data:image/png;base64,") for u in page.requests)  # the plots, inline
    assert left_the_page(page, path.as_uri()) == []
    assert page.failed == []
    assert len(page.images) == 14  # fin 8, swe 5, ekk 1: 3 documents get a funnel table, no chart (below)
    assert all(image["loaded"] and image["width"] == PLOT_WIDTH for image in page.images)


def test_detector_sees_requests_that_leave_a_page(chromium, tmp_path):
    """The check above is real: a page that loads an image and a style sheet from a server is caught."""
    served: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/css" if self.path.endswith(".css") else "image/png")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        leaky = tmp_path / "leaky.html"
        leaky.write_text(f'<html><head><link rel="stylesheet" href="{base}/font.css"></head>'
                         f'<body><p>1,234</p><img src="{base}/pixel.png"></body></html>')
        seen = chromium.open(leaky.as_uri())
    finally:
        server.shutdown()
        server.server_close()
    assert sorted(set(left_the_page(seen, leaky.as_uri()))) == [f"{base}/font.css", f"{base}/pixel.png"]
    assert sorted(served) == ["/font.css", "/pixel.png"]


def test_html_references_nothing_outside(output):
    """No <script>, and every src/href is an inline image or an anchor of the page."""
    _, _, path = output
    references: list[str] = []
    tags: list[str] = []

    class Collector(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)
            references.extend(v or "" for k, v in attrs if k in ("src", "href", "srcset", "action", "poster"))

    source = path.read_text(encoding="utf-8")
    Collector().feed(source)
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    assert references and all(r.startswith(("data:image/png;base64,", "#lang-")) for r in references)
    assert "url(" not in source and "@import" not in source


def test_every_number_of_stats_is_on_the_page(output, page):
    _, stats, _ = output
    for code, values in stats.items():
        text = page.sections[f"lang-{code}"]
        missing = [item for item in numbers_and_names(values) if item not in text]
        assert missing == [], f"{code}: not on the page: {missing}"
        tokens = set(re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", text))
        numbers = {format_number(v) for v in _leaves(values)}
        assert numbers - tokens == set(), code  # as whole numbers, not as parts of longer ones


def test_funnel_and_throughput(output, page):
    section = "lang-fin_Latn"
    steps = [("documents read", "5,210", "0"), ("after URL filter", "5,187", "23"), ("after extraction", "5,172", "15"),
             ("identified as Finnish", "1,570", "3,602"), ("kept in stage 1", "1,506", "64"),
             ("after dedup", "1,333", "173"), ("after filters", "1,266", "67"), ("released", "1,266", "0")]
    for step in steps:
        assert has_row(page, section, *step, visible=True), step
    assert has_row(page, section, "documents read", "5,210", "0", "100.00%", visible=True)
    assert has_row(page, section, "released", "1,266", "0", "24.30%", visible=True)
    throughput = [("startup: plan, model checks, Ray, preflight", "6.5"),  # the run's fixed cost
                  ("stage 1: read, extract, identify", "17.08", "5,210", "305"),  # as recorded
                  ("dedup", "1.93", "1,506", "780.3"), ("stage 3: filter, format", "0.41", "1,506", "3,673"),
                  ("final shards", "0.22", "1,266", "5,755"), ("total", "26.14", "5,210", "199.3")]
    for row in throughput:
        assert has_row(page, section, *row, visible=True), row
    # Swedish: no `shared`, so no URL-filter or extraction step; no dedup, so no dedup step.
    assert has_row(page, "lang-swe_Latn", "identified as Swedish", "502", visible=True)
    assert not has_row(page, "lang-swe_Latn", "after URL filter")
    assert not has_row(page, "lang-swe_Latn", "after dedup")
    assert has_row(page, "lang-swe_Latn", "stage 3: filter, format", "0.19", "480", "2,526")


def test_removal_rules_mix_and_overview(output, page):
    _, stats, _ = output
    section = "lang-fin_Latn"
    assert has_row(page, section, "before LID (every language)", "url_filter.adult", "21", "0.40%", visible=True)
    assert has_row(page, section, "stage1", "lid.low_score", "22", "1.40%", visible=True)
    assert has_row(page, section, "stage3", "dedup.minhash", "142", "9.43%", visible=True)
    assert not has_row(page, section, "stage1", "kept") and not has_row(page, section, "stage3", "kept")
    for reason, count in stats["fin_Latn"]["shared"].items():
        assert has_row(page, section, reason, format_number(count), visible=True), reason
    assert has_row(page, section, "eng_Latn", "2,900", "56.07%", visible=True)
    for dump, documents in stats["fin_Latn"]["released"]["per_dump"].items():
        assert has_row(page, section, dump, format_number(documents), visible=True)
    assert has_row(page, section, "total", "1,266", visible=True)
    # the index: every step of each language's funnel, and its own seconds (dedup, stage 3, final)
    assert has_row(page, "", "fin_Latn", "Finnish", "5,210", "5,187", "5,172", "1,570", "1,506", "1,333", "1,266",
                   "1,266", "2.56", visible=True)
    assert has_row(page, "", "ekk_Latn", "Standard Estonian", "5,210", "3", "0", "–", "–", "–", visible=True)
    assert QUARANTINED in page.text
    assert has_row(page, section, "extractor.pages_per_second", "88.4", visible=True)


def test_dedup_and_rehydration(output, page):
    section = "lang-fin_Latn"
    assert has_row(page, section, "", "exact", "minhash", visible=True)  # in the order stage 3 applies them
    for key, exact, minhash in [("clusters", "30", "81"), ("clustered", "61", "223"), ("removed", "31", "142"),
                                ("candidate_edges", "–", "512")]:
        assert has_row(page, section, key, exact, minhash, visible=True), key
    assert has_row(page, section, "documents", "1,506", visible=True)
    for size, count in {"1": 1_283, "2": 61, "3": 12, "7": 2, "31": 1}.items():
        assert has_row(page, section, size, format_number(count), format_number(int(size) * count), visible=False)
    assert has_row(page, section, "1", "1,445", "1,445", visible=False)  # exact: 1,506 − 61 singletons
    assert has_row(page, section, "timings.exact-groups", "0.117", visible=True)
    for sizes, repetitions in [("1", "1"), ("2–3", "3"), ("4–7", "5"), ("8+", "2")]:
        assert has_row(page, section, sizes, repetitions, visible=True)
    assert has_row(page, section, "method", "removal_rates", visible=True)
    assert has_row(page, section, "global_removal_rate", "5.03", visible=True)
    assert has_row(page, section, "4", "25", "15", visible=False)  # distribution row: size, rate %, kept


def test_scores_from_shards_and_from_stats(output, page):
    built, _, _ = output
    section = "lang-fin_Latn"
    shards = sorted((built.folder / "data").rglob("*.parquet"))
    for column in ("language_score", "quality_score", "perplexity"):
        values = np.concatenate([pq.read_table(p, columns=[column])[column].to_numpy() for p in shards])
        p10, p50, p90 = np.quantile(values, [0.1, 0.5, 0.9])
        expected = [format_number(float(v)) for v in (p10, p50, p90, values.mean())]
        assert has_row(page, section, column, *expected, format_number(values.size), visible=True), column
        counts, edges = np.histogram(values, bins=50)
        assert has_row(page, section, format_number(float(edges[0])), format_number(float(edges[1])),
                       format_number(int(counts[0])), visible=False)
    assert "Computed from the released shards." in page.text
    assert has_row(page, "lang-swe_Latn", "perplexity", "190.2", "402.7", "1,020", visible=True)
    assert has_row(page, "lang-swe_Latn", "0.5", "0.75", "210", visible=False)


def test_ablation(page):
    section = "lang-swe_Latn"
    assert has_row(page, section, "raw", "1.104", "3", "4,194,304", "9,812", "0.0071", "3.325", "2", visible=True)
    assert has_row(page, section, "rehydrated", "1.087", "3", "4,194,304", visible=True)
    assert has_row(page, section, "2,097,152", "1.198", "1.208", "1.189", "0.0101", "3.609", visible=False)
    assert has_row(page, section, "statistics.snr", "2.53", visible=True)
    assert has_row(page, section, "statistics.monotonicity.raw", "1", visible=True)
    assert has_row(page, section, "plot", "ablation/bpb.png", visible=True)  # a path as text, not an image


def test_sections_follow_the_keys(page):
    estonian = page.sections["lang-ekk_Latn"]
    for title in ("Funnel", "Removal per rule"):
        assert title in estonian
    for title in ("Deduplication", "Rehydration", "Score distributions", "Ablations", "Language mix", "Released",
                  "Throughput", "Quarantined"):
        assert title not in estonian, title
    swedish = page.sections["lang-swe_Latn"]
    assert "Ablations" in swedish and "Deduplication" not in swedish and "Rehydration" not in swedish


def test_small_counts_are_tables_without_charts():
    """Fewer than `FEWEST_PLOTTED` documents: the funnel and a score's distribution are tables only."""
    from curate.pipeline.publishing.plots import FEWEST_PLOTTED
    from curate.pipeline.publishing.report import LanguageReport, render_language

    def images(identified: int, scored: int) -> int:
        stats = {"language": "ekk_Latn", "documents_read": 5_210, "stage1": {"kept": identified}}
        scores = {"quality_score": {"bins": [0.0, 0.5, 1.0], "counts": [scored - 1, 1],
                                    "quantiles": {"p50": 0.4}}}
        section = render_language(LanguageReport("ekk_Latn", "Estonian", stats, scores, "From stats."))
        assert "<h3>Funnel</h3>" in section and "<h3>Score distributions</h3>" in section
        return section.count("<img ")

    assert images(FEWEST_PLOTTED - 1, FEWEST_PLOTTED - 1) == 0
    assert images(FEWEST_PLOTTED, FEWEST_PLOTTED - 1) == 1
    assert images(FEWEST_PLOTTED - 1, FEWEST_PLOTTED) == 1
    assert images(FEWEST_PLOTTED, FEWEST_PLOTTED) == 2


def test_a_mix_shared_by_every_language_is_shown_once():
    """One stage-1 pass labels every language's pages: their mixes are one, shown in the index, not per section."""
    from curate.pipeline.publishing.report import LanguageReport, render_report

    mix = {"eng_Latn": 300, "fin_Latn": 20, "swe_Latn": 9}
    reports = [LanguageReport(code, code, {"language": code, "documents_read": 329, "language_mix": dict(mix),
                                            "stage1": {"kept": kept}}) for code, kept in (("fin_Latn", 20),
                                                                                         ("swe_Latn", 9))]
    page = render_report("out", reports)
    assert page.count("<h3>Language mix</h3>") == 1 and page.index("Language mix") < page.index('id="lang-fin_Latn"')
    reports[1].stats["language_mix"] = {"swe_Latn": 9}  # separate runs' outputs: each section keeps its own
    page = render_report("out", reports)
    assert page.count("<h3>Language mix</h3>") == 2 and page.index("Language mix") > page.index('id="lang-fin_Latn"')


def test_each_distinct_plot_is_drawn_once(monkeypatch):
    """Same numbers, same bytes: a plot asked again is not drawn again; other numbers are."""
    from curate.pipeline.publishing import plots

    drawn = []
    real = plots.png_bytes
    monkeypatch.setattr(plots, "png_bytes", lambda figure: drawn.append(figure) or real(figure))
    first = plots.removal_per_rule({"lid.low_score": 7, "min_words": 3}, {"lid.low_score": 0.5})
    again = plots.removal_per_rule({"lid.low_score": 7, "min_words": 3}, {"lid.low_score": 0.5})
    other = plots.removal_per_rule({"lid.low_score": 8, "min_words": 3}, {"lid.low_score": 0.5})
    scores = [plots.score_distribution("s", np.linspace(0, 1, n)) for n in (1_000, 1_000, 1_001)]
    assert first == again and other != first and scores[0] == scores[1] != scores[2]
    assert len(drawn) == 4


def test_languages_cli_and_errors(tmp_path):
    for code, values in (("swe_Latn", SWEDISH), ("ekk_Latn", ESTONIAN)):
        (tmp_path / code).mkdir()
        (tmp_path / code / "stats.json").write_text(json.dumps(values))
    import typer

    app = typer.Typer()
    app.command()(report_command)
    app.command("other")(lambda: None)  # two commands: `report` is a subcommand, as in pipeline/cli.py
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "report.html")
    first = (tmp_path / "report.html").read_bytes()
    write_report(str(tmp_path))
    assert (tmp_path / "report.html").read_bytes() == first  # same stats, same bytes

    result = CliRunner().invoke(app, ["report", str(tmp_path), "--lang", "ekk"])  # resolved to ekk_Latn
    assert result.exit_code == 0, result.output
    only = (tmp_path / "report.html").read_text()
    assert 'id="lang-ekk_Latn"' in only and 'id="lang-swe_Latn"' not in only

    for root, languages in ((tmp_path / "empty", None), (tmp_path / "missing", None), (tmp_path, ["fin"])):
        if root.name == "empty":
            root.mkdir()
        with pytest.raises(UserError) as error:
            write_report(str(root), languages)
        message = str(error.value)
        assert "\n" not in message and "stats.json" in message and "curate run" in message
    result = CliRunner().invoke(app, ["report", str(tmp_path / "empty")])
    assert isinstance(result.exception, UserError)
