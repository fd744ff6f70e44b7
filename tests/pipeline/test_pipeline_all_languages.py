"""Every language in one pass: `curate run --lang all --lid ft176` over a mirror of pages in 181 languages
(FLORES-200 half-0 text in real cc-sample100 templates, tests/all_languages_mirror.py) releases, for each
language lid.176 labels, what its own single-language run releases; a language with no page is a result (zero
in stats.json, a row in the report and the card, exit 0), and languages whose word tokenizer is not installed
are listed in one line (or skipped and named with `--skip-unavailable`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from all_languages_mirror import CRAWL, build_languages_mirror
from run_helpers import cli

from curate.blocks.words import missing_requirement
from curate.language_configs import load_language_config
from curate.language_configs.labels import ft176_labels
from curate.language_configs.schema import available_languages
from curate.pipeline.execution.run import RunOptions, run

SAMPLE = 10  # languages whose single-language run is compared with the run of all


@pytest.fixture(scope="module")
def languages_mirror(tmp_path_factory):
    return build_languages_mirror(tmp_path_factory.mktemp("languages-mirror"))


def run_args(mirror, output: Path, lang: str, *extra: str) -> list[str]:
    return ["run", "--lang", lang, "--lid", "ft176", "--snapshots", CRAWL, "--source", str(mirror.root),
            "--output", str(output), "--files-per-unit", "1", "--cpus", "2", *extra]


@pytest.fixture(scope="module")
def all_run(languages_mirror, tmp_path_factory):
    output = tmp_path_factory.mktemp("all")
    result = cli(*run_args(languages_mirror, output, "all", "--skip-unavailable"))
    return output, result


def released_ids(output: Path, code: str) -> set[str]:
    return {row for path in sorted((output / code / "data").rglob("*.parquet"))
            for row in pq.read_table(path, columns=["id"])["id"].to_pylist()}


def labelled() -> list[str]:
    known = set(ft176_labels().values())
    return [code for code in available_languages() if code in known]


@pytest.mark.slow
def test_all_runs_every_labelled_language_and_names_the_rest(all_run):
    output, result = all_run
    assert result.returncode == 0, result.stderr[-3000:]
    runnable = [c for c in labelled() if missing_requirement(load_language_config(c)) is None]
    skipped = [c for c in labelled() if c not in runnable]
    first = result.stderr.splitlines()[:3]
    assert first[0] == (f"--lang all with --lid ft176: the {len(labelled())} languages lid.176 labels; the other "
                        f"{len(available_languages()) - len(labelled()):,} need GlotLID (--lid glotlid)")
    assert first[1].startswith(f"skipped {len(skipped)} language(s) whose word tokenizer is not installed: ")
    assert all(code in first[1] for code in skipped)
    assert "use the default lid.176 threshold 0.65" in first[2] and "bos_Latn" in first[2]
    ran = json.loads((output / "run.json").read_text())
    assert ran["languages"] == runnable and sorted(ran["skipped"]) == skipped and ran["wall_seconds"] > 0
    report = (output / "report.html").read_text()
    for code in runnable:
        stats = json.loads((output / code / "stats.json").read_text())
        assert stats["released"]["documents"] == len(released_ids(output, code)), code
        assert (output / code / "README.md").is_file() and f'id="lang-{code}"' in report


@pytest.mark.slow
def test_each_language_releases_what_its_own_run_releases(all_run, languages_mirror, tmp_path_factory):
    output, _ = all_run
    with_pages = sorted(c for c in json.loads((output / "run.json").read_text())["languages"]
                        if c in languages_mirror.pages and released_ids(output, c))
    assert len(with_pages) >= 40  # 48 of the 69 lid.176 languages with pages and a tokenizer here
    sample = with_pages[::max(1, len(with_pages) // SAMPLE)][:SAMPLE]
    for code in sample:
        alone = tmp_path_factory.mktemp(f"alone-{code}")
        run(RunOptions(languages=[code], snapshots=CRAWL, source=str(languages_mirror.root), output=str(alone),
                       lid="ft176", files_per_unit=1, num_cpus=2))
        assert released_ids(alone, code) == released_ids(output, code), code


@pytest.mark.slow
def test_a_language_without_a_page_is_a_zero_row(all_run, languages_mirror):
    output, _ = all_run
    empty = [c for c in json.loads((output / "run.json").read_text())["languages"] if c not in languages_mirror.pages]
    assert len(empty) >= 30
    report = (output / "report.html").read_text()
    for code in empty[:5]:
        stats = json.loads((output / code / "stats.json").read_text())
        assert stats["released"]["documents"] == 0 and not released_ids(output, code), code
        name = load_language_config(code).name
        assert f"0 {name} documents" in (output / code / "README.md").read_text()
        assert f"<tr><td>{code}</td><td>{name}</td>" in report


def test_a_language_lid176_cannot_label_is_refused_with_the_others(languages_mirror, tmp_path):
    result = cli(*run_args(languages_mirror, tmp_path / "out", "fin,aai,abk"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == ("error: lid.176 (--lid ft176) cannot label 2 of the languages: "
                                                      "aai_Latn, abk_Cyrl; run them with --lid glotlid")


def test_missing_word_tokenizers_are_one_line(languages_mirror, tmp_path):
    missing = [c for c in labelled() if missing_requirement(load_language_config(c)) is not None]
    assert missing, "the test install (the dev and train extras) has no word-tokenizer extra such as stanza"
    result = cli(*run_args(languages_mirror, tmp_path / "out", f"fin,{missing[0]}"))
    assert result.returncode == 2
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("error: 1 language(s) need what curate does not install: ") and missing[0] in line
    assert "pip install 'curate-corpus[all-languages]'" in line and "--skip-unavailable" in line
