"""`--mix` parsing and TrainConfig validation (torch-free)."""

from __future__ import annotations

import pytest

from curate.trainer.config import ConfigError, SourceSpec, TrainConfig, parse_mix


def test_parse_mix_paths_shares_and_names() -> None:
    specs = parse_mix("out/fin_Latn=0.75,replay.parquet=0.25")
    assert specs == [SourceSpec("out/fin_Latn", 0.75), SourceSpec("replay.parquet", 0.25)]
    assert [s.name for s in specs] == ["fin_Latn", "replay"]
    assert parse_mix("out/fin_Latn/") == [SourceSpec("out/fin_Latn/", 1.0)]
    assert parse_mix("a=b=0.5,c=0.5")[0].path == "a=b"  # the share follows the last '='


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("a=0.5,b", "has no share"),
    ("a=x", "not a number"),
    ("a=0.6,b=0.6", "sum to 1.2"),
    ("a=0,b=1", "(0, 1]"),
    ("x/a=0.5,y/a=0.5", "twice"),
])
def test_parse_mix_rejects_with_one_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        parse_mix(text)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_validate_explains_what_is_missing() -> None:
    with pytest.raises(ConfigError, match="no tokenizer"):
        TrainConfig(mix="a.parquet", model_config="tiny").validate()
    with pytest.raises(ConfigError, match="exactly one of --model"):
        TrainConfig(mix="a.parquet", tokenizer="t").validate()
    with pytest.raises(ConfigError, match="neither a preset"):
        TrainConfig(mix="a.parquet", tokenizer="t", model_config="huge").validate()
    with pytest.raises(ConfigError, match="exceed --steps"):
        TrainConfig(mix="a.parquet", tokenizer="t", model_config="tiny", schedule="wsd",
                    steps=10, warmup_steps=5, decay_steps=6).validate()
    config = TrainConfig(mix="a.parquet", model="some/checkpoint")
    config.validate()
    assert config.tokenizer == "some/checkpoint"  # the checkpoint's tokenizer by default


def test_config_round_trips_through_dict() -> None:
    config = TrainConfig(mix="a=0.25,b=0.75", tokenizer="t", model_config="tiny", betas=[0.9, 0.99])
    again = TrainConfig.from_dict(config.to_dict())
    assert again == config and again.sources[1] == SourceSpec("b", 0.75)
    with pytest.raises(ConfigError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({**config.to_dict(), "learning_rate": 1.0})
