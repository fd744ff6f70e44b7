"""`curate train --eval-text X` / `curate ablate --eval X`: one line when a source was not decontaminated against X."""

from __future__ import annotations

import json

from curate.blocks.evaluation_sets import load_set
from curate.trainer.contamination import decontamination_notes, text_fingerprint


def test_a_note_names_the_source_and_the_text_it_was_not_decontaminated_against(shared, tmp_path):
    finnish = shared / "data/text/flores200/fin_Latn.txt"
    english = shared / "data/text/flores200/eng_Latn.txt"
    flores = load_set(str(finnish))
    assert text_fingerprint(finnish.read_text(encoding="utf-8").splitlines()) == flores.fingerprint
    language = tmp_path / "out" / "fin_Latn"
    (language / "data").mkdir(parents=True)
    (language / "stats.json").write_text(json.dumps(
        {"language": "fin_Latn", "decontamination": {"sets": {"fin_Latn": {"fingerprint": flores.fingerprint}}}}))
    plain = tmp_path / "replay.parquet"  # not a curate output: nothing to say
    notes = decontamination_notes([("fin_Latn", str(language)), ("shard", str(language / "data" / "x.parquet")),
                                   ("replay", str(plain))], [str(finnish), str(english)])
    assert notes == [f"note: training source {name} was not decontaminated against {english} (its stats.json lists "
                     f"fin_Latn): the held-out bits per byte may be optimistic; rerun curate run with "
                     f"--decontaminate {english}" for name in ("fin_Latn", "shard")]
