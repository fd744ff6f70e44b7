"""Decontamination of fin_Latn: curate's index + stage-3 block vs datatrove's `NGramsDecontIndexer` +
`NGramsDecontFilter`, on the same documents and evaluation sets.

    .venv/bin/python benchmarks/decontamination.py [--documents 4000] [--mmlu-items 15000]

Documents: Finnish news and treebank sentences (../shared/data/text/fi, never FLORES) in documents of 8-16
sentences, with a long FLORES-200 fin_Latn sentence planted in 2 % of them and a synthetic MMLU item in another 2 %.
Two configurations of sets:

- `flores`: FLORES-200 of seven languages (fin, est, swe, nob, dan, deu, eng: 7,084 items);
- `mmlu`: a synthetic set of MMLU's size, 15,000 items of ~100 words drawn from the Finnish text's own word stream.

Each side runs in a fresh interpreter pinned to one core (`common.pin_to_one_core`): it builds its index from the
items (datatrove: the indexer's own `compute_hashes`, fed the items through its API: the indexer's `run` loads
tasks with lighteval, which curate does not install; the filter reads the index files it wrote), then filters every
document. Reported: documents per CPU second of the filtering, the index build's CPU seconds, peak memory (max RSS
of the side; and its growth over the interpreter after imports), and whether both removed the same documents. Both
use 13-grams and datatrove's spaCy tokenizer for Finnish.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PROJECT, pin_to_one_core, setup, table  # noqa: E402

setup()
SHARED = PROJECT.parent / "shared" / "data" / "text"
FLORES = ("fin_Latn", "est_Latn", "swe_Latn", "nob_Latn", "dan_Latn", "deu_Latn", "eng_Latn")
NGRAM = 13
BATCH = 1000


def _sentences() -> list[str]:
    lines = [line.strip() for path in sorted((SHARED / "fi").glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if len(line.split()) >= 4]


def mmlu_items(count: int, seed: int = 0) -> list[str]:
    """`count` items of 60-140 words (mean ~100), each a run of words drawn at random places of the Finnish text
    (so word frequencies are the language's), ending with a question mark."""
    words = " ".join(_sentences()).split()
    rng = random.Random(seed)
    items = []
    for _ in range(count):
        length = rng.randint(60, 140)
        items.append(" ".join(words[rng.randrange(len(words))] for _ in range(length)) + "?")
    return items


def corpus(documents: int, mmlu: list[str], seed: int = 0) -> tuple[list[str], dict[str, list[int]]]:
    """Documents and, per kind of plant, the documents planted."""
    pool = _sentences()
    flores = [i for i in (SHARED / "flores200" / "fin_Latn.txt").read_text(encoding="utf-8").splitlines()
              if len(i.split()) >= 20]
    rng = random.Random(seed)
    texts, planted = [], {"flores": [], "mmlu": []}
    for number in range(documents):
        length = rng.randint(8, 16)
        start = rng.randrange(len(pool) - length)
        sentences = pool[start:start + length]
        roll = rng.random()
        if roll < 0.02:
            sentences.insert(rng.randrange(len(sentences)), rng.choice(flores))
            planted["flores"].append(number)
        elif roll < 0.04:
            sentences.insert(rng.randrange(len(sentences)), rng.choice(mmlu))
            planted["mmlu"].append(number)
        paragraphs = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
        texts.append("\n\n".join(paragraphs))
    return texts, planted


def sets_of(configuration: str, mmlu: list[str]) -> dict[str, list[str]]:
    if configuration == "mmlu":
        return {"mmlu_synthetic": mmlu}
    return {code: [line.strip() for line in (SHARED / "flores200" / f"{code}.txt").read_text(encoding="utf-8")
                   .splitlines() if line.strip()] for code in FLORES}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def side_curate(texts: list[str], sets: dict[str, list[str]]) -> dict:
    import pyarrow as pa

    from curate.blocks.decontamination import Tokenizer, decontamination_block
    from curate.blocks.evaluation_sets import EvalSet, content_fingerprint

    Tokenizer.for_language("fin_Latn", "Latn").hash_many(["lämmitys"])  # spaCy and datatrove's tokenizer loaded
    base = _rss_mb()
    started = time.process_time()
    eval_sets = [EvalSet(name, name, tuple(items), content_fingerprint(tuple(items))) for name, items in sets.items()]
    block = decontamination_block(eval_sets, "fin_Latn", "Latn", n=NGRAM)
    built = time.process_time() - started
    block(pa.table({"text": ["Lämmittely ennen mittausta."]}))  # one-off imports of the first call
    started = time.process_time()
    removed = []
    for start in range(0, len(texts), BATCH):
        out = block(pa.table({"text": texts[start:start + BATCH]}))
        removed += [start + i for i, r in enumerate(out["drop_reason"].to_pylist()) if r]
    return {"build_s": built, "filter_s": time.process_time() - started, "removed": removed,
            "index_mb": block.index.nbytes / 2**20, "base_mb": base, "peak_mb": _rss_mb()}


def side_datatrove(texts: list[str], sets: dict[str, list[str]]) -> dict:
    from types import SimpleNamespace

    import numpy as np
    from datatrove.data import Document
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter, NGramsDecontIndexer
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    config = NGramsDecontConfig(n_grams=NGRAM)
    load_word_tokenizer("fin_Latn").word_tokenize("lämmitys")
    base = _rss_mb()
    with tempfile.TemporaryDirectory() as folder:
        started = time.process_time()
        xxhash64 = create_hash_func(config.hash_config)

        def hash_func(text: str) -> int:  # datatrove hands xxhash a str, which xxhash 4 refuses: its UTF-8 bytes
            return xxhash64(text.encode("utf-8"))

        indexer = SimpleNamespace(tokenizer=load_word_tokenizer("fin_Latn"), config=config, hash_func=hash_func)
        for name, items in sets.items():
            hashes = {h for item in items for h in NGramsDecontIndexer.compute_hashes(indexer, item)}
            np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(f"{folder}/{name}.index.hashes")
        decont = NGramsDecontFilter(folder, config=config, language="fin_Latn")
        decont.hash_func = hash_func
        decont.load_index_hashes()
        built = time.process_time() - started
        started = time.process_time()
        removed = []
        for number, text in enumerate(texts):
            if decont.filter(Document(text=text, id=str(number))) is not True:
                removed.append(number)
        return {"build_s": built, "filter_s": time.process_time() - started, "removed": removed,
                "base_mb": base, "peak_mb": _rss_mb()}


def run_side(side: str, configuration: str, documents: int, mmlu_count: int) -> dict:
    """One side in a fresh interpreter pinned to one core."""
    result = subprocess.run([sys.executable, __file__, "--side", side, "--configuration", configuration,
                             "--documents", str(documents), "--mmlu-items", str(mmlu_count)],
                            capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{side} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--mmlu-items", type=int, default=15000)
    parser.add_argument("--side", choices=("curate", "datatrove"))
    parser.add_argument("--configuration", choices=("flores", "mmlu"))
    args = parser.parse_args()
    mmlu = mmlu_items(args.mmlu_items)
    texts, planted = corpus(args.documents, mmlu)
    if args.side:
        pin_to_one_core()
        sets = sets_of(args.configuration, mmlu)
        side = side_curate if args.side == "curate" else side_datatrove
        print(json.dumps(side(texts, sets)))
        return
    words = sum(len(t.split()) for t in texts)
    print(f"{len(texts):,} documents ({words / len(texts):.0f} words each); planted: "
          f"{len(planted['flores'])} FLORES, {len(planted['mmlu'])} MMLU-like; one core per side")
    rows = []
    for configuration in ("flores", "mmlu"):
        items = sum(len(v) for v in sets_of(configuration, mmlu).values())
        results = {side: run_side(side, configuration, args.documents, args.mmlu_items)
                   for side in ("datatrove", "curate")}
        same = results["curate"]["removed"] == results["datatrove"]["removed"]
        for side, result in results.items():
            rate = len(texts) / max(result["filter_s"], 1e-9)
            rows.append([configuration, f"{items:,}", side, round(rate), round(result["build_s"], 1),
                         len(result["removed"]), round(result["peak_mb"]), round(result["peak_mb"] - result["base_mb"]),
                         "yes" if same else "NO"])
        ratio = (results["datatrove"]["filter_s"] / max(results["curate"]["filter_s"], 1e-9))
        rows.append([configuration, "", "curate ÷ datatrove", f"{ratio:.1f}×", "", "", "", "", ""])
        expected = sorted(planted[configuration])
        if results["curate"]["removed"] != expected:
            print(f"{configuration}: curate removed {len(results['curate']['removed'])}, planted {len(expected)}")
        print(f"{configuration}: curate index {results['curate']['index_mb']:.1f} MB", flush=True)
    print(table(rows, ["sets", "items", "side", "docs / CPU s", "index build CPU s", "removed", "peak RSS MB",
                       "RSS over imports MB", "same removed"]))


if __name__ == "__main__":
    main()
