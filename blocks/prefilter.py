"""The LID-first cascade: a cheap language check of the whole page, so trafilatura runs only on candidates.

Two passes. First, where CLD2 detects every run language, CLD2 on the page's HTML (as Common Crawl labels its
index; ~1 ms a page, the markup skipped by CLD2 itself): a page is ruled out (`prefilter.cld2_other_language`)
only when CLD2 read at least `MIN_CLD2_TEXT_BYTES` of text, calls its answer reliable, and names neither a run
language nor a close relative (`language_configs.cld2.NEIGHBORS`) among its top three or on any span of the text.

Then the run's own LID model: `page_chunks` cuts resiliparse's plain text of the whole page (no main-content
detection: ~1 ms a page against trafilatura's ~15 ms) into chunks of consecutive lines of at least
`CHUNK_CHARS` characters, so an article in one language inside navigation, menus and footers in another still
has chunks of its own. `Prefilter` runs the LID model on every chunk and keeps a page for extraction if one chunk
qualifies for one run language (its label, or one of its `also` labels, among the model's `top_k` with
probability >= `min_score`, from the language config's `lid.prefilter`); other pages are dropped as
`prefilter.other_language`. The decision of record stays with `LanguageId` on trafilatura's text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.blocks.base import Block, mark_dropped
from curate.blocks.lid import LanguageId

CHUNK_CHARS = 400  # a chunk is consecutive lines up to at least this many characters
MAX_CHUNKS = 100  # LID reads at most this many chunks of a page (~40,000 characters), spread over the whole text
MIN_CLD2_TEXT_BYTES = 200  # CLD2 rules a page out only when it read at least this much text
CLD2_RULED_OUT = "prefilter.cld2_other_language"  # the drop reason of the CLD2 pass
# What pycld2 refuses as invalid UTF-8 (control characters, noncharacters): spaces, on a second try.
_NOT_INTERCHANGE = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef\ufffe\uffff]")


@dataclass(frozen=True)
class PrefilterRule:
    """When a page is a candidate for one run language: any of `labels` in the top `top_k` with >= `min_score`."""

    labels: tuple[str, ...]
    top_k: int
    min_score: float


def page_chunks(html: str) -> list[str]:
    """The whole page's visible text as one-line chunks of consecutive lines, each of at least `CHUNK_CHARS`
    characters but the last; of a longer page, `MAX_CHUNKS` chunks evenly spread from its first to its last
    (an article after long navigation in another language still has chunks read); [] if the page has no text
    (or cannot be parsed)."""
    from resiliparse.extract.html2text import extract_plain_text

    try:
        text = (extract_plain_text(html, main_content=False, alt_texts=False) or "") if html else ""
    except Exception:  # noqa: BLE001 - a page the parser cannot read goes on to extraction, which decides
        text = ""
    chunks, lines, size = [], [], 0
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            lines.append(line)
            size += len(line) + 1
        if size >= CHUNK_CHARS:
            chunks.append(" ".join(lines))
            lines, size = [], 0
    if lines:
        chunks.append(" ".join(lines))
    if len(chunks) > MAX_CHUNKS:
        chunks = [chunks[i] for i in np.linspace(0, len(chunks) - 1, MAX_CHUNKS).round().astype(int)]
    return chunks


def cld2_detect(html: str) -> tuple | None:
    """`pycld2.detect` of a page's HTML with its spans: (reliable, text bytes, top three as (name, code, percent,
    score), spans as (offset, bytes, name, code)); None if CLD2 cannot read the page."""
    import pycld2

    try:
        return pycld2.detect(html, isPlainText=False, returnVectors=True)
    except (pycld2.error, ValueError):
        pass
    try:
        return pycld2.detect(_NOT_INTERCHANGE.sub(" ", html), isPlainText=False, returnVectors=True)
    except (pycld2.error, ValueError):
        return None


def cld2_candidates(htmls: list[str], codes: tuple[str, ...]) -> np.ndarray:
    """For each page: False only where CLD2 read enough text, is sure, and finds none of its own `codes`."""
    keep = np.ones(len(htmls), dtype=bool)
    wanted = set(codes)
    if not wanted:
        return keep
    for index, html in enumerate(htmls):
        found = cld2_detect(html) if html else None
        if found is not None and found[0] and found[1] >= MIN_CLD2_TEXT_BYTES:
            _, _, top, spans = found
            keep[index] = any(t[1] in wanted for t in top) or any(s[3] in wanted for s in spans)
    return keep


@dataclass
class Prefilter(Block):
    """Drops pages that no run language can be before extraction (`prefilter.cld2_other_language`,
    `prefilter.other_language`).

    A page without any visible text goes on: extraction decides about it, as without the cascade."""

    name = "prefilter"
    reads = ("html",)
    writes = ("drop_reason",)
    lid: LanguageId
    rules: tuple[PrefilterRule, ...]
    cld2: tuple[str, ...] = ()  # CLD2's codes of the run languages and relatives, sorted; empty: no CLD2 pass

    def check(self) -> None:
        self.lid.check()
        import pycld2  # noqa: F401 - declared dependencies; fail here, not on a worker
        import resiliparse  # noqa: F401

    def provenance(self) -> dict[str, str]:
        return self.lid.provenance()

    def candidates(self, pages: list[list[str]]) -> np.ndarray:
        """For each page (its chunks): True if one chunk qualifies for one rule, or if the page has no text."""
        chunks = [chunk for page in pages for chunk in page]
        labels, scores = self.lid.predict(chunks, k=max(rule.top_k for rule in self.rules))
        owner = np.repeat(np.arange(len(pages)), [len(page) for page in pages])
        keep = np.array([not page for page in pages], dtype=bool)
        for page, chunk_labels, chunk_scores in zip(owner, labels, scores):
            keep[page] |= any(
                label in rule.labels and score >= rule.min_score
                for rule in self.rules
                for label, score in zip(chunk_labels[:rule.top_k], chunk_scores[:rule.top_k])
            )
        return keep

    def apply(self, batch: pa.Table) -> pa.Table:
        htmls = batch["html"].to_pylist()
        cld2 = cld2_candidates(htmls, self.cld2)
        keep = cld2.copy()
        passed = np.flatnonzero(cld2)
        keep[passed] = self.candidates([page_chunks(htmls[i]) for i in passed])
        batch = mark_dropped(batch, ~cld2, CLD2_RULED_OUT)
        return mark_dropped(batch, ~keep, f"{self.name}.other_language")
