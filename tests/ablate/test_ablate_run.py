"""`curate ablate` end to end on CPU: tiny models on the hand-built run output, evaluated on FLORES Finnish
(held out: not in the training text). The filtered corpus gives a lower held-out bits per byte than the
raw one at the same token budget, with the table, plot and stats written; finished runs are not retrained
and an interrupted run resumes from its checkpoint to the same curve."""

from __future__ import annotations

import json
import os
from pathlib import Path

import matplotlib.image
import pyarrow.parquet as pq
import pytest
from ablate_testdata import CODE, HELDOUT_FI, build_run_output
from typer import Typer
from typer.testing import CliRunner

from curate.errors import UserError
from curate.pipeline.ablation import AblationSettings, run_ablation, runner
from curate.pipeline.cli.ablate import ablate

TOKENS = 40_000  # 79 steps of 8 × 64 tokens: ~3 s a run on one core
SMALL = dict(model="tiny", eval_texts=[str(HELDOUT_FI)], vocab_size=768, tokenizer_documents=3000, seq_len=64,
             micro_batch_size=8, lr=3e-3, evaluations=4, eval_max_tokens=8000)
STEPS = -(-TOKENS // 512)
EVAL_EVERY = STEPS // 4
PIPELINE_STATS = {"released": {"documents": 2820}, "stage3": {"kept": 2820}}  # what `curate run` wrote


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ablate")
    built = build_run_output(root)
    (built.language_root / "stats.json").write_text(json.dumps(PIPELINE_STATS))
    return root


@pytest.fixture(scope="module")
def settings() -> AblationSettings:
    return AblationSettings(variants=["raw", "filtered"], tokens=TOKENS, seeds=[0, 1], **SMALL)


@pytest.fixture(scope="module")
def ablation(out: Path, settings: AblationSettings):
    return run_ablation(str(out), "fin", settings)


def test_filtered_data_gives_lower_held_out_bits_per_byte(ablation) -> None:
    raw, filtered = ablation.aggregate["raw"], ablation.aggregate["filtered"]
    expected_tokens = [s * 512 for s in [0, EVAL_EVERY, 2 * EVAL_EVERY, 3 * EVAL_EVERY, 4 * EVAL_EVERY, STEPS]]
    assert raw["tokens"] == filtered["tokens"] == expected_tokens
    for seed in (0, 1):
        assert ablation.runs["filtered"][seed]["bpb"][-1] < ablation.runs["raw"][seed]["bpb"][-1] - 0.03
    assert filtered["final_bpb"] < raw["final_bpb"] - 0.05
    for row in (raw, filtered):
        assert row["bpb"][-1] < row["bpb"][0] - 0.5 and row["seeds"] == 2
    for runs in ablation.runs.values():
        assert [r["trained_tokens"] for r in runs] == [STEPS * 512] * 2  # the same budget for every run
    assert ablation.runs["raw"][0]["bpb"] != ablation.runs["raw"][1]["bpb"]  # seeds differ
    statistics = ablation.statistics
    assert statistics["best"] == "filtered"
    assert statistics["steps"][0]["gain"] == pytest.approx(raw["final_bpb"] - filtered["final_bpb"])
    assert statistics["snr"] > 2 and statistics["monotonicity"]["filtered"] > 0.9


def test_the_held_out_text_is_not_trained_on(ablation) -> None:
    heldout = {line.strip() for line in HELDOUT_FI.read_text(encoding="utf-8").splitlines() if line.strip()}
    for corpus in ablation.corpora.values():
        texts = pq.read_table(corpus.path, columns=["text"])["text"].to_pylist()
        assert not any(line in heldout for text in texts for line in text.split("\n"))
        assert not any(sentence in " ".join(texts) for sentence in list(heldout)[:50])


def test_table_plot_results_and_stats(ablation, out: Path) -> None:
    folder = out / CODE / "ablation"
    results = json.loads((folder / "results.json").read_text())
    assert results["variants"]["filtered"]["bpb"] == pytest.approx(ablation.aggregate["filtered"]["bpb"])
    assert [r["seed"] for r in results["runs"]["raw"]] == [0, 1]
    assert results["settings"]["tokens"] == TOKENS
    table = (folder / "table.md").read_text()
    for name, row in ablation.aggregate.items():
        documents = ablation.corpora[name].documents
        assert f"| {name} | {documents:,} | {STEPS * 512:,} | 2 | {row['final_bpb']:.4f} |" in table
    assert "| raw → filtered |" in table
    image = matplotlib.image.imread(folder / "bpb.png")
    assert image.shape[:2] == (340, 640)
    stats = json.loads((out / CODE / "stats.json").read_text())
    assert {k: v for k, v in stats.items() if k != "ablation"} == PIPELINE_STATS  # other keys kept
    section = stats["ablation"]
    assert set(section["variants"]) == {"raw", "filtered"}
    for name, row in section["variants"].items():
        assert row["tokens"] == ablation.aggregate[name]["tokens"]
        assert row["bpb"] == pytest.approx(ablation.aggregate[name]["bpb"])
        assert row["final_bpb"] == pytest.approx(row["bpb"][-1]) and row["seeds"] == 2
    assert section["statistics"]["steps"][0]["from"] == "raw"


def test_rerun_skips_finished_runs(ablation, out: Path, settings: AblationSettings) -> None:
    results = sorted((out / CODE / "ablation" / "results").glob("*.json"))
    mtimes = [os.stat(p).st_mtime_ns for p in results]
    again = run_ablation(str(out), "fin", settings)
    assert again.trained == [] and len(again.reused) == 4
    assert again.aggregate == ablation.aggregate
    assert [os.stat(p).st_mtime_ns for p in results] == mtimes


def test_interrupted_run_resumes_from_its_checkpoint(ablation, out: Path, settings: AblationSettings,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folder = out / CODE / "ablation"
    reference = ablation.runs["filtered"][1]
    (folder / "results" / "filtered.seed-1.json").unlink()
    run_dir = folder / "runs" / "filtered" / "seed-1"
    for path in sorted(run_dir.rglob("*"), reverse=True):  # as if it had never run
        path.unlink() if path.is_file() else path.rmdir()
    train_here = runner._train_here
    stop = 2 * runner.checkpoint_interval(EVAL_EVERY, STEPS)  # killed right after its second checkpoint
    assert stop % EVAL_EVERY  # a step that is not evaluated

    def killed_after_a_checkpoint(config, device):
        train_here({**config, "stop_at_step": stop}, device)

    monkeypatch.setattr(runner, "_train_here", killed_after_a_checkpoint)
    with pytest.raises(UserError, match="filtered/seed-1 ended before its last evaluation .*rerun"):
        run_ablation(str(out), "fin", settings)
    monkeypatch.undo()
    resumed = run_ablation(str(out), "fin", settings)
    assert resumed.trained == ["filtered/seed-1"]
    assert json.loads((run_dir / "result.json").read_text())["start_step"] == stop  # not from scratch
    assert resumed.runs["filtered"][1]["bpb"] == pytest.approx(reference["bpb"], rel=1e-6)
    assert resumed.runs["filtered"][1]["tokens"] == reference["tokens"]


def test_cli(ablation, tmp_path: Path) -> None:
    """The other three variants through the command line, with the tokenizer of the first ablation."""
    build_run_output(tmp_path, spam=300, boilerplate=100)
    app = Typer()
    app.command()(ablate)
    tokenizer = ablation.folder / "tokenizer"
    arguments = [str(tmp_path), "--lang", "fin", "--variants", "lid,dedup,rehydrated", "--tokens", "3k",
                 "--model", "tiny", "--eval", str(HELDOUT_FI), "--tokenizer", str(tokenizer), "--seq-len", "64",
                 "--batch-size", "8", "--evaluations", "2", "--eval-max-tokens", "2000", "--cpu"]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    assert "| lid |" in result.stdout and "| rehydrated |" in result.stdout and "| lid → dedup |" in result.stdout
    stats = json.loads((tmp_path / CODE / "stats.json").read_text())["ablation"]
    assert stats["order"] == ["lid", "dedup", "rehydrated"] == sorted(stats["variants"], key=stats["order"].index)
    assert {row["tokens"][-1] for row in stats["variants"].values()} == {6 * 512}
    missing = CliRunner().invoke(app, [str(tmp_path / "none"), "--lang", "fin", "--eval", str(HELDOUT_FI), "--cpu"])
    assert isinstance(missing.exception, UserError) and "does not exist" in str(missing.exception)


@pytest.mark.skipif(not os.environ.get("CURATE_SLOW_TESTS"),
                    reason="starts Ray, whose worker imports torch (~35 s on 2 busy cores): set CURATE_SLOW_TESTS=1")
def test_runs_go_to_ray_tasks_when_there_are_gpus(ablation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With GPUs a run is a Ray task holding one (here a Ray whose one "GPU" is declared, not real: the
    task trains on the CPU) and gives the curve of the same run in this process."""
    ray = pytest.importorskip("ray")
    build_run_output(tmp_path / "here", spam=300, boilerplate=100)
    build_run_output(tmp_path / "ray", spam=300, boilerplate=100)
    settings = AblationSettings(variants=["filtered"], tokens=2_000, **{**SMALL, "evaluations": 2,
                                "eval_max_tokens": 2000}, tokenizer=str(ablation.folder / "tokenizer"))
    here = run_ablation(str(tmp_path / "here"), "fin", settings)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    ray.init(num_cpus=1, num_gpus=1, include_dashboard=False)
    try:
        settings.use_gpu = True
        on_ray = run_ablation(str(tmp_path / "ray"), "fin", settings)
    finally:
        ray.shutdown()
    assert on_ray.trained == here.trained == ["filtered/seed-0"]
    assert on_ray.runs["filtered"][0]["bpb"] == pytest.approx(here.runs["filtered"][0]["bpb"], rel=1e-5)
    with pytest.raises(UserError, match="--gpu: this machine has no GPU"):
        run_ablation(str(tmp_path / "here"), "fin", AblationSettings(**{**settings.__dict__, "tokens": 3_000}))
