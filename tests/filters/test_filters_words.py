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


def test_varieties_with_one_assignment_share_one_tokenizer():
    """datatrove gives spaCy's `ms` to Malay and Iloko, `xx` to two dozen varieties: each is loaded once per
    process, and tokenizes as datatrove's own tokenizer for each variety does."""
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    from curate.blocks.words import datatrove_assignment, load_tokenizer

    assert datatrove_assignment("zsm_Latn") == datatrove_assignment("ilo_Latn") == ("SpaCyTokenizer", "ms")
    assert load_tokenizer("zsm_Latn") is load_tokenizer("ilo_Latn")
    assert load_tokenizer("zsm_Latn") is not load_tokenizer("fin_Latn")
    text = "Saya suka makan nasi-lemak di K.L. pada 2024, bukan?"
    for key in ("zsm_Latn", "ilo_Latn"):
        assert load_tokenizer(key)([text]) == [load_word_tokenizer(key).word_tokenize(text)]


def test_check_loads_nothing_and_a_failed_first_load_is_one_line(fin_config, monkeypatch):
    """The run's check of every language looks for packages and models without loading a tokenizer (seconds a
    language); a tokenizer that cannot load fails its first use with one line naming the language."""
    from curate.blocks import words

    norwegian = dataclasses.replace(fin_config, language="nob", script="Latn")
    assigned = dict(words._ASSIGNED)
    WordTokens(norwegian).check()
    assert words._ASSIGNED == assigned

    def broken(key):
        def tokenize(texts):
            raise OSError(f"[E050] Can't find the dictionary for {key}")
        return tokenize

    monkeypatch.setattr(words, "_load_assigned", broken)
    monkeypatch.setattr(words, "_ASSIGNED", {})
    words.load_tokenizer.cache_clear()
    try:
        with pytest.raises(UserError, match=r"^the word tokenizer for nob_Latn cannot run: \[E050\]") as failed:
            WordTokens(norwegian)(pa.table({"text": ["Katten sitter."]}))
        assert "\n" not in str(failed.value)
    finally:
        words.load_tokenizer.cache_clear()


def test_a_spacy_tokenizer_loads_without_importing_torch():
    """thinc, which spaCy imports, imports torch when it is installed (~3 s of each worker's first Finnish page);
    the tokenizer is loaded with torch hidden, gives datatrove's tokens, and torch still imports afterwards."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from curate.blocks.words import load_tokenizer\n"
        "from datatrove.utils.word_tokenizers import load_word_tokenizer\n"
        "text = 'Kissa istuu puussa, eikä se tule alas.'\n"
        "tokens = load_tokenizer('fin_Latn')([text])[0]\n"
        "print('torch' in sys.modules, tokens == load_word_tokenizer('fin_Latn').word_tokenize(text), len(tokens))\n"
        "import torch\n"
        "print(int(torch.ones(3).sum()))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True", "9", "3"]
