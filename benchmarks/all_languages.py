"""Every language in one pass: `curate run --lang all --lid ft176` against datatrove's FineWeb2 pipeline doing the
same on the same pages (tests/all_languages_mirror.py: FLORES-200 half-0 text inside real cc-sample100 templates,
`--per-language` pages of each of ~180 languages), with the same workers: wall, CPU, files written, peak RSS of
a task, and the same documents per language.

- ours: `curate run --lang all --lid ft176 --skip-unavailable` (the CLI, in a fresh interpreter: imports, Ray's
  start-up, model checks and the report all count), every language routed in one stage-1 pass, then dedup, stage 3
  and the final shards of every language.
- datatrove: FineWeb2's recipe (huggingface/fineweb-2, fineweb-2-pipeline.py) as FineWeb2 ran it: one pass of
  WarcReader → URLFilter → Trafilatura(favour_precision=True) → LanguageFilter(every language's lid.176 label,
  lid.176.ftz, the lowest threshold) → JsonlWriter(`${language}/…`), then per language (the languages ours ran,
  with documents) MinHash signatures → buckets → clusters → dedup filter, the language's threshold on the
  language score, its Gopher/FineWeb filters (FineWeb2's config of the language), FTFY, PII, "|" lines →
  ParquetWriter. The pieces are benchmarks/e2e.py's (offline LID, URL filter and MinHash hashing).

CPU seconds are those of each side's whole process tree (`common.tree_cpu_seconds`); the peak RSS of a task is
the largest resident set any one worker process reached (ours: Ray's `ray::` workers; datatrove: its process and
pool workers), sampled every 0.2 s. Files written count every file under the output but logs; ours' stage-1
files per unit are the files under `_work/**/stage1` over the stage-1 manifests.

    python benchmarks/all_languages.py [--per-language 2] [--files 2] [--workers 2] [--save runs.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

common.setup()
common.use_test_helpers()

HERE = Path(__file__).resolve()
FINEWEB2_CONFIGS = common.PROJECT.parent / "shared" / "reference" / "fineweb2" / "configs-all"


class PeakRss:
    """The largest resident set of one process of this process's tree (those whose command line contains `only`,
    when given), sampled every `interval` seconds while running."""

    def __init__(self, only: str = "", interval: float = 0.2):
        self.only, self.interval, self.peak = only, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in _tree(os.getpid()):
                try:
                    if self.only and self.only not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                        continue
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                rss = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
                self.peak = max(self.peak, rss * 1024)


def _tree(root: int) -> list[int]:
    """`root` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def _files(folder: Path, skip: str = "logs") -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file() and skip not in p.relative_to(folder).parts)


def _released(folder: Path) -> set[str]:
    import pyarrow.parquet as pq

    return {i for path in folder.rglob("*.parquet") for i in pq.read_table(path, columns=["id"])["id"].to_pylist()}


# --- ours ----------------------------------------------------------------------------------------------------


def run_ours(args: argparse.Namespace) -> dict:
    from curate.pipeline.cli.main import app

    command = ["run", "--lang", "all", "--lid", "ft176", "--skip-unavailable", "--snapshots", args.crawl,
               "--source", str(args.root), "--output", str(args.out), "--cpus", str(args.workers)]
    cpu, wall = common.tree_cpu_seconds(), time.perf_counter()
    with PeakRss(only="ray::") as rss:
        app(command, standalone_mode=False)
    wall, cpu = time.perf_counter() - wall, common.tree_cpu_seconds() - cpu  # before Ray's shutdown at exit
    languages = json.loads((args.out / "run.json").read_text())["languages"]
    units = len(list((args.out / "_work" / "manifests" / "stage1").glob("*.json")))
    stage1_files = sum(1 for p in args.out.rglob("*.parquet") if "_work" in p.parts and "stage1" in p.parts)
    return {"wall": wall, "cpu": cpu, "peak_rss": rss.peak, "files": _files(args.out), "languages": languages,
            "stage1_units": units, "stage1_files": stage1_files,
            "released": {code: sorted(_released(args.out / code / "data")) for code in languages}}


# --- datatrove -----------------------------------------------------------------------------------------------


def run_datatrove(args: argparse.Namespace) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import LambdaFilter
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter, SymbolLinesFormatter
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter
    from datatrove.utils.hashing import HashConfig
    from e2e import EXTRACT_TIMEOUT_S, offline_pieces
    from filters_helpers import datatrove_fineweb2_filters

    from curate.language_configs import load_language_config
    from curate.language_configs.labels import ft176_labels

    languages = args.languages  # ours' run.json: the languages it ran
    labels = {code: label for label, code in ft176_labels().items() if code in set(languages)}
    thresholds = {code: load_language_config(code).lid.min_score["ft176"] for code in labels}
    pieces = offline_pieces()
    config = MinhashConfig(hash_config=HashConfig(hash_fc="xxhash", precision=64), num_buckets=14,
                           hashes_per_bucket=8, n_grams=5)
    out, logs = args.out, args.out / "logs"
    lid_out = out / "language_filtering"

    def executor(name: str, pipeline: list, tasks: int) -> LocalPipelineExecutor:
        return LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(args.workers, tasks),
                                     logging_dir=str(logs / name))

    cpu, wall = common.tree_cpu_seconds(), time.perf_counter()
    with PeakRss() as rss:
        executor("read", [
            WarcReader(str(args.root), paths_file=str(args.root / "crawl-data" / args.crawl / "warc.paths.gz"),
                       default_metadata={"dump": args.crawl}),
            pieces.url_filter(),
            Trafilatura(favour_precision=True, timeout=EXTRACT_TIMEOUT_S),
            pieces.language_filter(sorted(set(labels.values())), min(thresholds.values())),
            JsonlWriter(str(lid_out), output_filename="${language}/${rank}.jsonl.gz"),
        ], args.workers).run()
        for code, label in sorted(labels.items()):
            if not (lid_out / label).is_dir():
                continue
            minhash = out / "minhash" / code
            threshold = thresholds[code]
            executor(f"{code}-signatures", [JsonlReader(str(lid_out / label)), pieces.minhash_signature(
                str(minhash / "signatures"), config=config, language=code)], 1).run()
            executor(f"{code}-buckets", [MinhashDedupBuckets(str(minhash / "signatures"), str(minhash / "buckets"),
                                                             config=config)], config.num_buckets).run()
            executor(f"{code}-clusters", [MinhashDedupCluster(str(minhash / "buckets"), str(minhash / "remove_ids"),
                                                              config=config, save_cluster_size=True)], 1).run()
            executor(f"{code}-filters", [
                JsonlReader(str(lid_out / label)),
                MinhashDedupFilter(str(minhash / "remove_ids"), load_cluster_sizes=True),
                LambdaFilter(lambda doc, t=threshold: doc.metadata["language_score"] >= t),
                *datatrove_fineweb2_filters(code, FINEWEB2_CONFIGS / f"{code}.yml"),
                FTFYFormatter(), PIIFormatter(), SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n"),
                ParquetWriter(str(out / "output" / code)),
            ], 1).run()
    wall, cpu = time.perf_counter() - wall, common.tree_cpu_seconds() - cpu
    return {"wall": wall, "cpu": cpu, "peak_rss": rss.peak, "files": _files(out),
            "released": {code: sorted(_released(out / "output" / code)) for code in labels
                         if (out / "output" / code).is_dir()}}


# --- driver --------------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> None:
    """One side's run in this fresh interpreter; its measurement goes to the driver."""
    log = open(args.out.parent / f"{args.out.name}.log", "w")  # noqa: SIM115 - lives as long as the process
    os.dup2(log.fileno(), 2)
    common.send_message({"ready": True})
    result = (run_ours if args.side == "ours" else run_datatrove)(args)
    common.send_message(result)
    for line in sys.stdin:
        if line.strip() == "finish":
            args.side_output.write_text("{}")
            common.send_message({"done": True})
            return


def measure(side: str, args: argparse.Namespace, work: Path, languages: list[str] | None = None) -> dict:
    out = work / side
    extra = ["--languages", ",".join(languages)] if languages else []
    process = common.SideProcess(HERE, ["--side", side, "--root", str(args.root), "--out", str(out), "--crawl",
                                        args.crawl, "--workers", str(args.workers), *extra])
    try:
        process.receive()
        result = process.receive()
        process.finish()
    except RuntimeError:
        raise common.side_failed(f"{side}", out) from None
    finally:
        process.close()
    return result


def report(ours: dict, theirs: dict, pages: int, workers: int) -> None:
    rows = []
    for name, run in (("ours", ours), ("datatrove", theirs)):
        released = sum(len(ids) for ids in run["released"].values())
        rows.append([name, pages, released, run["wall"], run["cpu"], pages / run["cpu"], run["files"],
                     run["peak_rss"] / 2**20])
    print(common.table(rows, ["side", "pages", "released", "wall s", "cpu s", "pages/s/core", "files written",
                              "peak RSS of a task MiB"]))
    print(f"ours ÷ datatrove: {theirs['cpu'] / ours['cpu']:.2f}× per core, {theirs['wall'] / ours['wall']:.2f}× wall "
          f"(start-up included on both sides; {workers} workers each)")
    print(f"ours' stage-1 files: {ours['stage1_files']} for {ours['stage1_units']} units "
          f"({ours['stage1_files'] / max(ours['stage1_units'], 1):.1f} a unit, {len(ours['languages'])} languages)")
    codes = sorted(set(ours["released"]) | set(theirs["released"]))
    same = [c for c in codes if ours["released"].get(c, []) == theirs["released"].get(c, [])]
    with_documents = [c for c in codes if ours["released"].get(c) or theirs["released"].get(c)]
    print(f"the same documents: {len([c for c in same if c in with_documents])} of {len(with_documents)} languages "
          "with documents release exactly the same ids")
    for code in with_documents:
        if code not in same:
            mine, other = set(ours["released"].get(code, [])), set(theirs["released"].get(code, []))
            print(f"  {code}: ours {len(mine)}, datatrove {len(other)}, both {len(mine & other)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-language", type=int, default=2, help="pages of each language")
    parser.add_argument("--files", type=int, default=2, help="WARC files of the mirror")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--save", type=Path, help="also write both sides' measurements to this JSON file")
    parser.add_argument("--side", choices=["ours", "datatrove"], help=argparse.SUPPRESS)
    parser.add_argument("--side-output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--crawl", help=argparse.SUPPRESS)
    parser.add_argument("--languages", type=lambda v: v.split(","), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.side:
        serve(args)
        return

    from all_languages_mirror import CRAWL, build_languages_mirror

    work = Path(tempfile.mkdtemp(prefix="curate-bench-all-languages-"))
    try:
        args.root, args.crawl = work / "mirror", CRAWL
        mirror = build_languages_mirror(args.root, per_language=args.per_language, files=args.files)
        pages = sum(len(urls) for urls in mirror.pages.values())
        print(f"mirror: {pages:,} pages of {len(mirror.pages)} languages in {args.files} WARCs", flush=True)
        ours = measure("ours", args, work)
        print(f"  ours: {ours['wall']:.1f} s wall, {ours['cpu']:.1f} cpu s", flush=True)
        theirs = measure("datatrove", args, work, ours["languages"])
        print(f"  datatrove: {theirs['wall']:.1f} s wall, {theirs['cpu']:.1f} cpu s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.save:
        args.save.write_text(json.dumps({"ours": ours, "datatrove": theirs}, indent=1))
    report(ours, theirs, pages, args.workers)


if __name__ == "__main__":
    main()
