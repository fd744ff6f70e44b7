"""The `scorers` section: score columns added in stage 3 (after the formatters), each with an optional threshold.

```yaml
scorers:
  web_docs: {min_score: null}     # model-free 0–10 score (HPLT's Web Docs Scorer), on by default
  quality: null                   # or {model: path-or-hf://owner/repo/file.bin, label: __label__hq, min_score: null}
  toxicity: {words: null, max_share: null, classifier: null, adult_domains: true}
  perplexity: null                # or {model: path-or-hf://owner/repo/file.binary, max_perplexity: null}
  transformers:                   # any number of Hugging Face models, by the name of their score column
    edu_score: {model: hf://HuggingFaceFW/fineweb-edu-classifier, kind: regression, min_score: null}
    register: {model: hf://TurkuNLP/web-register-classification-multilingual, kind: multilabel, threshold: 0.4}
    hq_score: {encoder: hf://FacebookAI/xlm-roberta-base, head: hf://owner/repo/head.safetensors, pooling: mean}
```

A score is always kept as a column (`web_docs_score`, `quality_score`, `toxicity_share`, `toxicity_count`,
`toxicity_score`, `adult_domain`, `perplexity`), so the output can be re-filtered; a threshold, when set, also
drops documents with `drop_reason = "<block>.<rule>"`. `null` switches a scorer (or a threshold) off. No model
ships with curate, so model-based scorers are off by default; a configured model that cannot be had stops the
run before it starts.

Model and list locations: a local path (relative paths are looked up beside the language configs, then from the
working directory), `hf://owner/repo/path/in/repo` (optionally `hf://owner/repo@revision/…`, or
`hf://datasets/owner/repo/…`), downloaded once into the Hugging Face cache, or, for word lists, an `http(s)://`
URL, downloaded once into `$CURATE_CACHE` (default `~/.cache/curate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from curate.language_configs.validate import ConfigError


def _check_range(section: str, name: str, value: float | None, low: float, high: float | None) -> None:
    if value is None:
        return
    if value < low or (high is not None and value > high):
        bound = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise ConfigError(f"scorers.{section}.{name}: {bound} (null switches it off), got {value}")


@dataclass(frozen=True)
class WebDocsConfig:
    """A model-free 0–10 score for every language, after HPLT's Web Docs Scorer (formula in
    `blocks/score_web_docs.py`). The three `typical_*_percent` values adapt its bands to the language, as HPLT's
    per-language medians do; the defaults are the reference language's (Spanish), which suit languages in Latin,
    Cyrillic, Greek and Arabic script."""

    min_score: float | None = None
    """Drop documents scoring below this (0–10; HPLT calls 5+ good). Rule `web_docs.score_low`."""
    typical_punctuation_percent: float = 2.4
    """Median punctuation characters per 100 letter characters in good documents of the language (HPLT's median:
    fin 2.7, jpn 6.5, zho 9.9, tha 1.2). Scales the punctuation bands; segment-length bands scale inversely."""
    typical_digit_percent: float = 1.3
    """Median digits per 100 letter characters in good documents of the language (HPLT's median: fin 1.4)."""
    typical_bad_char_percent: float = 0.3
    """Median symbol characters (emoji, `#`, `|`, `@`, …) per 100 letter characters in good documents of the
    language (HPLT's median: fin 0.3)."""

    def __post_init__(self) -> None:
        _check_range("web_docs", "min_score", self.min_score, 0.0, 10.0)
        for name in ("typical_punctuation_percent", "typical_digit_percent", "typical_bad_char_percent"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"scorers.web_docs.{name}: a positive percentage, got {getattr(self, name)}")


@dataclass(frozen=True)
class QualityConfig:
    """A fastText quality classifier (DCLM / FineWeb-Edu style): `quality_score` is the probability of `label`.
    Train one with `curate train-classifier`."""

    model: str
    """The fastText `.bin`: a path or `hf://owner/repo/file.bin`."""
    label: str = "__label__hq"
    """The label whose probability is the score (the "high quality" label of the model)."""
    min_score: float | None = None
    """Drop documents whose probability is below this (0–1). Rule `quality.score_low`."""

    def __post_init__(self) -> None:
        _check_range("quality", "min_score", self.min_score, 0.0, 1.0)
        if not self.label:
            raise ConfigError("scorers.quality.label: the model's label, e.g. __label__hq")


@dataclass(frozen=True)
class ToxicityClassifierConfig:
    """A fastText toxicity classifier: `toxicity_score` is the probability of `label`."""

    model: str
    """The fastText `.bin`: a path or `hf://owner/repo/file.bin`."""
    label: str = "__label__toxic"
    """The label whose probability is the score."""
    max_score: float | None = None
    """Drop documents whose probability is above this (0–1). Rule `toxicity_classifier.score_high`."""

    def __post_init__(self) -> None:
        _check_range("toxicity.classifier", "max_score", self.max_score, 0.0, 1.0)
        if not self.label:
            raise ConfigError("scorers.toxicity.classifier.label: the model's label, e.g. __label__toxic")


@dataclass(frozen=True)
class ToxicityConfig:
    """Toxicity signals: a word list (`toxicity_share`, `toxicity_count`), an optional classifier
    (`toxicity_score`) and the adult-domain check of the URL (`adult_domain`)."""

    words: str | None = None
    """The language's list of flagged words and phrases, one a line (LDNOOBW format): a path, `hf://…` or an
    `http(s)://` URL. null: no lexicon score."""
    max_share: float | None = None
    """Drop documents whose share of flagged words is above this (0–1; needs `words`). Rule
    `toxicity.share_high`."""
    classifier: ToxicityClassifierConfig | None = None
    """A fastText toxicity model; null: none."""
    adult_domains: bool = True
    """Add `adult_domain`: the URL's domain is on the UT1 adult list (the URL filter's list; with the URL filter on,
    such documents are already dropped in stage 1)."""

    def __post_init__(self) -> None:
        _check_range("toxicity", "max_share", self.max_share, 0.0, 1.0)
        if self.max_share is not None and self.words is None:
            raise ConfigError("scorers.toxicity.max_share is set but words is null: name a word list "
                              "or set max_share: null")


@dataclass(frozen=True)
class PerplexityConfig:
    """CCNet-style KenLM perplexity of the document (`perplexity`; lower = closer to the model's training text).
    Train a model with `curate train-kenlm`."""

    model: str
    """The KenLM model (`.arpa` or `.binary`): a path or `hf://owner/repo/file.binary`."""
    max_perplexity: float | None = None
    """Drop documents whose perplexity is above this. Rule `perplexity.perplexity_high`."""

    def __post_init__(self) -> None:
        _check_range("perplexity", "max_perplexity", self.max_perplexity, 0.0, None)


@dataclass(frozen=True)
class TransformerScorerConfig:
    """A Hugging Face transformer scorer (see `blocks/score_transformer.py`), named by its score column.

    Either `model` + `kind` (an `AutoModelForSequenceClassification` checkpoint) or `encoder` + `head` (the
    pooled output of an `AutoModel` encoder through a small MLP, FineWeb2-HQ / JQL style). Columns: regression
    and embedding + head → `<name>` (float); single_label → `<name>` (label) and `<name>_probability`;
    multilabel → `<name>` (the labels whose probability is at least `threshold`) and `<name>_probabilities`
    (a struct: one probability per label of the model)."""

    model: str | None = None
    """A sequence-classification checkpoint: `hf://owner/repo[@revision]` or a local folder (`save_pretrained`)."""
    kind: Literal["regression", "single_label", "multilabel"] | None = None
    """What the checkpoint's head predicts (needed with `model`)."""
    encoder: str | None = None
    """An encoder checkpoint (`hf://owner/repo[@revision]` or a folder) whose pooled output feeds `head`."""
    head: str | None = None
    """The head: a `.safetensors` file of an `nn.Sequential` of `Linear` layers with ReLU between them (keys
    `0.weight`, `0.bias`, `2.weight`, …) ending in one output; a path or `hf://owner/repo[@rev]/file`."""
    pooling: Literal["mean", "cls"] = "mean"
    """How the encoder's token states become one vector: the attention-masked mean, or the first token's."""
    min_score: float | None = None
    """regression, embedding + head: drop documents scoring below this (rule `<name>.score_low`)."""
    max_score: float | None = None
    """regression, embedding + head: drop documents scoring above this (rule `<name>.score_high`)."""
    threshold: float = 0.5
    """multilabel: a label is assigned when its probability is at least this."""
    drop_labels: tuple[str, ...] = ()
    """single_label, multilabel: drop documents assigned any of these labels (rule `<name>.label`)."""
    max_tokens: int | None = None
    """Tokens per document fed to the model (special tokens included); default: the model's maximum, at most
    512."""
    truncation: Literal["head", "head_tail"] = "head"
    """Which tokens of a longer document are kept: the first `max_tokens`, or the first half and the last half
    (the head-and-tail policy of Sun et al., 2019)."""
    device: Literal["auto", "gpu", "cpu"] = "auto"
    """auto: a GPU actor pool when the cluster has GPUs, else in the CPU tasks; gpu: refuse to run without GPUs;
    cpu: never a GPU."""
    batch_tokens: int = 16384
    """Padded tokens per forward pass (documents are sorted by length, so padding is small)."""

    def __post_init__(self) -> None:
        where = "scorers.transformers"
        if (self.model is None) == (self.encoder is None):
            raise ConfigError(f"{where}: give either model (with kind) or encoder (with head)")
        if self.model is not None and self.kind is None:
            raise ConfigError(f"{where}: model needs kind: regression, single_label or multilabel")
        if self.encoder is not None and (self.head is None or self.kind is not None):
            raise ConfigError(f"{where}: encoder needs head (and no kind: an embedding head gives one score)")
        if self.drop_labels and self.kind not in ("single_label", "multilabel"):
            raise ConfigError(f"{where}: drop_labels needs kind single_label or multilabel")
        if (self.min_score is not None or self.max_score is not None) and self.kind not in (None, "regression"):
            raise ConfigError(f"{where}: min_score / max_score apply to regression and embedding scores; "
                              f"use drop_labels for labels")
        _check_range("transformers", "threshold", self.threshold, 0.0, 1.0)
        if self.max_tokens is not None and self.max_tokens < 8:
            raise ConfigError(f"{where}: max_tokens of at least 8, got {self.max_tokens}")
        if self.batch_tokens < 512:
            raise ConfigError(f"{where}: batch_tokens of at least 512, got {self.batch_tokens}")


@dataclass(frozen=True)
class ScorersConfig:
    """Scorers add score columns in stage 3; optional thresholds turn a score into a drop. `null` switches a
    scorer off; the defaults are the model-free ones (no model ships with curate)."""

    web_docs: WebDocsConfig | None = field(default_factory=WebDocsConfig)
    """The model-free 0–10 document score (`web_docs_score`)."""
    quality: QualityConfig | None = None
    """The fastText quality classifier (`quality_score`)."""
    toxicity: ToxicityConfig | None = field(default_factory=ToxicityConfig)
    """Word list, classifier and adult-domain signals."""
    perplexity: PerplexityConfig | None = None
    """KenLM perplexity (`perplexity`)."""
    transformers: dict[str, TransformerScorerConfig] = field(default_factory=dict)
    """Transformer scorers by score column name (needs the `train` extra: torch, transformers)."""

    def __post_init__(self) -> None:
        for name in self.transformers:
            if not name.isidentifier():
                raise ConfigError(f"scorers.transformers.{name}: a column name of letters, digits and _")
