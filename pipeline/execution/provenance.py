"""What a manifest or a dataset card records about how data was made: versions, commit, model hashes."""

from __future__ import annotations

import hashlib
import json
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

PACKAGES = ("curate-corpus", "ray", "pyarrow", "polars", "trafilatura", "fasttext-numpy2-wheel", "datatrove", "warcio",
            "datasketch", "numpy")


@cache
def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@cache
def git_commit() -> str | None:
    """The commit of the curate checkout in use (None when installed from a wheel)."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() or None


def code_version() -> str:
    """What a fingerprint covers of the code: the package version (not the commit, so docs edits keep caches)."""
    return package_versions().get("curate-corpus", "0")


def fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-able parts."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def provenance(models: dict[str, str]) -> dict:
    return {"versions": package_versions(), "git_commit": git_commit(), "models": models}
