"""End to end: the whole `curate run` against datatrove's FineWeb2 pipeline on the same WARCs of the crawl-like
corpus (benchmarks/corpus.py: 65× ≈ 6,600 pages, 1 % Finnish), at 1 and 2 workers: documents in, documents
released, wall and CPU seconds, docs/s per core and the ratio; the share of released documents both sides
release and each side's recall of the Finnish pages; and stage 1's CPU per page (with and without the LID-first
prefilter) against trafilatura alone on the same pages, in-process on one core (`stage1_floor`).

- ours: `pipeline.run.run(RunOptions(languages=["fin"], snapshots="2024-22", source=<corpus>, lid="ft176",
  num_cpus=W, files_per_unit=1, select="full"))` (`--select index` or `index+neighbors`: through the corpus' index,
  labelled by CLD2 itself) on a fresh local Ray of W CPUs: stage 1 (read → URL filter → LID prefilter →
  trafilatura → lid.176.ftz → spaCy word tokens → filter statistics + MinHash signature), global dedup (exact +
  MinHash, 14 bands × 8 rows, word 5-grams), stage 3 (filters → FTFY, PII, table artefacts), rehydration table, final
  shards. `ray.init` plus one idle worker per CPU is timed apart as "Ray start-up"; the run's timing starts
  after it (the workers still import our blocks and load their models inside the run).
- datatrove: FineWeb2's recipe (huggingface/fineweb-2, fineweb-2-pipeline.py) with `LocalPipelineExecutor`
  (tasks = workers = W; MinHash stage 2 always has 14 tasks, one per bucket, on W workers; stage 3 one task):
    1. WarcReader → URLFilter → Trafilatura(favour_precision=True) → LanguageFilter(fi, lid.176.ftz, > the fin_Latn config's lid.min_score.ft176)
       → JsonlWriter;
    2. MinhashDedupSignature(fin_Latn) → 3. MinhashDedupBuckets → 4. MinhashDedupCluster(save_cluster_size);
    5. JsonlReader → MinhashDedupFilter(load_cluster_sizes) → GopherRepetitionFilter → FineWebQualityFilter →
       GopherQualityFilter (FineWeb2's fin_Latn arguments) → FTFYFormatter → PIIFormatter →
       SymbolLinesFormatter("|") → ParquetWriter.
  FineWeb2's order (dedup before the heuristic filters, formatters last); its language-score LambdaFilter is
  LanguageFilter's threshold here, and its separate MinHash-stage-4 and filtering jobs are one pass (one JSONL
  write and read fewer for datatrove). The LID model is the same lid.176.ftz file as ours (datatrove's own
  FT176LID would download lid.176.bin), its URLFilter uses the suffix list inside the tldextract wheel (no
  network), its MinHash hashes `str` through xxhash ≥ 4 by encoding first (what datatrove 0.10 meant), and its
  per-page extraction timeout is ours (30 s; datatrove's default 1 s also fires on ordinary pages when busy).

Each run is a fresh interpreter (`common.SideProcess`), so imports, model loads and worker start-up count on
both sides. CPU seconds are those of the run's whole process tree (driver, Ray's raylet / GCS / workers, the
datatrove pool, extractor subprocesses: `common.tree_cpu_seconds`); docs/s per core = documents in / CPU
seconds, which other load on the machine does not inflate; wall seconds do include waiting for a busy core.
The sides alternate which goes first, so a change in load falls on both.

    python benchmarks/e2e.py [--scales 65] [--share 0.01] [--workers 1,2] [--floor-files 4] [--save runs.json]
                             [--select full|index|index+neighbors]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.setup()

HERE = Path(__file__).resolve()
LANGUAGE = "fin_Latn"
EXTRACT_TIMEOUT_S = 30.0  # ours' default, given to datatrove's Trafilatura too


# --- ours ----------------------------------------------------------------------------------------------------


class OursSide:
    """`curate run` in this interpreter on a fresh local Ray of `workers` CPUs."""

    name = "ours"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        started = time.perf_counter()
        from curate.pipeline.execution.run import RunOptions

        self.imports = time.perf_counter() - started
        self.options = RunOptions(languages=["fin"], snapshots="2024-22", source=str(args.root), output=str(args.out),
                                  lid="ft176", num_cpus=args.workers, files_per_unit=1, select=args.select)

    def run(self) -> dict:
        import ray

        from curate.pipeline.execution.executor import start_ray
        from curate.pipeline.execution.run import run

        @ray.remote(num_cpus=1)
        def idle() -> int:
            time.sleep(0.5)  # long enough that each CPU's task lands on its own worker
            return os.getpid()

        cpu, wall = common.tree_cpu_seconds(), time.perf_counter()
        start_ray(self.args.workers)
        pids = set(ray.get([idle.remote() for _ in range(self.args.workers)]))
        ray_startup = {"wall": time.perf_counter() - wall, "cpu": common.tree_cpu_seconds() - cpu, "workers": len(pids)}

        cpu, wall = common.tree_cpu_seconds(), time.perf_counter()
        stats = run(self.options).languages[LANGUAGE]
        wall, cpu = time.perf_counter() - wall, common.tree_cpu_seconds() - cpu  # before shutdown: workers alive
        ray.shutdown()
        released_ids = _ids(self.args.out / LANGUAGE / "data")
        stage3 = stats["stage3"]
        filtered = sum(v for k, v in stage3.items() if k != "kept" and not k.startswith("dedup."))
        return {
            "wall": wall, "cpu": cpu, "ray_startup": ray_startup, "imports": self.imports,
            "startup_parts": stats["seconds"].get("startup_parts", {}),
            "bytes_read": stats["input"]["bytes_read"], "warc_bytes": stats["input"]["warc_bytes"],
            "documents_in": stats["documents_read"], "released": stats["released"]["documents"],
            "steps": {"start-up": stats["seconds"].get("startup", 0.0), "stage 1": stats["seconds"]["stage1"], "dedup": stats["seconds"].get("dedup", 0.0),
                      "stage 3": stats["seconds"]["stage3"], "final": stats["seconds"]["final"]},
            "funnel": {"after LID": stats["stage1"].get("kept", 0),
                       "dedup removed": sum(v for k, v in stage3.items() if k.startswith("dedup.")),
                       "filters removed": filtered,
                       "released": stats["released"]["documents"]},
            "counts": {"stage1": stats["stage1"], "stage3": stage3, "shared": stats["shared"]},
            "released_ids": released_ids,
        }


def _ids(folder: Path) -> list[str]:
    """The `id` (WARC-Record-ID) of every released document under `folder` (Parquet files)."""
    import pyarrow.parquet as pq

    return sorted(i for path in folder.rglob("*.parquet")
                  for i in pq.read_table(path, columns=["id"])["id"].to_pylist())


# --- datatrove -----------------------------------------------------------------------------------------------


def _xxhash64(text: str) -> int:
    """datatrove's xxhash64 on `str`, encoded first (xxhash ≥ 4 takes bytes only)."""
    import xxhash

    return xxhash.xxh64_intdigest(text.encode("utf-8"))


def offline_pieces() -> SimpleNamespace:
    """datatrove's steps that would download or hash otherwise, made to run offline on ours' inputs:
    `url_filter()`, `language_filter(labels, threshold)` (lid.176.ftz shipped with curate) and
    `minhash_signature(...)` (xxhash ≥ 4 on encoded text)."""
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.filters import LanguageFilter, URLFilter
    from datatrove.utils.lid import FT176LID
    from tldextract import TLDExtract

    from curate.blocks.lid import ft176_path

    class LocalFT176LID(FT176LID):
        """datatrove's fastText LID on the lid.176.ftz shipped with curate (ours' model; no download)."""

        MODEL_URL = str(ft176_path())

        @property
        def model(self):
            if self._model is None:
                from fasttext.FastText import _FastText

                self._model = _FastText(self.MODEL_URL)
            return self._model

    class LocalLanguageFilter(LanguageFilter):
        def __init__(self, languages: list[str], language_threshold: float):
            super().__init__(languages=languages, language_threshold=language_threshold)
            self.model = LocalFT176LID(languages)

    class OfflineURLFilter(URLFilter):
        def __init__(self):
            super().__init__()
            self.tldextractor = TLDExtract(suffix_list_urls=(), cache_dir=None)  # the wheel's suffix list

    class EncodingMinhashDedupSignature(MinhashDedupSignature):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._hash_func = _xxhash64

    return SimpleNamespace(url_filter=OfflineURLFilter, language_filter=LocalLanguageFilter,
                           minhash_signature=EncodingMinhashDedupSignature)


def datatrove_steps(root: Path, out: Path, workers: int) -> list[tuple[str, object]]:
    """FineWeb2's pipeline for fin_Latn as datatrove executors, in the order they run: [(name, executor)]."""
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig

    common.use_test_helpers()
    from corpus import CRAWL
    from filters_helpers import datatrove_fineweb2_filters

    from curate.language_configs import load_language_config

    pieces = offline_pieces()
    threshold = load_language_config("fin").lid.min_score["ft176"]
    config = MinhashConfig(hash_config=HashConfig(hash_fc="xxhash", precision=64), num_buckets=14,
                           hashes_per_bucket=8, n_grams=5)
    lid_out, minhash = out / "language_filtering", out / "minhash"
    logs = out / "logs"

    def reader():
        return JsonlReader(str(lid_out))

    def executor(name: str, pipeline: list, tasks: int = workers) -> tuple[str, object]:
        return name, LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers, tasks),
                                           logging_dir=str(logs / name.split()[0]))

    return [
        executor("read→url→extract→LID", [
            WarcReader(str(root), paths_file=str(root / "crawl-data" / CRAWL / "warc.paths.gz"),
                       default_metadata={"dump": CRAWL}),
            pieces.url_filter(),
            Trafilatura(favour_precision=True, timeout=EXTRACT_TIMEOUT_S),
            pieces.language_filter(["fi"], threshold),
            JsonlWriter(str(lid_out)),
        ]),
        executor("minhash-1 signatures", [reader(), pieces.minhash_signature(
            str(minhash / "signatures"), config=config, language=LANGUAGE)]),
        executor("minhash-2 buckets", [MinhashDedupBuckets(str(minhash / "signatures"), str(minhash / "buckets"),
                                                           config=config)], tasks=config.num_buckets),
        executor("minhash-3 clusters", [MinhashDedupCluster(str(minhash / "buckets"), str(minhash / "remove_ids"),
                                                            config=config, save_cluster_size=True)], tasks=1),
        executor("minhash-4+filters+formatters", [
            reader(),
            MinhashDedupFilter(str(minhash / "remove_ids"), load_cluster_sizes=True),
            *datatrove_fineweb2_filters(LANGUAGE),
            FTFYFormatter(), PIIFormatter(), SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
            ParquetWriter(str(out / "output")),
        ]),
    ]


def _step_counts(logging_dir: Path) -> dict[str, dict]:
    """{step name: its counters} from a datatrove executor's merged stats.json."""
    stats = json.loads((logging_dir / "stats.json").read_text())
    return {step["name"]: {k: (v["total"] if isinstance(v, dict) else v) for k, v in step["stats"].items()}
            for step in stats}


class DatatroveSide:
    """datatrove's FineWeb2 pipeline in this interpreter (pool workers are its children)."""

    name = "datatrove"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        started = time.perf_counter()
        self.steps = datatrove_steps(args.root, args.out, args.workers)
        self.imports = time.perf_counter() - started

    def run(self) -> dict:
        steps: dict[str, float] = {}
        cpu, started = common.tree_cpu_seconds(), time.perf_counter()
        for name, executor in self.steps:
            with common.stopwatch(steps, name):
                executor.run()
        wall, cpu = time.perf_counter() - started, common.tree_cpu_seconds() - cpu
        logs = self.args.out / "logs"
        first = _step_counts(logs / "read→url→extract→LID")
        last = _step_counts(logs / "minhash-4+filters+formatters")
        released_ids = _ids(self.args.out / "output")
        released = len(released_ids)
        reader = next(v for k, v in first.items() if "Warc" in k)
        lid = next(v for k, v in first.items() if "Language" in k)
        dedup = next(v for k, v in last.items() if "stage 4" in k)
        filters = [v for k, v in last.items() if "Gopher" in k or "FineWeb" in k]
        return {
            "wall": wall, "cpu": cpu, "imports": self.imports, "documents_in": reader.get("documents", 0),
            "released": released, "steps": steps,
            "funnel": {"after LID": lid.get("forwarded", 0), "dedup removed": dedup.get("dropped", 0),
                       "filters removed": sum(v.get("dropped", 0) for v in filters), "released": released},
            "counts": {"first": first, "last": last},
            "released_ids": released_ids,
        }


# --- driver --------------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """One run in this fresh interpreter: set up (imports, pipeline objects), then `run` → the measurement."""
    log = open(args.out.parent / f"{args.out.name}.log", "w")  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 2)  # progress bars and logs (ours', datatrove's, their subprocesses') go to the log
    side = (OursSide if args.side == "ours" else DatatroveSide)(args)
    common.send_message({"ready": True})
    for line in sys.stdin:
        command = line.strip()
        if command == "run":
            common.send_message(side.run())
        elif command == "finish":
            args.side_output.write_text("{}")
            common.send_message({"done": True})
            return


def ensure_index(root: Path, manifest: dict) -> None:
    """The corpus' columnar URL index, its languages from CLD2 itself as Common Crawl labels them (tests/mirror.py
    `build_index` with `cld2_labels`; pycld2, the dev extra), built once next to the corpus."""
    if (root / "crawl-data" / manifest["crawl"] / "cc-index-table.paths.gz").is_file():
        return
    common.use_test_helpers()
    from mirror import Mirror, build_index, cld2_labels

    build_index(Mirror(root, {manifest["crawl"]: manifest["files"]}), crawls=(manifest["crawl"],), parts=1,
                labeller=cld2_labels)


def measure(side: str, root: Path, workers: int, work: Path, select: str = "full") -> dict:
    """One fresh run of `side` on the corpus at `root` with `workers` workers (ours with `--select select`)."""
    out = work / f"{side}-w{workers}"
    process = common.SideProcess(HERE, ["--side", side, "--root", str(root), "--out", str(out),
                                        "--workers", str(workers), "--select", select])
    load = os.getloadavg()[0]
    try:
        process.receive()
        result = process.request("run")
        process.finish()
    except RuntimeError:
        raise common.side_failed(f"{side} with {workers} worker(s)", out) from None
    finally:
        process.close()
    shutil.rmtree(out, ignore_errors=True)
    return {**result, "side": side, "workers": workers, "load": [load, os.getloadavg()[0]]}


def stage1_floor(root: Path, manifest: dict, files: int, work: Path) -> dict:
    """CPU seconds per page, in this process on one core, over the first `files` WARCs of the corpus: stage 1
    with the prefilter (`curate run`'s default), stage 1 without it (`--no-prefilter`), and trafilatura alone
    (FineWeb settings, in-process) on the HTML of the same pages. A warm-up WARC loads every model first."""
    from collections import Counter

    from curate.blocks.extract import extract_text
    from curate.blocks.warc import WarcReader
    from curate.pipeline.execution.graph import build_graph
    from curate.pipeline.execution.stage1 import Stage1Work, Unit
    from curate.pipeline.sources.crawls import WarcFile

    crawl = manifest["crawl"]
    unit = Unit("floor", tuple(WarcFile(crawl, path) for path in manifest["files"][:files]))
    result = {}
    for name, prefilter in (("stage 1", True), ("stage 1 --no-prefilter", False)):
        work_unit = Stage1Work(build_graph(["fin"], lid="ft176", prefilter=prefilter), str(root),
                               str(work / f"floor-{prefilter}"), WarcReader())
        work_unit.run(Unit("warmup", (WarcFile(crawl, manifest["warmup"]),)))
        cpu = common.tree_cpu_seconds()
        done = work_unit.run(unit)
        result[name] = {"pages": done.documents_read, "cpu": common.tree_cpu_seconds() - cpu,
                        "skipped": done.counts.get("prefilter.cld2_other_language", 0)
                        + done.counts.get("prefilter.other_language", 0)}
    htmls = []
    for warc in unit.files:
        with open(root / warc.path, "rb") as stream:
            for batch in WarcReader().read(stream, warc.path, crawl, Counter()):
                htmls += batch["html"].to_pylist()
    extract_text(htmls[0])
    cpu = time.process_time()
    for html in htmls:
        extract_text(html)
    result["trafilatura only"] = {"pages": len(htmls), "cpu": time.process_time() - cpu, "skipped": 0}
    return result


def print_agreement(runs: list[dict], manifests: dict[int, dict]) -> None:
    """The same kept documents: the share of released documents both sides release, and each side's recall of
    the corpus' Finnish pages (released ÷ Finnish pages)."""
    print("\nthe same documents: released by both ÷ released by either; recall of the Finnish pages (released ÷ "
          "Finnish pages in the corpus)")
    by_key = {(r["scale"], r["side"], r["workers"]): r for r in runs}
    for (scale, side, workers), run in sorted(by_key.items()):
        other = by_key.get((scale, "datatrove", workers))
        if side != "ours":
            continue
        if not other:  # `--sides ours`
            finnish = set(manifests[scale]["finnish_ids"])
            found = len(set(run["released_ids"]) & finnish) / len(finnish)
            print(f"  {scale}× {workers} worker(s): recall ours {found:.1%}")
            continue
        ours, theirs = set(run["released_ids"]), set(other["released_ids"])
        finnish = set(manifests[scale]["finnish_ids"])
        shared = len(ours & theirs) / max(len(ours | theirs), 1)
        recall = {name: len(ids & finnish) / len(finnish) for name, ids in (("ours", ours), ("datatrove", theirs))}
        print(f"  {scale}× {workers} worker(s): {len(ours & theirs):,} of {len(ours | theirs):,} shared ({shared:.1%}); "
              f"recall ours {recall['ours']:.1%}, datatrove {recall['datatrove']:.1%}")


def print_floor(floor: dict) -> None:
    print("\nstage 1 CPU per page on one core, in-process, the same pages (the old floor: trafilatura on every page)")
    base = floor["trafilatura only"]["cpu"] / floor["trafilatura only"]["pages"]
    rows = [[name, values["pages"], values["skipped"], values["cpu"], 1000 * values["cpu"] / values["pages"],
             f"{(values['cpu'] / values['pages']) / base:.2f}×"] for name, values in floor.items()]
    print(common.table(rows, ["what", "pages", "skipped by prefilter", "cpu s", "cpu ms / page",
                              "÷ trafilatura only"]))


def _rate(run: dict) -> float:
    return run["documents_in"] / run["cpu"]


def print_report(runs: list[dict], manifests: dict[int, dict]) -> None:
    print("\ncpu s = CPU seconds of the run's whole process tree; docs/s = documents in / wall s; docs/s/core = "
          "documents in / cpu s; ratio = ours ÷ datatrove in docs/s/core (and in wall docs/s) for the same scale and "
          "workers; ours' wall and cpu exclude Ray start-up (shown apart: ray.init + one idle worker per CPU; the last "
          "column counts it in)")
    rows, by_key = [], {(r["scale"], r["side"], r["workers"]): r for r in runs}
    for run in runs:
        other = by_key.get((run["scale"], "datatrove", run["workers"]))
        startup = run.get("ray_startup", {})
        ratio = with_startup = ""
        if run["side"] == "ours" and other:
            ratio = f"{_rate(run) / _rate(other):.2f}× ({other['wall'] / run['wall']:.2f}×)"
            with_startup = (f"{other['cpu'] / (run['cpu'] + startup['cpu']):.2f}× "
                            f"({other['wall'] / (run['wall'] + startup['wall']):.2f}×)")
        rows.append([f"{run['scale']}×", run["side"], run["workers"], run["documents_in"], run["released"],
                     run["wall"], run["cpu"], run["documents_in"] / run["wall"], _rate(run), ratio,
                     f"{startup['wall']:.1f} / {startup['cpu']:.1f}" if startup else "-", with_startup])
    print(common.table(rows, ["scale", "side", "workers", "docs in", "kept", "wall s", "cpu s", "docs/s",
                              "docs/s/core", "ratio ours/dt", "Ray start-up wall / cpu s",
                              "ratio incl. start-up"]))

    print("\nbytes read (ours: the run's input.bytes_read; datatrove reads every WARC whole)")
    for run in runs:
        if run["side"] == "ours":
            print(f"  {run['scale']}× ours {run['workers']} worker(s): {run['bytes_read'] / 1e6:,.1f} MB of "
                  f"{run['warc_bytes'] / 1e6:,.1f} MB ({run['bytes_read'] / max(run['warc_bytes'], 1):.1%})")

    print("\nwhere the wall seconds go")
    for run in runs:
        steps = ", ".join(f"{name} {seconds:.1f}" for name, seconds in run["steps"].items())
        print(f"  {run['scale']}× {run['side']:<9} {run['workers']} worker(s): {steps}")
        if run.get("startup_parts"):  # ours: `seconds.startup_parts` (`checks` runs beside `ray`, not in the sum)
            parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in run["startup_parts"].items())
            print(f"      start-up after Ray's ({run['steps']['start-up']:.2f} s; driver imports "
                  f"{run['imports']:.2f} s before it): {parts}")

    print("\nthe same work: Finnish documents after LID → removed by dedup → removed by the filters → released")
    for run in runs:
        funnel = run["funnel"]
        split = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in sorted(run["counts"].get("stage3", {}).items())
                          if k.startswith("dedup.") and v)
        print(f"  {run['scale']}× {run['side']:<9} {run['workers']} worker(s): {funnel['after LID']} → −"
              f"{funnel['dedup removed']}{f' ({split})' if split else ''} → −{funnel['filters removed']} → "
              f"{funnel['released']}")

    print("\nscaling from 1 to 2 workers (wall-clock speed-up; cpu s ratio)")
    for (scale, side, workers), run in sorted(by_key.items()):
        single = by_key.get((scale, side, 1))
        if workers > 1 and single:
            print(f"  {scale}× {side:<9} {workers} workers: {single['wall'] / run['wall']:.2f}× faster "
                  f"({single['wall']:.1f} → {run['wall']:.1f} s wall), cpu {run['cpu'] / single['cpu']:.2f}× "
                  f"({single['cpu']:.1f} → {run['cpu']:.1f} s)")

    print("\nhow cost grows with size: cpu s (and wall s) per 1,000 documents in")
    scales = sorted(manifests)
    for side in ("ours", "datatrove"):
        for workers in sorted({r["workers"] for r in runs}):
            found = [by_key[(s, side, workers)] for s in scales if (s, side, workers) in by_key]
            if not found:
                continue
            parts = [f"{r['scale']}×: {1000 * r['cpu'] / r['documents_in']:.1f} "
                     f"({1000 * r['wall'] / r['documents_in']:.1f})" for r in found]
            line = f"  {side:<9} {workers} worker(s): " + ", ".join(parts)
            if len(found) > 1:  # fixed + marginal cost from the smallest and largest scale
                small, large = found[0], found[-1]
                marginal = (large["cpu"] - small["cpu"]) / (large["documents_in"] - small["documents_in"])
                line += (f"; marginal {1000 * marginal:.1f} cpu s per 1k docs, fixed ≈ "
                         f"{small['cpu'] - marginal * small['documents_in']:.1f} cpu s")
            print(line)
    loads = [value for r in runs for value in r["load"]]
    print(f"\nload average during the runs: {min(loads):.2f}–{max(loads):.2f} on {os.cpu_count()} CPUs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="65",
                        help="corpus scales, comma-separated (1 = the 100 CC pages; 65 ≈ 6,600 pages)")
    parser.add_argument("--share", type=float, default=0.01, help="share of Finnish pages in the corpus")
    parser.add_argument("--workers", default="1,2", help="worker counts, comma-separated")
    parser.add_argument("--floor-files", type=int, default=4,
                        help="WARCs of the largest corpus for the stage-1 CPU-per-page comparison (0: skip)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="also write every run's measurements to this JSON file")
    parser.add_argument("--sides", default="ours,datatrove", help="which sides to run (datatrove reads every record "
                        "whatever --select: its figures from a run with --select full hold)")
    parser.add_argument("--select", default="full", help="ours' --select: full (as datatrove reads), index or "
                        "index+neighbors (through the corpus' index, labelled by CLD2: built once, needs pycld2)")
    parser.add_argument("--side", choices=["ours", "datatrove"], help=argparse.SUPPRESS)
    parser.add_argument("--side-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        args.workers = int(args.workers)
        serve(args)
        return

    from corpus import build_corpus, load_manifest

    scales = [int(s) for s in args.scales.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]
    manifests, runs = {}, []
    work = Path(tempfile.mkdtemp(prefix="curate-bench-e2e-"))
    try:
        for scale in scales:
            root = build_corpus(common.cache_dir() / f"corpus-scale{scale}-share{args.share}-seed{args.seed}", scale,
                                args.seed, args.share)
            manifests[scale] = manifest = load_manifest(root)
            if args.select != "full":
                ensure_index(root, manifest)
            print(f"corpus {scale}×: {manifest['pages']:,} pages ({manifest['cc_pages']:,} CC sample + "
                  f"{manifest['finnish_pages']:,} Finnish), {manifest['html_bytes'] / 1e6:,.1f} MB HTML in "
                  f"{len(manifest['files'])} WARCs", flush=True)
            for workers in worker_counts:
                order = ("ours", "datatrove") if len(runs) % 4 == 0 else ("datatrove", "ours")
                for side in (s for s in order if s in args.sides.split(",")):
                    run = measure(side, root, workers, work, args.select)
                    runs.append({**run, "scale": scale})
                    print(f"  {side:<9} {workers} worker(s): {run['wall']:.1f} s wall, {run['cpu']:.1f} cpu s, "
                          f"{run['released']} released", flush=True)
        floor = stage1_floor(root, manifest, args.floor_files, work) if args.floor_files else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.save:
        args.save.write_text(json.dumps({"runs": runs, "stage1_floor": floor}, indent=1))
    print_report(runs, manifests)
    print_agreement(runs, manifests)
    if floor:
        print_floor(floor)


if __name__ == "__main__":
    main()
