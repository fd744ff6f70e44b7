"""Documents for tests built from sentence-per-line text (UD, WMT news, FLORES-200)."""

from __future__ import annotations

import random
from collections.abc import Iterable


def documents_from_sentences(sentences: Iterable[str], seed: int = 0, sentences_per_paragraph: tuple[int, int] = (2, 6),
                             paragraphs_per_document: tuple[int, int] = (2, 6)) -> list[str]:
    """Group consecutive sentences (in order) into paragraphs of `sentences_per_paragraph` sentences joined by a
    space, and paragraphs into documents of `paragraphs_per_document` lines; sizes drawn with `seed`."""
    rng = random.Random(seed)
    pending = [s.strip() for s in sentences if s.strip()]
    documents, index = [], 0
    while index < len(pending):
        paragraphs = []
        for _ in range(rng.randint(*paragraphs_per_document)):
            size = rng.randint(*sentences_per_paragraph)
            if index >= len(pending):
                break
            paragraphs.append(" ".join(pending[index: index + size]))
            index += size
        documents.append("\n".join(paragraphs))
    return documents
