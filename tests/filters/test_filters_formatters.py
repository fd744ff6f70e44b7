"""Formatters: FTFY, PII and table-artefact cleanup give FineWeb2's (datatrove's) output and are switchable."""

from __future__ import annotations

import dataclasses

import pyarrow as pa

from curate.blocks.formatters import FixText, RemoveTableArtifacts, ReplacePii
from curate.blocks.quality import formatter_blocks
from curate.language_configs.filters import FixTextConfig, FormattersConfig, PiiConfig, TableArtifactsConfig


def formatted(block, texts):
    return block(pa.table({"text": pa.array(texts, pa.string())}))["text"].to_pylist()


MOJIBAKE = ["HyvÃ¤Ã¤ pÃ¤ivÃ¤Ã¤!", "Se maksoi 5 â‚¬ ja â€œhintaâ€\x9d oli hyvÃ¤.", "“Kaarevat” lainaukset pysyvät.",
            "ｆｕｌｌ width and ﬁ ligature stay", "Tavallinen teksti.", "", None]


def test_fix_text_equals_datatrove_ftfy():
    from datatrove.pipeline.formatters import FTFYFormatter

    ours = formatted(FixText(FixTextConfig()), MOJIBAKE)
    reference = FTFYFormatter()
    assert ours[:-2] == [reference.format(t) for t in MOJIBAKE[:-2]]
    assert ours[0] == "Hyvää päivää!"
    assert ours[1] == "Se maksoi 5 € ja “hinta” oli hyvä."
    assert ours[2:5] == MOJIBAKE[2:5]  # quotes, widths and ligatures are the text's own
    assert ours[5:] == ["", None]


def test_fix_text_options():
    block = FixText(FixTextConfig(uncurl_quotes=True, fix_latin_ligatures=True))
    assert formatted(block, ["“Kaarevat” ﬁ"]) == ['"Kaarevat" fi']


PII_TEXT = ("Ota yhteyttä matti.meikalainen@yritys.fi tai info@yritys.fi, palvelin 8.8.8.8 "
            "ja sisäverkko 192.168.1.1 ja 127.0.0.1; myös 1.1.1.1.")


def test_pii_replaces_emails_and_public_ips_only():
    out = formatted(ReplacePii(PiiConfig()), [PII_TEXT, PII_TEXT])
    expected = ("Ota yhteyttä email@example.com tai firstname.lastname@example.org, palvelin 22.214.171.124 "
                "ja sisäverkko 192.168.1.1 ja 127.0.0.1; myös 126.96.36.199.")
    assert out == [expected, expected]  # replacements restart in every document


def test_pii_matches_datatrove_patterns():
    from datatrove.pipeline.formatters import PIIFormatter

    assert formatted(ReplacePii(PiiConfig()), [PII_TEXT]) == [PIIFormatter().format(PII_TEXT)]


def test_pii_switches():
    only_ips = ReplacePii(PiiConfig(replace_emails=False, ip_replacements=["0.0.0.0"]))
    assert formatted(only_ips, ["a@b.fi 8.8.8.8"]) == ["a@b.fi 0.0.0.0"]


TABLE = "Otsikko\n| |\n|\n||  |\nRivi yksi | sarake\n\nRivi kaksi\n|"


def test_table_artifacts_equal_datatrove_symbol_lines():
    from datatrove.pipeline.formatters import SymbolLinesFormatter

    ours = formatted(RemoveTableArtifacts(TableArtifactsConfig()), [TABLE])
    assert ours == [SymbolLinesFormatter(symbols_to_remove=["|"], replace_char="\n").format(TABLE)]
    assert ours == ["Otsikko\n\n\nRivi yksi | sarake\n\nRivi kaksi\n\n"]
    joined = formatted(RemoveTableArtifacts(TableArtifactsConfig(replace_with="")), [TABLE])
    assert joined == ["Otsikko\nRivi yksi | sarake\n\nRivi kaksi"]


def test_formatters_are_switchable(fin_config):
    assert [b.name for b in formatter_blocks(fin_config)] == ["fix_text", "pii", "table_artifacts"]
    none = dataclasses.replace(fin_config, formatters=FormattersConfig(fix_text=None, pii=None, table_artifacts=None))
    assert formatter_blocks(none) == []
    only_pii = dataclasses.replace(fin_config, formatters=FormattersConfig(fix_text=None, table_artifacts=None))
    assert [b.name for b in formatter_blocks(only_pii)] == ["pii"]
