"""The prefilter steps aside in a unit where most of the first pages pass it (language-dense input) and on
records the index chose; on crawl-like input it keeps dropping other languages' pages."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest
from mirror import Record, documents, page, write_warc

from curate.blocks.warc import WarcReader
from curate.pipeline.execution.graph import build_graph
from curate.pipeline.execution.stage1 import PrefilterGate, Stage1Work, Unit
from curate.pipeline.execution.storage import Output
from curate.pipeline.execution.streams import read_parts
from curate.pipeline.sources.crawls import WarcFile

CRAWL = "CC-MAIN-2024-22"


def warc(path: Path, finnish: int, english: int) -> Path:
    records = [Record(f"https://a.fi/{i}", page(text, "fi", f"Otsikko {i}").encode())
               for i, text in enumerate(documents("fin", finnish, 3))]
    records += [Record(f"https://a.com/{i}", f"<html lang=en><body><h1>T {i}</h1><p>{text}</p></body></html>".encode())
                for i, text in enumerate(documents("eng", english, 3))]  # not in the Finnish page template
    random.Random(7).shuffle(records)
    write_warc(path, records)
    return path


@pytest.fixture(scope="module")
def graph():
    return build_graph(["fin_Latn"], lid="ft176")


def stage1(graph, path: Path, out: Path, gate: PrefilterGate, batch_size: int = 8) -> tuple[set[str], Counter]:
    work = Stage1Work(graph, "", str(out), WarcReader(batch_size=batch_size), prefilter_gate=gate)
    result = work.run(Unit("u", (WarcFile(CRAWL, str(path)),)))
    kept = set(read_parts(Output(str(out)), result.kept_parts.get("fin_Latn", []), ["url"]).column("url").to_pylist()
               if result.kept_parts.get("fin_Latn") else [])
    return kept, Counter(result.counts)


def test_dense_input_steps_aside_after_the_sample_and_keeps_the_same_documents(graph, tmp_path):
    path = warc(tmp_path / "dense.warc.gz", finnish=30, english=2)
    half = PrefilterGate(sample_pages=8, max_pass_share=0.5)
    kept, counts = stage1(graph, path, tmp_path / "gate", half)
    always, always_counts = stage1(graph, path, tmp_path / "always", PrefilterGate(sample_pages=8, max_pass_share=1))
    assert counts["prefilter.stepped_aside"] == 32 - 8  # the first batch sampled, the other three not
    one_batch = stage1(graph, path, tmp_path / "one", half, batch_size=64)[1]
    assert one_batch["prefilter.stepped_aside"] == 32 - 8  # the batch is cut where the sample ends
    assert always_counts["prefilter.stepped_aside"] == 0
    assert kept == always and len(kept) >= 25


def test_dense_input_reads_without_cld2_after_the_sample_and_keeps_the_same_documents(graph, tmp_path):
    """Where CLD2 lets most pages through it only adds its cost: the fastText pass alone reads the rest."""
    path = warc(tmp_path / "dense.warc.gz", finnish=30, english=2)
    gate = PrefilterGate(sample_pages=8, max_pass_share=1, max_cld2_pass_share=0.5)
    kept, counts = stage1(graph, path, tmp_path / "gate", gate)
    never = PrefilterGate(sample_pages=8, max_pass_share=1, max_cld2_pass_share=1)
    always, always_counts = stage1(graph, path, tmp_path / "always", never)
    assert counts["prefilter.cld2_stepped_aside"] == 32 - 8 and always_counts["prefilter.cld2_stepped_aside"] == 0
    assert counts["prefilter.stepped_aside"] == 0 and kept == always and len(kept) >= 25


def test_crawl_like_input_keeps_the_prefilter(graph, tmp_path):
    path = warc(tmp_path / "crawl.warc.gz", finnish=3, english=29)
    kept, counts = stage1(graph, path, tmp_path / "gate", PrefilterGate(sample_pages=8, max_pass_share=0.5))
    ruled_out = counts["prefilter.cld2_other_language"] + counts["prefilter.other_language"]
    assert counts["prefilter.stepped_aside"] == counts["prefilter.cld2_stepped_aside"] == 0 and ruled_out >= 25
    assert kept == {f"https://a.fi/{i}" for i in range(3)}


def test_index_selected_records_skip_it():
    gate = PrefilterGate()
    assert gate.active(index_selected=False) and not gate.active(index_selected=True)
    gate.observe(64, 60, 60)  # 94 % passed: the other pages' extraction would cost more than the prefilter
    assert gate.active(False)
    gate = PrefilterGate()
    gate.observe(64, 62, 62)  # 97 %: nearly every page
    assert not gate.active(False)
    gate.observe(256, 0, 0)  # decided on the sample: later pages do not change it
    assert not gate.active(False)
