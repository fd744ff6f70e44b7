"""Word tokens, computed once per document in stage 1 and shared by the filter statistics and MinHash.

The tokenizer follows the config's `word_tokenizer`:

- `datatrove` (or null): datatrove's tokenizer assignment for the config's language variety (`fin_Latn` →
  spaCy `fi`, `cmn_Hani` → spaCy + jieba, `jpn_Jpan` → spaCy + SudachiPy, `tha_Thai` → PyThaiNLP, …; more
  than 2,000 varieties). This is what FineWeb2 used, so statistics and keep/drop decisions agree with
  datatrove's filters.
- `datatrove:<code>`: datatrove's assignment for another variety (a proxy, e.g. `datatrove:fin_Latn` for a
  Finnic language datatrove has no tokenizer for).
- Some of datatrove's tokenizers need a package curate does not install (`TOKENIZER_PACKAGES`: Stanza,
  IndicNLP, Kiwi, Khmer, Lao, Tibetan, Burmese): each is an optional extra (`pip install
  'curate-corpus[stanza]'`), and `check()` stops the run with one line naming it when it is missing. Stanza's
  model is a model reference like any other: looked up in Stanza's resources folder (`stanza_model`), never
  downloaded during a run; `check()` says in one line how to fetch it when it is not there. No language is ever
  switched to another tokenizer: a related variety's (`datatrove:<code>`) is the user's documented choice.
- `unicode_words`: one regular expression that imitates spaCy's tokens on space-separated scripts (see
  `_UNICODE_WORD`). Over 100× faster than spaCy; on Finnish it gives 0.1 % fewer tokens and the same
  keep/drop decision for 99.6 % of documents (`benchmarks/filters.py` measures both), so a few documents near
  a threshold are decided differently from datatrove. Useless for scripts written without spaces (Han,
  Japanese, Thai, …), which `check()` refuses.
"""

from __future__ import annotations

import importlib.util
import os
import re
import sys
from dataclasses import dataclass
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path

import pyarrow as pa

from curate.errors import UserError
from curate.blocks.base import Block, set_column
from curate.language_configs.schema import LanguageConfig
from curate.language_configs.tokenizer_packages import (ALL_LANGUAGES_EXTRA, SPACY_PACKAGES, TOKENIZER_PACKAGES,
                                                      Package)

WORDS = "words"
FAST_TOKENIZER = "unicode_words"
UNSPACED_SCRIPTS = frozenset({"Hani", "Hans", "Hant", "Jpan", "Thai", "Laoo", "Khmr", "Mymr", "Tibt", "Kore"})

# Tuned to reproduce spaCy's tokens on Finnish web-like text: a URL; an @handle; a word (letters, digits,
# marks, connectors) with inner - ' ’ : . , / joins (`e-mail`, `2,5`, `29.03`, `km/h`), an optional leading
# hyphen (`-yhtiön`) and trailing hyphen (`kulku-`); a run of dots or of hyphens; any other single symbol.
_UNICODE_WORD = re.compile(r"https?://\S+|@\w+|-?\w+(?:[-'’:.,/]\w+)*-?|\.+|-+|[^\w\s]")


STANZA_DIR_ENV = "STANZA_RESOURCES_DIR"


def stanza_resources_dir() -> Path:
    """Stanza's own model folder: `$STANZA_RESOURCES_DIR`, else `~/stanza_resources` (as Stanza resolves it)."""
    return Path(os.environ.get(STANZA_DIR_ENV) or Path.home() / "stanza_resources").expanduser()


def stanza_model(language: str, where: str) -> Path:
    """The folder of Stanza's tokenize model for `language` (`be`), looked up, never downloaded: a `UserError`
    line says how to fetch it once when it is not there."""
    root = stanza_resources_dir()
    folder = root / language / "tokenize"
    if (root / "resources.json").is_file() and any(folder.glob("*.pt")):
        return folder
    raise UserError(
        f"{where}: Stanza's tokenize model for {language!r} is not in {root} (${STANZA_DIR_ENV}); fetch it once "
        f"where there is network: python -c \"import stanza; stanza.download('{language}', processors='tokenize')\" "
        f"(and copy {root} to nodes without network)"
    )


def datatrove_assignment(key: str) -> tuple[str, str] | None:
    """datatrove's tokenizer for a variety (`bel_Cyrl` → (`StanzaTokenizer`, `be`)); None when it assigns none."""
    from curate.language_configs.fineweb2 import tokenizer_assignment

    row = tokenizer_assignment().get(key)
    return (row["type"], row["tok_code"]) if row and row["type"] else None


def required_package(key: str) -> Package | None:
    """The package datatrove's tokenizer for `key` needs beyond curate's install, if any."""
    kind, language = datatrove_assignment(key) or ("", "")
    if kind == "SpaCyTokenizer":
        return SPACY_PACKAGES.get(language)
    return TOKENIZER_PACKAGES.get(kind)


def missing_requirement(config: LanguageConfig) -> str | None:
    """What the language's word tokenizer lacks here, in a few words (the pip package, or Stanza's model); None
    when it has everything. Checks all languages of a run at once, before any work (`graph.build_graph`)."""
    key = tokenizer_key(config)
    if key == FAST_TOKENIZER:
        return None
    package = required_package(key)
    if package and importlib.util.find_spec(package.module) is None:
        return package.pip
    kind, language = datatrove_assignment(key) or ("", "")
    if kind == "StanzaTokenizer":
        try:
            stanza_model(language, key)
        except UserError:
            return f"Stanza's {language!r} tokenize model"
    return None


def check_requirements(key: str) -> None:
    """What datatrove's tokenizer for `key` needs beyond curate's install: its package, and Stanza's model."""
    kind, language = datatrove_assignment(key) or ("", "")
    package = required_package(key)
    if package and importlib.util.find_spec(package.module) is None:
        raise UserError(
            f"the word tokenizer for {key} needs a package curate does not install: datatrove's {kind}({language}) "
            f"imports {package.module}; pip install 'curate-corpus[{package.extra}]' (the {package.pip} package), "
            f"or set word_tokenizer: datatrove:<code> to a related variety's tokenizer"
        )
    if kind == "StanzaTokenizer":
        stanza_model(language, f"the word tokenizer for {key}")


def unicode_words(text: str) -> list[str]:
    """The fast tokenizer: see the module docstring."""
    return _UNICODE_WORD.findall(text)


def tokenizer_key(config: LanguageConfig) -> str:
    """What the config's `word_tokenizer` names: `unicode_words`, or the datatrove assignment key to use."""
    choice = config.word_tokenizer
    if choice in (None, "datatrove"):
        return config.code
    if choice == FAST_TOKENIZER:
        return FAST_TOKENIZER
    if choice.startswith("datatrove:") and len(choice) > len("datatrove:"):
        return choice.removeprefix("datatrove:")
    raise UserError(
        f"{config.code}: word_tokenizer {choice!r} is not known: use datatrove (the default), "
        f"datatrove:<code> (another variety's tokenizer) or {FAST_TOKENIZER}"
    )


@cache
def load_tokenizer(key: str) -> Callable[[list[str]], list[list[str]]]:
    """A function texts → their token lists, built once per worker process for each tokenizer datatrove assigns
    (the 24 varieties it gives spaCy's `xx` share one)."""
    if key == FAST_TOKENIZER:
        return lambda texts: [unicode_words(text) for text in texts]
    check_assigned(key)
    assignment = datatrove_assignment(key)
    if assignment not in _ASSIGNED:
        tokenize = _load_assigned(key)
        try:
            tokenize(["test"])
        except (ImportError, OSError) as error:  # a missing dictionary or package surfaces on first use
            raise UserError(f"the word tokenizer for {key} cannot run: {error}") from None
        _ASSIGNED[assignment] = tokenize
    return _ASSIGNED[assignment]


def check_assigned(key: str) -> None:
    """That datatrove assigns `key` a tokenizer and this machine has what it needs (`check_requirements`)."""
    from datatrove.utils.word_tokenizers import load_tokenizer_assignments

    if key not in load_tokenizer_assignments():
        raise UserError(
            f"datatrove has no word tokenizer for {key!r}: set `word_tokenizer: datatrove:<code>` to a related "
            f"variety's, or `word_tokenizer: {FAST_TOKENIZER}` for a space-separated script"
        )
    check_requirements(key)


_ASSIGNED: dict[tuple[str, str] | None, Callable[[list[str]], list[list[str]]]] = {}  # by (kind, language)


def _load_assigned(key: str) -> Callable[[list[str]], list[list[str]]]:
    """datatrove's tokenizer for `key`, loaded as datatrove loads it."""
    from datatrove.utils.word_tokenizers import SpaCyTokenizer, load_word_tokenizer

    _import_thinc_without_torch()
    try:
        tokenizer = load_word_tokenizer(key)
    except ImportError as error:
        raise UserError(f"the word tokenizer for {key} needs a package: {error}") from None
    if type(tokenizer).__name__ == "StanzaTokenizer":
        tokenizer._tokenizer = _stanza_pipeline(tokenizer.language, key)  # datatrove's would download a missing model
    if isinstance(tokenizer, SpaCyTokenizer) and tokenizer.language != "ja":  # Japanese is chunked by datatrove
        return partial(_spacy_tokens, tokenizer)
    return lambda texts: [tokenizer.word_tokenize(text) for text in texts]


def _import_thinc_without_torch() -> None:
    """Import thinc, which spaCy imports, with torch hidden: thinc imports torch when it is installed (~3 s of
    a worker's first spaCy tokenizer, 5.0 s → 1.4 s) and spaCy's tokenizers never use it. A process that has
    thinc or torch already is left as it is; torch imports normally afterwards (Stanza, transformer scorers)."""
    if "thinc" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # `import torch` raises ImportError: has_torch False
    try:
        import thinc  # noqa: F401
    finally:
        del sys.modules["torch"]


def _stanza_pipeline(language: str, key: str):
    """Stanza's tokenize pipeline as datatrove builds it, from the resources folder only (no download)."""
    import stanza

    try:
        return stanza.Pipeline(language, dir=str(stanza_resources_dir()), processors="tokenize",
                               download_method=None, logging_level="WARN")
    except Exception as error:  # noqa: BLE001 - a missing or broken model file becomes one line
        from curate.blocks.model_files import first_line

        raise UserError(f"the word tokenizer for {key}: Stanza cannot load its {language!r} tokenize model from "
                        f"{stanza_resources_dir()} ({type(error).__name__}: {first_line(error)}); fetch it again "
                        f"with stanza.download('{language}', processors='tokenize')") from None


def _spacy_tokens(tokenizer, texts: list[str]) -> list[list[str]]:
    """datatrove's `SpaCyTokenizer.word_tokenize` without running the sentencizer it never reads for words: the
    same tokens (spaCy pipes do not re-tokenize), from spaCy's tokenizer alone, a batch at a time."""
    from datatrove.utils.word_tokenizers import strip_strings

    nlp = tokenizer.tokenizer
    try:
        with nlp.memory_zone():
            return [strip_strings([token.text for token in doc]) for doc in nlp.tokenizer.pipe(texts, batch_size=64)]
    except Exception:  # noqa: BLE001 - datatrove's own path has its workaround for texts that break spaCy
        return [tokenizer.word_tokenize(text) for text in texts]


@dataclass
class WordTokens(Block):
    """Adds `words` (`list<string>`): the word tokens of `text`, once per document, for every later stage-1
    block (filter statistics, MinHash). A transient column: the runner does not store it."""

    config: LanguageConfig
    name = "words"
    reads = ("text",)
    writes = (WORDS,)

    def fingerprint(self) -> object:
        return {"block": self.name, "tokenizer": tokenizer_key(self.config)}

    def check(self) -> None:
        """The tokenizer's package and model files, without loading it (seconds a language): it loads on first
        use in each worker, where a load that fails stops the run with one line."""
        key = tokenizer_key(self.config)
        if key != FAST_TOKENIZER:
            check_assigned(key)
        elif self.config.script in UNSPACED_SCRIPTS:
            raise UserError(
                f"{self.config.code}: word_tokenizer {FAST_TOKENIZER} needs spaces between words, "
                f"{self.config.script} script has none; use datatrove"
            )

    def warm(self) -> None:
        load_tokenizer(tokenizer_key(self.config))

    def provenance(self) -> dict[str, str]:
        from importlib.metadata import PackageNotFoundError, version

        key = tokenizer_key(self.config)
        versions = {f"word_tokenizer:{self.config.code}": key}
        if key != FAST_TOKENIZER:
            kind, language = datatrove_assignment(key) or ("", "")
            extra = (TOKENIZER_PACKAGES[kind].pip,) if kind in TOKENIZER_PACKAGES else ()
            if kind == "StanzaTokenizer":  # the model files the run reads, by content
                from curate.blocks.lid import file_sha256

                models = sorted(stanza_model(language, f"the word tokenizer for {key}").glob("*.pt"))
                versions[f"stanza_model:{language}"] = ",".join(f"{m.name}:{file_sha256(str(m))}" for m in models)
            for package in ("datatrove", "spacy", *extra):
                try:
                    versions[f"{package}_version"] = version(package)
                except PackageNotFoundError:
                    pass
        return versions

    def apply(self, batch: pa.Table) -> pa.Table:
        tokenize = load_tokenizer(tokenizer_key(self.config))
        words = tokenize([text or "" for text in batch["text"].to_pylist()])
        return set_column(batch, WORDS, pa.array(words, type=pa.list_(pa.string())))
