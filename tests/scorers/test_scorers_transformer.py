"""Transformer scorers: tiny BERT models made here (one per kind) score like a direct `transformers` forward pass,
whatever the batch composition; thresholds drop with reasons; `hf://` models load through the loopback Hub, then
from the cache offline; the GPU actor pool loads each model once per actor; a `curate run` writes the scores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from transformer_helpers import LABELS, MAX_POSITIONS, build_tiny_models, direct_outputs  # noqa: E402

from curate.blocks.score_transformer import (  # noqa: E402
    TransformerScorer, TransformerScores, make_batches, special_tokens, truncate)
from curate.errors import UserError  # noqa: E402
from curate.language_configs.scorers import TransformerScorerConfig  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from card_helpers import FakeHub, Repo  # noqa: E402
from torch_threads import one_torch_thread  # noqa: E402, F401 (autouse: one torch thread)

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, shared):
    return build_tiny_models(tmp_path_factory.mktemp("tiny-transformers"), shared)


@pytest.fixture(scope="module")
def texts(documents) -> list[str]:
    """Documents of very different lengths: a few words up to far past the models' 96 positions."""
    held = documents["held"]
    return [held[0][:40], *held[1:12], " ".join(held[12:16]), documents["spam"][0], "", held[16][:5]]


def scorer(name: str, **settings) -> TransformerScorer:
    return TransformerScorer(name, TransformerScorerConfig(**settings), "fin_Latn")


def score(block: TransformerScores, texts: list[str]) -> pa.Table:
    return block(pa.table({"text": texts}))


def test_each_kind_equals_a_direct_forward_pass(tiny, texts):
    block = TransformerScores([
        scorer("edu_score", model=str(tiny.regression), kind="regression"),
        scorer("genre", model=str(tiny.single_label), kind="single_label"),
        scorer("register", model=str(tiny.multilabel), kind="multilabel", threshold=0.5),
        scorer("hq_score", encoder=str(tiny.encoder), head=str(tiny.head)),
    ])
    out = score(block, texts)
    edu = direct_outputs(tiny.regression, texts)[:, 0]
    np.testing.assert_allclose(out["edu_score"].to_numpy(), edu, atol=TOLERANCE)
    assert np.ptp(edu) > 100 * TOLERANCE, "documents get clearly different scores"

    logits = direct_outputs(tiny.single_label, texts)
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert out["genre"].to_pylist() == [LABELS["single_label"][i] for i in probabilities.argmax(1)]
    np.testing.assert_allclose(out["genre_probability"].to_numpy(), probabilities.max(1), atol=TOLERANCE)

    sigmoid = 1 / (1 + np.exp(-direct_outputs(tiny.multilabel, texts)))
    struct = out["register_probabilities"].combine_chunks()
    for i, label in enumerate(LABELS["multilabel"]):
        np.testing.assert_allclose(struct.field(label).to_numpy(), sigmoid[:, i], atol=TOLERANCE)
    assigned = [[label for label, p in zip(LABELS["multilabel"], row) if p >= 0.5] for row in sigmoid]
    assert out["register"].to_pylist() == assigned

    np.testing.assert_allclose(out["hq_score"].to_numpy(), direct_outputs(tiny.encoder, texts, tiny.head)[:, 0],
                               atol=TOLERANCE)


def test_scores_do_not_depend_on_the_batch(tiny, texts):
    """Another order of the documents and smaller batches: other batch compositions, the same scores (fp32)."""
    wide = TransformerScores([scorer("edu_score", model=str(tiny.regression), kind="regression")])
    narrow = TransformerScores([scorer("edu_score", model=str(tiny.regression), kind="regression",
                                       batch_tokens=512)])
    order = list(np.random.default_rng(7).permutation(len(texts)))
    first = score(wide, texts)["edu_score"].to_numpy()
    second = score(narrow, [texts[i] for i in order])["edu_score"].to_numpy()
    np.testing.assert_allclose(second, first[order], atol=TOLERANCE)
    lengths = [len(t.split()) + 2 for t in texts]
    assert len(make_batches(lengths, 512)) > len(make_batches(lengths, 16384)) > 0


def test_batches_are_sorted_by_length_and_bounded():
    lengths = [5, 90, 7, 90, 30, 5, 64]
    batches = make_batches(lengths, 180)
    assert [i for batch in batches for i in batch] == [0, 5, 2, 4, 6, 1, 3]
    assert all(len(batch) * max(lengths[i] for i in batch) <= 180 for batch in batches)
    assert make_batches(lengths, 180) == batches  # a function of the lengths alone


def test_head_and_tail_truncation(tiny):
    tokenizer = scorer("x", model=str(tiny.regression), kind="regression").tokenizer()
    specials = special_tokens(str(tiny.regression))
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert specials == ((cls,), (sep,))
    ids = list(range(10, 30))
    assert truncate(ids, 10, "head", specials) == [cls, *range(10, 18), sep]
    assert truncate(ids, 10, "head_tail", specials) == [cls, 10, 11, 12, 13, 26, 27, 28, 29, sep]
    assert truncate(ids[:5], 10, "head_tail", specials) == [cls, *ids[:5], sep]
    assert scorer("x", model=str(tiny.regression), kind="regression").max_tokens() == MAX_POSITIONS


def test_thresholds_drop_with_reasons(tiny, texts):
    edu = score(TransformerScores([scorer("edu_score", model=str(tiny.regression), kind="regression")]),
                texts)["edu_score"].to_numpy()
    cut = float(np.median(edu))
    block = TransformerScores([
        scorer("edu_score", model=str(tiny.regression), kind="regression", min_score=cut),
        scorer("genre", model=str(tiny.single_label), kind="single_label", drop_labels=("shop",)),
    ])
    out = score(block, texts)
    reasons = out["drop_reason"].to_pylist()
    assert reasons.count("edu_score.score_low") == int((edu < cut).sum()) > 0
    genres = out["genre"].to_pylist()
    assert all(r == "genre.label" for r, g, e in zip(reasons, genres, edu) if g == "shop" and e >= cut)
    assert all(r is None for r, g, e in zip(reasons, genres, edu) if g != "shop" and e >= cut)


def test_config_mistakes_are_one_line(tiny):
    from curate.language_configs.validate import ConfigError

    with pytest.raises(ConfigError, match="give either model .with kind. or encoder .with head."):
        TransformerScorerConfig(model="x", encoder="y")
    with pytest.raises(ConfigError, match="model needs kind"):
        TransformerScorerConfig(model="x")
    with pytest.raises(ConfigError, match="drop_labels needs kind single_label or multilabel"):
        TransformerScorerConfig(model="x", kind="regression", drop_labels=("a",))
    with pytest.raises(UserError, match="kind regression needs a model with one output"):
        scorer("genre", model=str(tiny.single_label), kind="regression").check()
    with pytest.raises(UserError, match=r"drop_labels \['sports'\] are not labels of"):
        scorer("genre", model=str(tiny.single_label), kind="single_label", drop_labels=("sports",)).check()
    with pytest.raises(UserError, match="no model folder '/nowhere/model'"):
        scorer("x", model="/nowhere/model", kind="regression").check()


def test_without_torch_and_transformers_a_config_is_one_line(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if the train extra were not installed
    with pytest.raises(UserError, match=r"transformer scorers need torch and transformers: install the train extra"):
        scorer("edu_score", model=str(tiny.regression), kind="regression").check()


def _resolve_in_child(spec: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    code = ("from curate.blocks.score_transformer import TransformerScorer, TransformerScores\n"
            "from curate.language_configs.scorers import TransformerScorerConfig\n"
            "import pyarrow as pa, json\n"
            f"s = TransformerScorer('edu_score', TransformerScorerConfig(model={spec!r}, kind='regression'), 'fin_Latn')\n"
            "s.check()\n"
            "out = TransformerScores([s])(pa.table({'text': ['Hyvää huomenta', 'Kissa istuu puussa']}))\n"
            "print(json.dumps(out['edu_score'].to_pylist()))\n")
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_hub_models_load_through_the_hub_then_offline_from_the_cache(tiny, tmp_path):
    with FakeHub() as hub:
        hub.repos["org/tiny-edu"] = Repo(False, {"main": {p.name: p.read_bytes() for p in tiny.regression.iterdir()}})
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp_path / "hf"),
               "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
        online = _resolve_in_child("hf://org/tiny-edu", env)
        assert online.returncode == 0, online.stderr[-2000:]
        assert any("/org/tiny-edu/resolve/" in path for _, path, _ in hub.requests)
    expected = direct_outputs(tiny.regression, ["Hyvää huomenta", "Kissa istuu puussa"])[:, 0]
    np.testing.assert_allclose(json.loads(online.stdout), expected, atol=TOLERANCE)

    offline = _resolve_in_child("hf://org/tiny-edu", {**env, "HF_HUB_OFFLINE": "1"})  # the Hub is gone
    assert offline.returncode == 0, offline.stderr[-2000:]
    assert json.loads(offline.stdout) == json.loads(online.stdout)

    missing = _resolve_in_child("hf://org/tiny-edu", {**env, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "none")})
    assert missing.returncode != 0
    last = missing.stderr.strip().splitlines()[-1]
    assert "fin_Latn scorers.transformers.edu_score: cannot load hf://org/tiny-edu from the Hugging Face Hub" in last
    assert "connect to the Hub once" in last


def test_gpu_actor_pool_loads_each_model_once_per_actor(tiny, texts):
    """On a local Ray with a declared (fake) GPU resource, the forward passes run on the actor pool, one model load
    per actor however many buckets are scored, with the same scores as in-process inference."""
    import ray

    from curate.pipeline.execution.scorer_pool import ScorerPool

    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, configure_logging=False)
    try:
        edu = scorer("edu_score", model=str(tiny.regression), kind="regression")
        pool = ScorerPool.start(gpus=2)
        assert len(pool.actors) == 2
        block = TransformerScores([edu], pool=pool)

        @ray.remote(num_cpus=1)
        def bucket(block, texts):
            return block(pa.table({"text": texts}))["edu_score"].to_pylist()

        parts = [texts[i::4] for i in range(4)]
        remote = ray.get([bucket.remote(block, part) for part in parts])
        local = [score(TransformerScores([edu]), part)["edu_score"].to_pylist() for part in parts]
        for got, want in zip(remote, local):
            np.testing.assert_allclose(got, want, atol=TOLERANCE)
        # four buckets, two actors: each loaded the model once
        assert [loads.get(str(tiny.regression)) for loads in pool.loads()] == [1, 1]
    finally:
        ray.shutdown()


def test_gpu_only_scorer_without_gpus_stops_before_the_run(tiny):
    from curate.pipeline.execution.scorer_pool import plan_pool

    gpu_only = TransformerScores([scorer("edu_score", model=str(tiny.regression), kind="regression", device="gpu")])
    with pytest.raises(UserError, match="needs a GPU .device: gpu. but the cluster has none"):
        plan_pool([gpu_only], cluster_gpus=0, scorer_gpus=None)
    assert plan_pool([gpu_only], cluster_gpus=4, scorer_gpus=1) == 1
    auto = TransformerScores([scorer("edu_score", model=str(tiny.regression), kind="regression")])
    assert plan_pool([auto], cluster_gpus=0, scorer_gpus=None) == 0
    assert plan_pool([auto], cluster_gpus=2, scorer_gpus=0) == 0
    assert plan_pool([], cluster_gpus=2, scorer_gpus=None) == 0


def test_curate_run_writes_the_scores(tiny, mirror, tmp_path, monkeypatch):
    """A language config with two transformer scorers: the released shards carry scores equal to a direct forward
    pass on the released texts."""
    import yaml

    from curate.language_configs.schema import config_dirs

    config = yaml.safe_load((config_dirs()[-1] / "fin_Latn.yaml").read_text(encoding="utf-8"))
    config.setdefault("scorers", {})["transformers"] = {
        "edu_score": {"model": str(tiny.regression), "kind": "regression"},
        "register": {"model": str(tiny.multilabel), "kind": "multilabel", "threshold": 0.5}}
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "fin_Latn.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    output = tmp_path / "out"
    env = {**os.environ, "CURATE_LANGUAGE_CONFIGS": str(folder)}
    run = subprocess.run([sys.executable, "-m", "curate", "run", "--lang", "fin", "--snapshots", "CC-MAIN-2024-18",
                          "--source", str(mirror.root), "--lid", "ft176", "--output", str(output), "--buckets", "2",
                          "--cpus", "2"], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    table = pa.concat_tables(pq.read_table(p) for p in sorted((output / "fin_Latn" / "data").rglob("*.parquet")))
    assert table.num_rows > 10
    texts = table["text"].to_pylist()
    np.testing.assert_allclose(table["edu_score"].to_numpy(), direct_outputs(tiny.regression, texts)[:, 0],
                               atol=TOLERANCE)
    sigmoid = 1 / (1 + np.exp(-direct_outputs(tiny.multilabel, texts)))
    assert table["register"].to_pylist() == [[l for l, p in zip(LABELS["multilabel"], row) if p >= 0.5]
                                             for row in sigmoid]


def test_a_lost_scorer_actor_restarts_and_two_runs_share_one_ray_session(tiny, mirror, tmp_path, monkeypatch):
    """On a local Ray with two declared (fake) GPUs: a scorer actor killed mid-request in stage 3 is restarted and its
    request runs again (the run completes with the scores of a direct forward pass); a second `run()` in the same
    Ray session gets a pool of its own (the first run's was stopped) and releases the same rows and scores."""
    import ray
    import yaml

    from curate.language_configs.schema import config_dirs
    from curate.pipeline.execution.run import RunOptions, run

    config = yaml.safe_load((config_dirs()[-1] / "fin_Latn.yaml").read_text(encoding="utf-8"))
    config.setdefault("scorers", {})["transformers"] = {
        "edu_score": {"model": str(tiny.regression), "kind": "regression"}}
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "fin_Latn.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    fired = tmp_path / "fired"
    monkeypatch.setenv("CURATE_LANGUAGE_CONFIGS", str(folder))
    monkeypatch.setenv("CURATE_FAULT", "scorer_actor")  # an actor dies on its first request (once: the sentinel)
    monkeypatch.setenv("CURATE_FAULT_SENTINEL", str(fired))
    settings = dict(languages=["fin"], snapshots="CC-MAIN-2024-18", source=str(mirror.root), lid="ft176", buckets=2,
                    num_cpus=2)
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, configure_logging=False)
    try:
        first = run(RunOptions(output=str(tmp_path / "first"), **settings))
        assert fired.exists(), "an actor was killed"
        second = run(RunOptions(output=str(tmp_path / "second"), **settings))
    finally:
        ray.shutdown()
    tables = [pa.concat_tables(pq.read_table(p) for p in sorted((tmp_path / name / "fin_Latn" / "data").rglob("*.parquet")))
              for name in ("first", "second")]
    assert tables[0].num_rows > 10 and tables[0].equals(tables[1])
    assert first.languages["fin_Latn"]["released"] == second.languages["fin_Latn"]["released"]
    np.testing.assert_allclose(tables[0]["edu_score"].to_numpy(),
                               direct_outputs(tiny.regression, tables[0]["text"].to_pylist())[:, 0], atol=TOLERANCE)
