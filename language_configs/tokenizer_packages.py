"""The packages datatrove's word tokenizers import that curate does not install, and the extras that do.

Data about languages (which tokenizer needs what), read by the FineWeb2 importer's notes and by
`blocks/words.py`'s checks.
"""

from __future__ import annotations

from typing import NamedTuple


class Package(NamedTuple):
    """What a datatrove tokenizer imports, the PyPI package that provides it, and curate's extra that installs it."""

    module: str
    pip: str
    extra: str


TOKENIZER_PACKAGES = {
    "StanzaTokenizer": Package("stanza", "stanza", "stanza"),
    "IndicNLPTokenizer": Package("indicnlp", "indic-nlp-library", "indic"),
    "KiwiTokenizer": Package("kiwipiepy", "kiwipiepy", "korean"),
    "KhmerTokenizer": Package("khmernltk", "khmer-nltk", "khmer"),
    "LaoTokenizer": Package("laonlp", "laonlp", "lao"),
    "TibetanTokenizer": Package("botok", "botok", "tibetan"),
    "BurmeseTokenizer": Package("pyidaungsu", "pyidaungsu-numpy2", "burmese"),
}
# spaCy languages whose tokenizer imports a package spaCy does not install (spaCy's `vi` imports pyvi)
SPACY_PACKAGES = {"vi": Package("pyvi", "pyvi", "vietnamese")}
ALL_LANGUAGES_EXTRA = "all-languages"  # installs every package of TOKENIZER_PACKAGES and SPACY_PACKAGES
