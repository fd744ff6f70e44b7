"""A `curate run` output folder for one language, built by hand from the shared Finnish text: the layout is
the contract `curate ablate` reads (a module of its own: `conftest` is not a unique name across test folders).

Clean Finnish documents (UD Finnish and WMT newstest sentences, four a document, as the trainer tests
build them) are released; mixed in are what each curation step removes, in the files that step writes:

* `_work/removed/stage1/` (`lid.low_score`): FLORES-200 sentences of six other languages (Russian, English, German,
  Swedish, Danish, Norwegian);
* `_work/removed/stage3/`: copies of clean documents (`dedup.minhash`), navigation and cookie boilerplate
  (`gopher_repetition.dup_line_share`) and generated keyword spam (`fineweb_quality.min_punct_line_share`);
* `data/<dump>/`: the clean documents with rehydration weights.

Held out: FLORES-200 Finnish, which is none of the training text.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "trainer"))

from trainer_testdata import FI_DIR, FLORES, finnish_weights, read_lines  # noqa: E402

from curate.blocks.keys import buckets_of, document_keys  # noqa: E402

CODE = "fin_Latn"
DUMPS = ("CC-MAIN-2024-18", "CC-MAIN-2024-22")
HELDOUT_FI = FLORES / "fin_Latn.txt"
FOREIGN = ("rus_Cyrl", "eng_Latn", "deu_Latn", "swe_Latn", "dan_Latn", "nob_Latn")
SPAM_WORDS = ("HALPA", "halvat", "casino", "bonus", "ILMAINEN", "klikkaa", "tästä", "viagra", "osta", "nyt",
              "tarjous", "100%", "€", "vedonlyönti", "laina", "heti", "tililtä", "pikavippi", "WIN", "free",
              "!!!", ">>>", "kasino-24.example", "www.halpa-laina.example", "TOP10", "SEO")
MENU = ("Etusivu | Uutiset | Urheilu | Viihde | Yhteystiedot | Kirjaudu sisään",
        "Tämä sivusto käyttää evästeitä. Hyväksy evästeet jatkaaksesi.",
        "© 2024 Kaikki oikeudet pidätetään. Tietosuojaseloste | Käyttöehdot",
        "Jaa: Facebook | Twitter | WhatsApp | Sähköposti")


@dataclass(frozen=True)
class Built:
    """The output root and how many documents each part holds."""

    root: Path
    clean: int
    foreign: int
    duplicates: int
    boilerplate: int
    spam: int
    weights: list[int]

    @property
    def language_root(self) -> Path:
        return self.root / CODE


def clean_documents() -> list[str]:
    sentences = [s for f in sorted(FI_DIR.glob("*.txt")) for s in read_lines(f)]
    return [" ".join(sentences[i:i + 4]) for i in range(0, len(sentences), 4)]


def foreign_documents() -> list[str]:
    documents = []
    for name in FOREIGN:
        sentences = read_lines(FLORES / f"{name}.txt")
        documents += [" ".join(sentences[i:i + 4]) for i in range(0, len(sentences), 4)]
    return documents


def spam_documents(count: int, rng: random.Random) -> list[str]:
    """Keyword lists with prices, product codes and link slugs."""

    def token() -> str:
        kind = rng.random()
        if kind < 0.6:
            return rng.choice(SPAM_WORDS)
        if kind < 0.8:
            return f"{rng.randint(1, 99_999)}{rng.choice(('', ' €', '%', ',99'))}"
        return "-".join("".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(rng.randint(3, 7)))
                        for _ in range(rng.randint(1, 3)))

    return [" ".join(token() for _ in range(rng.randint(40, 90))) for _ in range(count)]


def boilerplate_documents(count: int, rng: random.Random) -> list[str]:
    return ["\n".join(rng.choice(MENU) for _ in range(rng.randint(6, 12))) for _ in range(count)]


def _table(texts: list[str], prefix: str, dump: str, **extra: list) -> pa.Table:
    ids = [f"<urn:uuid:{prefix}-{i:06d}>" for i in range(len(texts))]
    keys = document_keys(ids)
    return pa.table({"text": texts, "id": ids, "dump": [dump] * len(texts),
                     "url": [f"https://example.fi/{prefix}/{i}" for i in range(len(texts))],
                     "doc_key": keys, "bucket": pa.array(buckets_of(keys, 4).astype("int64")), **extra})


def _write(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=500)


def build_run_output(root: Path, *, spam: int = 3000, boilerplate: int = 600, duplicate_every: int = 6) -> Built:
    """Write `root/fin_Latn/` as a `curate run` leaves it (stage files, removed rows, released shards)."""
    rng = random.Random(7)
    clean = clean_documents()
    duplicates = [clean[i] for i in range(0, len(clean), duplicate_every)]
    foreign = foreign_documents()
    junk_spam, junk_boilerplate = spam_documents(spam, rng), boilerplate_documents(boilerplate, rng)
    language = root / CODE
    dump = DUMPS[0]
    # Stage 1 kept: everything above the LID threshold, in two unit files (clean first: the order a
    # careless reader would train on).
    kept = [("clean", clean), ("dup", duplicates), ("spam", junk_spam), ("menu", junk_boilerplate)]
    for unit, parts in enumerate((kept[:2], kept[2:])):
        tables = [_table(texts, prefix, dump, language_score=[0.9] * len(texts)) for prefix, texts in parts]
        _write(pa.concat_tables(tables), language / "_work" / "stage1" / f"unit{unit}-a1b2c3.parquet")
    _write(_table(foreign, "foreign", dump, language_score=[0.3] * len(foreign),
                  drop_reason=["lid.low_score"] * len(foreign)),
           language / "_work" / "removed" / "stage1" / "unit0-d4e5f6.parquet")
    removed = [("dup", duplicates, "dedup.minhash"), ("spam", junk_spam, "fineweb_quality.min_punct_line_share"),
               ("menu", junk_boilerplate, "gopher_repetition.dup_line_share")]
    for bucket, (prefix, texts, reason) in enumerate(removed):
        _write(_table(texts, prefix, dump, drop_reason=[reason] * len(texts)),
               language / "_work" / "removed" / "stage3" / f"bucket{bucket}-0a0b0c.parquet")
    _write(_table(clean, "clean", dump), language / "_work" / "stage3" / "bucket0-0d0e0f.parquet")
    # Released: the clean documents in two crawls, with rehydration weights.
    weights = finnish_weights(len(clean))
    released = _table(clean, "clean", dump).drop_columns(["doc_key", "bucket"])
    released = released.append_column("weight", pa.array(weights, pa.int64()))
    half = len(clean) // 2
    for index, (lo, hi) in enumerate([(0, half), (half, len(clean))]):
        part = released.slice(lo, hi - lo)
        part = part.set_column(part.schema.get_field_index("dump"), "dump", pa.array([DUMPS[index]] * part.num_rows))
        _write(part, language / "data" / DUMPS[index] / f"{index:05d}.parquet")
    return Built(root, len(clean), len(foreign), len(duplicates), len(junk_boilerplate), len(junk_spam), weights)
