"""Test data for the scorers: clean Finnish documents from ../shared/data/text/fi, split into a training and a
held-out part, and web junk built from them (spam and boilerplate), seeded.

- *SEO spam*: the document's words shuffled (spun text), a two-word keyword phrase of the document stuffed in
  after every four words and a sales call (`SALES_CALLS`, the commercial vocabulary of such pages) after every
  twelve;
- *word salad*: the document's words shuffled, nothing added;
- *boilerplate*: page furniture made from the document's content words — navigation menus (`Uutiset | Urheilu |
  …`), dated link lists (`12.3.2021 Otsikko sana`) and footers (`© 2021 … | …`).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
from reference_documents import documents_from_sentences

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FINNISH = SHARED / "data" / "text" / "fi"
LDNOOBW = SHARED / "reference" / "ldnoobw"
HELD_OUT_EVERY = 8
SALES_CALLS = ("osta nyt", "halvin hinta", "tilaa heti", "ilmainen toimitus", "klikkaa tästä", "paras tarjous",
               "kasino bonus", "pikavippi ilman luottotietoja", "laina heti tilille", "alennus 50 %",
               "rajoitettu tarjous", "voita rahaa", "tutustu tarjouksiin", "edullinen hinta")


def finnish_documents() -> list[str]:
    """Documents of 2–6 paragraphs of 2–6 consecutive sentences (UD Finnish and WMT news), seeded."""
    sentences = [line for path in sorted(FINNISH.glob("*.txt"))
                 for line in path.read_text(encoding="utf-8").splitlines()]
    return documents_from_sentences(sentences, seed=1)


def split(documents: list[str]) -> tuple[list[str], list[str]]:
    """(training, held out): every HELD_OUT_EVERY-th document is held out."""
    held = documents[::HELD_OUT_EVERY]
    return [d for i, d in enumerate(documents) if i % HELD_OUT_EVERY], held


def _content_words(document: str) -> list[str]:
    words = [w.strip(".,!?:;\"'()«»–-") for w in document.split()]
    words = [w for w in words if w.isalpha()]
    return sorted({w for w in words if len(w) >= 5}) or words or ["sana"]


def word_salad(document: str, rng: random.Random) -> str:
    words = document.split()
    rng.shuffle(words)
    return " ".join(words)


def seo_spam(document: str, rng: random.Random) -> str:
    words = document.split()
    rng.shuffle(words)
    keyword = " ".join(rng.sample(_content_words(document), 2)) if len(_content_words(document)) > 1 else words[0]
    out: list[str] = []
    for start in range(0, len(words), 4):
        out += words[start:start + 4] + [keyword]
        if start % 12 == 8:
            out.append(rng.choice(SALES_CALLS))
    return " ".join(out)


def boilerplate(document: str, rng: random.Random) -> str:
    words = _content_words(document)

    def item() -> str:
        return rng.choice(words).capitalize()

    lines = []
    for _ in range(rng.randint(8, 16)):
        kind = rng.randrange(3)
        year = rng.randint(2015, 2024)
        if kind == 0:
            lines.append(" | ".join(item() for _ in range(rng.randint(4, 8))))
        elif kind == 1:
            lines.append(f"{rng.randint(1, 28)}.{rng.randint(1, 12)}.{year} {item()} {rng.choice(words)}")
        else:
            lines.append(f"© {year} {item()} {item()} | {item()} | {item()}")
    return "\n".join(lines)


def junk(documents: list[str], kind, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [kind(document, rng) for document in documents]


def ldnoobw_words(language: str) -> list[str]:
    return [w.strip() for w in (LDNOOBW / language).read_text(encoding="utf-8").splitlines() if w.strip()]


def lid_scores(texts: list[str]) -> np.ndarray:
    """The real LID probability of each text (fastText lid.176 shipped with curate, offline)."""
    from curate.blocks.lid import LanguageId

    batch = LanguageId(model="ft176")(pa.table({"text": pa.array(texts, pa.string())}))
    return batch["language_score"].to_numpy()
