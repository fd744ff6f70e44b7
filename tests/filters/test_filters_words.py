"""WordTokens: datatrove's tokenizer assignment by default, a proxy or the fast regex by name, clear errors."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from curate.errors import UserError
from curate.blocks.words import WordTokens, tokenizer_key


def test_default_is_datatrove_assignment(fin_config):
    assert tokenizer_key(fin_config) == "fin_Latn"
    assert tokenizer_key(dataclasses.replace(fin_config, word_tokenizer=None)) == "fin_Latn"


def test_proxy_and_fast_tokenizers(fin_config):
    proxy = dataclasses.replace(fin_config, word_tokenizer="datatrove:ekk_Latn")
    assert tokenizer_key(proxy) == "ekk_Latn"
    fast = dataclasses.replace(fin_config, word_tokenizer="unicode_words")
    batch = WordTokens(fast)(pa.table({"text": ["Kissa istuu.", "", None]}))
    assert batch["words"].to_pylist() == [["Kissa", "istuu", "."], [], []]


def test_tokenizer_mistakes_are_one_line(fin_config):
    with pytest.raises(UserError, match="word_tokenizer 'spacy' is not known"):
        WordTokens(dataclasses.replace(fin_config, word_tokenizer="spacy")).check()
    with pytest.raises(UserError, match="datatrove has no word tokenizer for 'xyz_Latn'"):
        WordTokens(dataclasses.replace(fin_config, word_tokenizer="datatrove:xyz_Latn")).check()
    chinese = dataclasses.replace(fin_config, language="cmn", script="Hani", word_tokenizer="unicode_words")
    with pytest.raises(UserError, match="Hani script has none"):
        WordTokens(chinese).check()
