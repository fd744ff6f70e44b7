"""Reading distribution files and writing weights files; errors a user can make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from weights_json import weights_from_json

from curate.rebalancing import (
    distributions_from_json,
    read_distributions,
    rehydration_command,
    weights_to_json,
)

PLANTED = {
    "cluster_sizes": [1, 2, 3, 4, 5, 6, 7],
    "cluster_removal_rates": [60.0, 55.0, 45.0, 40.0, 30.0, 35.0, 50.0],
    "cluster_post_filtering_doc_counts": [40, 45, 55, 60, 70, 65, 50],
    "tail_threshold": 8,
    "tail_removal_rate": 85.0,
    "tail_post_filtering_doc_counts": 15,
    "global_removal_rate": 50.0,
}


def test_single_language_file_is_named_by_its_stem(tmp_path: Path) -> None:
    path = tmp_path / "xyz_Latn.json"
    path.write_text(json.dumps(PLANTED))
    assert list(read_distributions(path)) == ["xyz_Latn"]
    assert rehydration_command(str(path), 5) == weights_to_json(
        {"xyz_Latn": {1: 1, 3: 2, 4: 3, 7: 1}}
    )


def test_file_mapping_languages_to_distributions(tmp_path: Path) -> None:
    path = tmp_path / "all.json"
    path.write_text(json.dumps({"aaa_Latn": PLANTED, "bbb_Cyrl": PLANTED}))
    weights = weights_from_json(rehydration_command(path, 5))
    assert weights == {"aaa_Latn": {1: 1, 3: 2, 4: 3, 7: 1}, "bbb_Cyrl": {1: 1, 3: 2, 4: 3, 7: 1}}


def test_weights_format_is_fineweb2s() -> None:
    text = weights_to_json({"fin_Latn": {1: 1, 3: 3}})
    assert text == '{\n "fin_Latn": {\n  "1": 1,\n  "3": 3\n }\n}'


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"cluster_sizes": [1]}', "missing cluster_removal_rates"),
    ],
)
def test_bad_distribution_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad_Latn.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=message) as raised:
        read_distributions(path)
    assert str(path) in str(raised.value)


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        rehydration_command(tmp_path / "nope.json", 10)
    with pytest.raises(ValueError, match=r"no \*\.json"):
        rehydration_command(tmp_path, 10)
    with pytest.raises(ValueError, match="no distribution files"):
        rehydration_command([], 10)


def test_a_language_given_twice_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "fin_Latn.json").write_text(json.dumps(PLANTED))
    with pytest.raises(ValueError, match="more than one"):
        read_distributions([tmp_path / "a", tmp_path / "b"])


def test_distributions_from_json_text() -> None:
    parsed = distributions_from_json(json.dumps(PLANTED), language="xyz_Latn")
    assert parsed["xyz_Latn"].tail_threshold == 8
