"""Stage 1 against datatrove, on the same WARCs, one core each: documents in, Finnish documents out, seconds,
documents per second per core, the ratio, and each side's one-time start-up cost.

- ours: `Stage1Work(build_graph(["fin"], lid="ft176"), source, output, WarcReader()).run(unit)` in-process, the
  unit holding every WARC of the corpus (read → URL filter → trafilatura in the worker's extractor subprocess →
  fastText lid.176.ftz → Finnish rows: spaCy word tokens + filter statistics → Parquet);
- datatrove: `WarcReader → URLFilter → Trafilatura(favour_precision=True) → LanguageFilter(languages=["fi"])
  → JsonlWriter`, its steps chained as its executor chains them (one task), with the same lid.176.ftz (from the
  curate's package data: datatrove's own FT176LID would download lid.176.bin) and the threshold ours applies
  (the fin_Latn config's `lid.min_score.ft176`).

Each side runs in its own fresh interpreter, pinned to the same single core (the extraction subprocess of either
side inherits the pin, so "per core" is literal). One-time costs (imports, URL blocklists, LID model, tokenizer,
extractor subprocess start, a warm-up pass over a few other pages) are measured first and reported apart from
the timed passes. The two sides stay up side by side and take turns at timed passes, so a change in machine load
falls on both; the pass with the fewest CPU seconds is reported (wall time also counts other processes' turns on
a busy machine). Before each pass each side gets a fresh extractor subprocess, started outside the timing:
trafilatura's `deduplicate` keeps a process-wide cache of the text segments it has seen and drops a segment seen
more than twice, so a second pass over the same pages in the same subprocess would extract less. (Datatrove's
Trafilatura step is otherwise run as is, its subprocess kept from one document to the next as in one task.)

    python benchmarks/stage1.py [--scale N] [--repeat R] [--profile]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.setup()

from corpus import WARMUP_PAGES  # noqa: E402

HERE = Path(__file__).resolve()
WARMUP_HTML = "<html><head><title>käynnistys</title></head><body><p>Käynnistetään purkaja.</p></body></html>"


# --- ours ----------------------------------------------------------------------------------------------------


class OursSide:
    """Curate's stage 1 in this process: start-up on construction, then timed passes over the corpus unit."""

    name = "ours"

    def __init__(self, root: Path, out: Path, options: argparse.Namespace):
        self.startup: dict[str, float] = {}
        self.notes: list[str] = []
        self.root, self.out, self.options = root, out, options
        startup = self.startup
        with common.stopwatch(startup, "imports"):
            from curate.blocks import extract as extract_module
            from curate.blocks import url_filter
            from curate.blocks.warc import WarcReader
            from corpus import CRAWL, load_manifest
            from curate.pipeline.execution.graph import build_graph
            from curate.pipeline.sources.crawls import Source, WarcFile
            from curate.pipeline.execution.stage1 import Stage1Work, Unit
        self.Stage1Work = Stage1Work
        with common.stopwatch(startup, "build_graph (language config)"):
            graph = build_graph(["fin"], lid="ft176")
        self.code = next(iter(graph.languages))  # the config's code, fin_Latn
        cache = Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate"))
        if not list(cache.glob("url-blocklist-*.npz")):
            self.notes.append("URL blocklist hash cache was cold: this run built it (once per machine)")
        with common.stopwatch(startup, "URL blocklists + tldextract"):
            url_filter.load_url_lists()
            url_filter._tld_extractor()("https://www.example.fi/")
        with common.stopwatch(startup, "LID model (lid.176.ftz)"):
            graph.lid.check()
        with common.stopwatch(startup, "word tokenizer (spaCy fi) + stage-1 blocks"):
            for block in graph.languages[self.code].stage1:
                block.check()
        with common.stopwatch(startup, "graph.check (the rest)"):
            graph.check()
        self.extract_block = next(b for b in graph.shared if b.name == "extract")
        self.extractor = extractor = extract_module.extractor_process(self.extract_block.extractor,
                                                                      self.extract_block.favour_precision)
        with common.stopwatch(startup, "extractor subprocess start (+ trafilatura import)"):
            outcome, _ = extractor.extract(WARMUP_HTML, self.extract_block.timeout_s)
        assert outcome == "ok", outcome

        self.times: Counter = Counter()
        self.seen: dict[str, dict] = {}
        self.clock = common.CpuClock(lambda: [extractor.process.pid] if extractor.process else [])
        _instrument(graph, self.times, self.seen, self.clock)
        self.graph = graph
        self.reader = _timed_reader(WarcReader, self.times, self.clock)()
        self.manifest = load_manifest(root)
        self.unit = Unit("bench", tuple(Source(str(root)).warc_files(CRAWL)))
        warmup = Unit("warmup", (WarcFile(CRAWL, self.manifest["warmup"]),))
        with common.stopwatch(startup, f"warm-up pass ({2 * WARMUP_PAGES} pages)"):
            self.work("warmup").run(warmup)
        self.passes: list[dict] = []
        self.result = None

    def work(self, name: str):
        return self.Stage1Work(self.graph, str(self.root), str(self.out / name), self.reader)

    def run_pass(self) -> dict:
        self.times.clear()
        self.seen.clear()
        # a fresh extractor subprocess, as a fresh worker has (see the module docstring: trafilatura's dedup cache)
        self.extractor._kill()
        assert self.extractor.extract(WARMUP_HTML, self.extract_block.timeout_s)[0] == "ok"
        work = self.work(f"pass{len(self.passes)}")
        before = self.clock.now()
        started = time.perf_counter()
        self.result = work.run(self.unit)
        wall = time.perf_counter() - started
        own, helpers = common.CpuClock.used(before, self.clock.now())
        self.passes.append({"seconds": wall, "cpu_main": own, "cpu_extractor": helpers, "steps": dict(self.times),
                            "documents": self.result.documents_read})
        shutil.rmtree(self.out / f"pass{len(self.passes) - 2}", ignore_errors=True)  # keep the last pass's output
        return self.passes[-1]

    def report(self) -> dict:
        result = self.result
        language = result.language_counts.get(self.code, {})
        report = {
            "side": self.name, "startup": self.startup, "notes": self.notes, "passes": self.passes,
            "extract_timeout": self.extract_block.timeout_s, "documents_in": result.documents_read, "finnish_out": language.get("kept", 0), "language": self.code,
            "counts": {**result.counts, **{f"{self.code}.{k}": v for k, v in language.items()}},
            "kept": _kept_rows(str(self.out), result.kept_parts.get(self.code, [])), "seen": self.seen,
        }
        if self.options.profile:
            _, report["profile"] = common.profile(self.work("profile").run, self.unit, top=30)
            report["profile_extract"] = _profile_extraction(self.root, self.manifest, self.extract_block)
        return report


def _instrument(graph, times: Counter, seen: dict[str, dict], clock: common.CpuClock) -> None:
    """Wrap every block of the graph to count its CPU seconds (with the extractor subprocess's) and to note, per
    document, what it decided."""
    import pyarrow.compute as pc

    class Timed:
        def __init__(self, block, key: str, record=None):
            self.block, self.key, self.record = block, key, record

        def __call__(self, batch):
            started = clock.total()
            batch = self.block(batch)
            times[self.key] += clock.total() - started
            if self.record:
                self.record(batch)
            return batch

        def __getattr__(self, name):
            return getattr(self.block, name)

        def __repr__(self):
            return repr(self.block)

    def dropped(batch):
        if "drop_reason" not in batch.column_names:
            return
        rows = batch.filter(pc.is_valid(batch["drop_reason"]))
        for doc_id, reason in zip(rows["id"].to_pylist(), rows["drop_reason"].to_pylist()):
            seen.setdefault(doc_id, {})["dropped"] = reason

    def lid(batch):
        for doc_id, label, score in zip(batch["id"].to_pylist(), batch["lid_label"].to_pylist(),
                                        batch["language_score"].to_pylist()):
            seen.setdefault(doc_id, {}).update(label=label, score=score)

    graph.shared = [Timed(b, b.name, dropped) for b in graph.shared]
    graph.lid = Timed(graph.lid, "lid", lid)
    for code, language in graph.languages.items():
        language.stage1 = [Timed(b, f"{code}.{b.name}") for b in language.stage1]


def _timed_reader(base, times: Counter, clock: common.CpuClock):
    from dataclasses import dataclass

    @dataclass
    class TimedWarcReader(base):
        """The WARC reader, counting the CPU of the work done inside it (decompression, parsing, decoding, batching)."""

        def read(self, raw, file_path, dump, counts):
            batches = super().read(raw, file_path, dump, counts)
            while True:
                started = clock.total()
                try:
                    batch = next(batches)
                except StopIteration:
                    times["read"] += clock.total() - started
                    return
                times["read"] += clock.total() - started
                yield batch

    return TimedWarcReader


def _kept_rows(output: str, parts: list[dict]) -> dict[str, float]:
    from curate.pipeline.execution.storage import Output
    from curate.pipeline.execution.streams import read_parts

    if not parts:
        return {}
    table = read_parts(Output(output), parts, ["id", "language_score"])
    return dict(zip(table["id"].to_pylist(), table["language_score"].to_pylist()))


def _corpus_html(root: Path, manifest: dict) -> list[str]:
    from curate.blocks.warc import WarcReader
    from curate.pipeline.sources.crawls import Source

    source, pages = Source(str(root)), []
    for path in manifest["files"]:
        stream = source.open(path)
        try:
            for batch in WarcReader().read(stream, path, "", Counter()):
                pages += batch["html"].to_pylist()
        finally:
            stream.close()
    return pages


def _profile_extraction(root: Path, manifest: dict, block) -> str:
    """trafilatura itself, in-process, over the corpus' HTML (what the extractor subprocess spends its time on)."""
    from curate.blocks.extract import extract_text

    pages = _corpus_html(root, manifest)
    extract_text(WARMUP_HTML, block.extractor, block.favour_precision)

    def extract_all():
        for page in pages:
            extract_text(page, block.extractor, block.favour_precision)

    started = time.perf_counter()
    _, text = common.profile(extract_all, top=30)
    return f"{len(pages)} pages, {time.perf_counter() - started:.2f} s under the profiler\n{text}"


# --- datatrove -----------------------------------------------------------------------------------------------


class DatatroveSide:
    """datatrove's equivalent chain in this process: start-up on construction, then timed passes."""

    name = "datatrove"

    def __init__(self, root: Path, out: Path, options: argparse.Namespace):
        self.startup: dict[str, float] = {}
        self.notes: list[str] = []
        self.root, self.out = root, out
        startup = self.startup
        with common.stopwatch(startup, "imports"):
            from datatrove.data import Document
            from datatrove.pipeline.extractors import Trafilatura
            from datatrove.pipeline.extractors.base import ExtractorSandbox
            from datatrove.pipeline.filters import LanguageFilter, URLFilter
            from datatrove.pipeline.readers import WarcReader
            from datatrove.pipeline.writers import JsonlWriter
            from datatrove.utils.lid import FT176LID
            from datatrove.utils.typeshelper import StatHints
            from huggingface_hub import cached_assets_path
            from tldextract import TLDExtract

            from corpus import CRAWL, load_manifest
        self.WarcReader, self.JsonlWriter = WarcReader, JsonlWriter

        from curate.blocks.lid import ft176_path

        model_path = ft176_path()
        predictions: dict[str, tuple[str, float, float]] = {}
        self.predictions = predictions

        class LocalFT176LID(FT176LID):
            """datatrove's fastText LID on the lid.176.ftz shipped with curate (no download); it also
            notes each prediction for the comparison."""

            MODEL_URL = str(model_path)

            @property
            def model(self):
                if self._model is None:
                    from fasttext.FastText import _FastText

                    self._model = _FastText(self.MODEL_URL)
                return self._model

            def predict(self, doc: Document):
                best, pairs = super().predict(doc)
                predictions[doc.id] = (best[0], best[1], pairs.get("fi", 0.0))
                return best, pairs

        class KeptSandboxTrafilatura(Trafilatura):
            """datatrove's Trafilatura step (the loop of BaseExtractor.run) with its extractor subprocess started
            once and kept across runs, as one long task keeps it."""

            sandbox = None

            def start(self) -> None:
                self.sandbox = ExtractorSandbox(timeout=self.timeout, warmup_text="")
                self.sandbox._ensure_process(self.extract)

            def close(self) -> None:
                if self.sandbox is not None:
                    self.sandbox.__exit__(None, None, None)

            def restart(self) -> None:
                self.sandbox._cleanup_process()
                self.sandbox._ensure_process(self.extract)

            def run(self, data, rank: int = 0, world_size: int = 1):
                extractor = self.sandbox
                for doc in data:
                    self.stat_update(StatHints.total)
                    with self.track_time():
                        try:
                            doc.text = extractor.process_document(doc.text, self.extract)
                            self.stat_update("extracted")
                        except TimeoutError:
                            self.stat_update("timeout")
                            continue
                        except EOFError:
                            self.stat_update("broken_process")
                            continue
                        except Exception:  # noqa: BLE001 - as datatrove: counted, the document skipped
                            self.stat_update("clean_error")
                            continue
                    if doc.text:
                        self.stat_update(StatHints.forwarded)
                        self.update_doc_stats(doc)
                        yield doc
                    else:
                        self.stat_update(StatHints.dropped)

        assets = Path(cached_assets_path(library_name="datatrove", namespace="filters", subfolder="url_filter"))
        if not (assets / "domains").exists():
            self.notes.append("datatrove's URL blocklists were not yet extracted: this run extracted them "
                              "(once per machine)")
        with common.stopwatch(startup, "build steps"):
            self.url = URLFilter()
            # the suffix-list snapshot inside the tldextract wheel, as ours uses: no network fetch on first use
            self.url.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)
            self.traf = KeptSandboxTrafilatura(favour_precision=True, timeout=options.dt_extract_timeout)
            from curate.language_configs.schema import load_language_config

            threshold = load_language_config("fin").lid.min_score["ft176"]  # the threshold ours applies
            self.lang = LanguageFilter(languages=["fi"], language_threshold=threshold)
            self.lang.model = LocalFT176LID(["fi"])
        with common.stopwatch(startup, "URL blocklists + tldextract"):
            self.url.download_data()
            self.url.tldextractor("https://www.example.fi/")
        with common.stopwatch(startup, "LID model (lid.176.ftz)"):
            _ = self.lang.model.model
        with common.stopwatch(startup, "extractor subprocess start (+ trafilatura import)"):
            self.traf.start()

        self.manifest = load_manifest(root)
        self.times: Counter = Counter()
        self.seen: dict[str, dict] = {}
        self.clock = common.CpuClock(lambda: [p.pid for p in self.traf.sandbox.all_processes if p.is_alive()])
        warmup_dir = root / Path(self.manifest["warmup"]).parent
        with common.stopwatch(startup, f"warm-up pass ({2 * WARMUP_PAGES} pages)"):
            self.run_once(WarcReader(str(warmup_dir), glob_pattern="*.warc.gz"), out / "warmup")
        self.paths_file = root / "crawl-data" / CRAWL / "warc.paths.gz"
        self.passes: list[dict] = []

    def tap(self, name: str, data):
        """CPU seconds spent getting each document from upstream (cumulative over the steps before, the extractor
        subprocess included), and which documents got here."""
        times, seen, clock = self.times, self.seen, self.clock
        iterator = iter(data)
        while True:
            started = clock.total()
            try:
                doc = next(iterator)
            except StopIteration:
                times[name] += clock.total() - started
                return
            times[name] += clock.total() - started
            seen.setdefault(doc.id, {})["reached"] = name
            yield doc

    def run_once(self, reader, output: Path) -> None:
        """The steps chained as datatrove's executor chains them for one task."""
        writer = self.JsonlWriter(str(output), output_filename="${rank}.jsonl.gz")
        data = self.tap("read", reader(None, 0, 1))
        data = self.tap("url", self.url(data, 0, 1))
        data = self.tap("extract", self.traf(data, 0, 1))
        data = self.tap("lid", self.lang(data, 0, 1))
        collections.deque(writer(data, 0, 1), maxlen=0)

    def run_pass(self) -> dict:
        self.times.clear()
        self.seen.clear()
        self.predictions.clear()
        for step in (self.url, self.traf, self.lang):
            step.stats.__init__(str(step))
        self.traf.restart()  # a fresh extractor subprocess, as ours gets (trafilatura's dedup cache)
        reader = self.WarcReader(str(self.root), paths_file=str(self.paths_file))
        before = self.clock.now()
        started = time.perf_counter()
        self.run_once(reader, self.out / f"pass{len(self.passes)}")
        wall = time.perf_counter() - started
        own, helpers = common.CpuClock.used(before, self.clock.now())
        times = self.times
        steps = {"read": times["read"], "url_filter": times["url"] - times["read"],
                 "extract": times["extract"] - times["url"], "lid": times["lid"] - times["extract"]}
        self.passes.append({"seconds": wall, "cpu_main": own, "cpu_extractor": helpers, "steps": steps,
                            "documents": sum(1 for info in self.seen.values() if "reached" in info)})
        shutil.rmtree(self.out / f"pass{len(self.passes) - 2}", ignore_errors=True)
        return self.passes[-1]

    def report(self) -> dict:
        self.traf.close()
        counts = {}
        for prefix, step in (("url_filter", self.url), ("extract", self.traf), ("lid", self.lang)):
            for key, metric in step.stats.stats.items():
                if key not in ("doc_len", "doc_len_tokens"):
                    counts[f"{prefix}.{key}"] = metric.total
        kept = {doc_id: self.predictions[doc_id][1] for doc_id, info in self.seen.items() if info.get("reached") == "lid"}
        return {
            "side": self.name, "startup": self.startup, "notes": self.notes, "passes": self.passes,
            "extract_timeout": self.traf.timeout, "documents_in": self.passes[-1]["documents"], "finnish_out": len(kept), "counts": counts, "kept": kept,
            "seen": self.seen, "predictions": {k: list(v) for k, v in self.predictions.items()},
        }


def serve(side_class, options: argparse.Namespace) -> None:
    """One side in this interpreter, driven over stdin/stdout: start up, then `run` → one timed pass, `finish` →
    the full report into --side-output."""
    side = side_class(options.root, options.out, options)
    common.send_message({"startup": side.startup})
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            common.send_message(side.run_pass())
        elif command == "finish":
            options.side_output.write_text(json.dumps(side.report()))
            common.send_message({"done": True})
            return


# --- comparison ----------------------------------------------------------------------------------------------


def _cpu(run: dict) -> float:
    return run["cpu_main"] + run["cpu_extractor"]


def _best(report: dict) -> dict:
    """The pass with the fewest CPU seconds (on a busy machine, wall time also counts other processes' turns)."""
    return min(report["passes"], key=_cpu)


def explain_differences(ours: dict, theirs: dict, urls: dict[str, str], limit: int = 12) -> list[str]:
    """Why a document is Finnish output on one side only."""
    lines = []
    ours_kept, theirs_kept = set(ours["kept"]), set(theirs["kept"])
    predictions = theirs["predictions"]

    def theirs_fate(doc_id: str) -> str:
        reached = theirs["seen"].get(doc_id, {}).get("reached")
        if doc_id in predictions:
            label, score, fi = predictions[doc_id]
            return f"datatrove: LID {label} {score:.3f} (fi {fi:.3f}) <= threshold" if reached != "lid" else "datatrove: kept"
        return {None: "datatrove: not read", "read": "datatrove: URL filter dropped it",
                "url": "datatrove: extraction empty, timed out or failed"}.get(reached, f"datatrove: stopped after {reached}")

    def ours_fate(doc_id: str) -> str:
        info = ours["seen"].get(doc_id, {})
        if "dropped" in info:
            return f"ours: {info['dropped']}"
        if "label" in info:
            return f"ours: LID {info['label']} {info['score']:.3f}" + (" < threshold" if info["label"] == "fin_Latn" else "")
        return "ours: not read"

    for title, only in (("Finnish on ours only", ours_kept - theirs_kept), ("Finnish on datatrove only",
                                                                              theirs_kept - ours_kept)):
        if not only:
            continue
        lines.append(f"{title}: {len(only)}")
        for doc_id in sorted(only)[:limit]:
            lines.append(f"  {urls.get(doc_id, doc_id)[:90]}  |  {ours_fate(doc_id)}  |  {theirs_fate(doc_id)}")
    both = ours_kept & theirs_kept
    if both:
        gaps = sorted(abs(ours["kept"][d] - theirs["kept"][d]) for d in both)
        lines.append(f"on the {len(both)} documents both keep, LID scores differ by median {gaps[len(gaps) // 2]:.4f}, "
                     f"max {gaps[-1]:.4f} (different extracted text or whitespace handling)")
    return lines


def _urls(root: Path) -> dict[str, str]:
    from collections import Counter as _Counter

    from curate.blocks.warc import WarcReader
    from corpus import load_manifest
    from curate.pipeline.sources.crawls import Source

    source, urls = Source(str(root)), {}
    for path in load_manifest(root)["files"]:
        stream = source.open(path)
        try:
            for batch in WarcReader().read(stream, path, "", _Counter()):
                urls.update(zip(batch["id"].to_pylist(), batch["url"].to_pylist()))
        finally:
            stream.close()
    return urls


def print_report(root: Path, manifest: dict, ours: dict, theirs: dict, cpu: int | None, load: list) -> None:
    print()
    print(f"corpus: {root}  scale {manifest['scale']}×: {manifest['pages']:,} pages ({manifest['cc_pages']:,} CC "
          f"sample + {manifest['finnish_pages']:,} Finnish), {manifest['html_bytes'] / 1e6:,.1f} MB HTML, "
          f"{manifest['warc_bytes'] / 1e6:,.1f} MB in {len(manifest['files'])} WARCs")
    print((f"each side in its own interpreter, pinned to CPU {cpu}" if cpu is not None else "not pinned (--no-pin)")
          + f"; load average before/after: {load[0]:.2f} / {load[1]:.2f} on {os.cpu_count()} CPUs")
    print("cpu s = CPU seconds of the pipeline's process + its extractor subprocess (one core: the two take turns);"
          " docs/s/core = docs in / cpu s")
    print(f"per-page extraction timeout: ours {ours['extract_timeout']:g} s, datatrove {theirs['extract_timeout']:g} s")
    print()
    rows = []
    for report in (ours, theirs):
        best = _best(report)
        rows.append([report["side"], report["documents_in"], report["finnish_out"], _cpu(best), best["cpu_main"],
                     best["cpu_extractor"], report["documents_in"] / _cpu(best), best["seconds"],
                     report["documents_in"] / best["seconds"], sum(report["startup"].values())])
    print(common.table(rows, ["pipeline", "docs in", "Finnish out", "cpu s", "main", "extractor", "docs/s/core",
                              "wall s", "docs/s wall", "start-up s"]))
    ratio = rows[0][6] / rows[1][6]
    ours_passes = ", ".join(f"{_cpu(p):.2f}" for p in ours["passes"])
    theirs_passes = ", ".join(f"{_cpu(p):.2f}" for p in theirs["passes"])
    print(f"\nratio ours/datatrove, docs/s per core: {ratio:.2f}×  (wall: {rows[0][8] / rows[1][8]:.2f}×; best of "
          f"{len(ours['passes'])} pass(es) by CPU; cpu s of every pass: ours {ours_passes}, datatrove {theirs_passes})")
    language_blocks = sum(v for k, v in _best(ours)["steps"].items() if k.startswith(f"{ours['language']}."))
    comparable = _cpu(_best(ours)) - language_blocks
    print(f"ours less its Finnish stage-1 blocks (word tokens + filter statistics, {language_blocks:.2f} cpu s, which "
          f"datatrove's chain does not do): {ours['documents_in'] / comparable:,.1f} docs/s/core, ratio "
          f"{ours['documents_in'] / comparable / rows[1][6]:.2f}×")
    for report in (ours, theirs):
        print(f"\n{report['side']}: one-time start-up {sum(report['startup'].values()):.2f} s (wall)")
        for key, value in report["startup"].items():
            print(f"  {key:<55} {value:7.3f} s")
        for note in report["notes"]:
            print(f"  note: {note}")
    for report in (ours, theirs):
        best = _best(report)
        total = _cpu(best)
        steps = dict(best["steps"])
        steps["write + route + rest"] = total - sum(steps.values())
        print(f"\n{report['side']}: where the CPU of the timed pass goes ({total:.2f} cpu s)")
        for key, value in sorted(steps.items(), key=lambda kv: -kv[1]):
            print(f"  {key:<30} {value:7.3f} s  {100 * value / total:5.1f} %")
    print("\ncounts:")
    for report in (ours, theirs):
        shown = {k: v for k, v in sorted(report["counts"].items()) if v}
        print(f"  {report['side']}: {json.dumps(shown)}")
    print("\nFinnish output, ours vs datatrove:")
    print(f"  generated Finnish pages: {manifest['finnish_pages']}, "
          f"of them kept by ours {len(set(manifest['finnish_ids']) & set(ours['kept']))}, "
          f"by datatrove {len(set(manifest['finnish_ids']) & set(theirs['kept']))}")
    lines = explain_differences(ours, theirs, _urls(root))
    for line in lines or ["the same documents on both sides"]:
        print(f"  {line}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=int, default=1, help="corpus scale: 1 = 100 CC pages + 50 Finnish pages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="timed passes per side, taken in turns (the best "
                                                               "by CPU seconds is reported)")
    parser.add_argument("--corpus-dir", type=Path, default=None, help="default: $CURATE_BENCH_DIR or <tmp>/curate-bench")
    parser.add_argument("--dt-extract-timeout", type=float, default=30.0,
                        help="datatrove Trafilatura per-page timeout in seconds: by default ours' (30); datatrove's "
                             "own default is 1, which on a busy machine also fires on ordinary pages (each timeout "
                             "costs it a new extractor subprocess)")
    parser.add_argument("--profile", action="store_true", help="after the timed passes, profile ours (cProfile)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    parser.add_argument("--side", choices=["ours", "datatrove"], help=argparse.SUPPRESS)
    parser.add_argument("--side-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side:  # one side, in this fresh interpreter
        serve(OursSide if args.side == "ours" else DatatroveSide, args)
        return

    from corpus import build_corpus, load_manifest

    directory = args.corpus_dir or common.cache_dir() / f"corpus-scale{args.scale}-seed{args.seed}"
    started = time.perf_counter()
    root = build_corpus(directory, args.scale, args.seed)
    manifest = load_manifest(root)
    print(f"corpus ready in {time.perf_counter() - started:.1f} s: {root}", flush=True)
    cpu = None if args.no_pin else common.pin_to_one_core()
    load = [os.getloadavg()[0]]
    out = Path(tempfile.mkdtemp(prefix="curate-bench-stage1-"))
    sides: dict[str, common.SideProcess] = {}
    try:
        for name in ("ours", "datatrove"):  # one after the other: start-up costs are not measured side by side
            print(f"starting {name} …", flush=True)
            sides[name] = common.SideProcess(HERE, [
                "--side", name, "--root", str(root), "--out", str(out / name),
                "--dt-extract-timeout", str(args.dt_extract_timeout), *(["--profile"] if args.profile else [])])
            sides[name].receive()
        for index in range(args.repeat):
            for name in (("ours", "datatrove") if index % 2 == 0 else ("datatrove", "ours")):
                result = sides[name].request("run")
                print(f"pass {index + 1}, {name}: {result['cpu_main'] + result['cpu_extractor']:.2f} cpu s, "
                      f"{result['seconds']:.2f} s wall", flush=True)
        ours, theirs = sides["ours"].finish(), sides["datatrove"].finish()
    finally:
        for side in sides.values():
            side.close()
        shutil.rmtree(out, ignore_errors=True)
    load.append(os.getloadavg()[0])
    print_report(root, manifest, ours, theirs, cpu, load)
    if args.profile:
        print("\nprofile of ours (the stage-1 worker process; the extractor subprocess shows as waiting on its pipe):")
        print(ours["profile"])
        print("profile of the extraction itself (trafilatura in-process over the same pages):")
        print(ours["profile_extract"])


if __name__ == "__main__":
    main()
