"""LR schedules: values at the phase boundaries, as a pure function of the step."""

from __future__ import annotations

import math

import pytest

from curate.trainer.config import TrainConfig
from curate.trainer.schedule import lr_at


def config(**kwargs) -> TrainConfig:
    return TrainConfig(mix="a.parquet", tokenizer="t", model_config="tiny", steps=100, lr=1.0,
                       min_lr_ratio=0.1, warmup_steps=10, **kwargs)


def test_cosine_rewarms_then_decays_to_the_minimum() -> None:
    c = config(schedule="cosine")
    assert lr_at(0, c) == pytest.approx(0.1) and lr_at(9, c) == pytest.approx(1.0)
    assert lr_at(10, c) == pytest.approx(1.0)
    midpoint = 10 + (99 - 10) / 2
    assert lr_at(int(midpoint), c) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 44 / 89)))
    assert lr_at(99, c) == pytest.approx(0.1)
    values = [lr_at(s, c) for s in range(10, 100)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_wsd_is_stable_then_decays_linearly() -> None:
    c = config(schedule="wsd", decay_steps=20)
    assert [lr_at(s, c) for s in (10, 50, 79)] == [1.0, 1.0, 1.0]
    assert lr_at(80, c) == pytest.approx(1.0 - 0.9 / 20)
    assert lr_at(89, c) == pytest.approx(1.0 - 0.9 * 10 / 20)
    assert lr_at(99, c) == pytest.approx(0.1)


def test_infinite_cools_down_holds_then_anneals() -> None:
    c = config(schedule="infinite", cooldown_steps=20, constant_lr_ratio=0.5, decay_steps=10)
    assert lr_at(9, c) == pytest.approx(1.0)
    assert 0.5 < lr_at(15, c) < 1.0
    assert lr_at(29, c) == pytest.approx(0.5)  # end of the cool-down
    assert [lr_at(s, c) for s in (30, 60, 89)] == [0.5, 0.5, 0.5]  # constant, "infinite"
    assert lr_at(94, c) == pytest.approx(0.5 - 0.4 * 5 / 10)
    assert lr_at(99, c) == pytest.approx(0.1)


def test_schedule_depends_on_the_step_only() -> None:
    c = config(schedule="infinite", cooldown_steps=20, constant_lr_ratio=0.5)
    forward = [lr_at(s, c) for s in range(100)]
    assert [lr_at(s, c) for s in reversed(range(100))] == forward[::-1]
