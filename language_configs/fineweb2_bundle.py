"""FineWeb2's 1,929 per-language configs, shipped with curate as one compressed file (`fineweb2_configs.json.gz`).

The file holds FineWeb2's own values (the content of each `configs/<iso639-3>_<Script>.yml` of
huggingface/fineweb-2, Apache-2.0, © Hugging Face; see `ATTRIBUTION`), unchanged; they are converted into our
config on load by `fineweb2.convert_fineweb2`, exactly as `curate config import-fineweb2` converts a file, so the
lid.176 thresholds of `lid_thresholds.tsv` apply to them too. A reviewed config (`language_configs/*.yaml`) and a
`$CURATE_LANGUAGE_CONFIGS` folder take precedence over the bundle (`schema.load_language_config`).

Regenerate it from a checkout of FineWeb2's configs with
`python -m curate.language_configs.fineweb2_bundle PATH/TO/fineweb-2/configs`.
"""

from __future__ import annotations

import gzip
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from curate.language_configs.validate import ConfigError

BUNDLE = Path(__file__).resolve().parent / "fineweb2_configs.json.gz"
ATTRIBUTION = ("FineWeb2 per-language configs (configs/*.yml of https://github.com/huggingface/fineweb-2), "
               "Copyright Hugging Face, licensed under the Apache License 2.0 "
               "(https://www.apache.org/licenses/LICENSE-2.0); values unchanged, converted to curate's keys on load.")


def read_folder(folder: str | Path) -> dict[str, dict[str, Any]]:
    """`fin_Latn` → the content of `folder/fin_Latn.yml`, for every `*_*.yml` (or `.yaml`) file of `folder`."""
    folder = Path(folder)
    paths = sorted(p for p in folder.glob("*_*.y*ml") if p.suffix in (".yml", ".yaml"))
    if not paths:
        raise ConfigError(f"{folder}: no FineWeb2 config (<iso639-3>_<Script>.yml) in this folder")
    configs = {}
    for path in paths:
        try:
            configs[path.name.rsplit(".", 1)[0]] = yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML ({error})") from None
    return configs


def build_bundle(folder: str | Path) -> bytes:
    """The bundle's bytes (gzip of one JSON object; the same bytes for the same folder)."""
    document = {"attribution": ATTRIBUTION, "configs": read_folder(folder)}
    text = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)


@cache
def bundled_configs() -> dict[str, dict[str, Any]]:
    """`fin_Latn` → FineWeb2's values for it, from the shipped bundle (empty if the file is missing)."""
    if not BUNDLE.is_file():
        return {}
    return json.loads(gzip.decompress(BUNDLE.read_bytes()))["configs"]


def main(argv: list[str] | None = None) -> None:
    """`python -m curate.language_configs.fineweb2_bundle FOLDER [OUT]`: write the bundle (default: the shipped one)."""
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        sys.exit("usage: python -m curate.language_configs.fineweb2_bundle FINEWEB2_CONFIGS_FOLDER [OUT.json.gz]")
    out = Path(args[1]) if len(args) == 2 else BUNDLE
    data = build_bundle(args[0])
    out.write_bytes(data)
    print(f"wrote {out} ({len(data):,} bytes, {len(read_folder(args[0])):,} configs)")


if __name__ == "__main__":
    main()
