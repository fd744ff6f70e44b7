"""Where the scorers' models and word lists come from: a local path, the Hugging Face Hub, or (lists) a URL.

    path/to/model.bin                       absolute, or relative: beside the language configs, then the cwd
    hf://owner/repo/dir/model.bin           `hf_hub_download` into the standard HF cache (once)
    hf://owner/repo@revision/model.bin      a branch, tag or commit
    hf://datasets/owner/repo/words.txt      a dataset repository
    https://host/list.txt                   word lists only: downloaded once into $CURATE_CACHE/downloads

A file that cannot be had raises `UserError` with one line naming the file, the config key that asked for it,
and how to provide it (as `blocks.lid.resolve_model` does for GlotLID): nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from curate.errors import UserError

HF_PREFIX = "hf://"


def first_line(error: BaseException) -> str:
    """An exception's message cut to its first line (its type's name when it has none), for one-line errors."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _cache_dir() -> Path:
    return Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate"))


def _split_hub(spec: str) -> tuple[str, str, str | None, str]:
    """`hf://[datasets/]owner/repo[@rev]/path` → (repo_id, filename, revision, repo_type)."""
    rest = spec[len(HF_PREFIX):]
    repo_type = "model"
    for kind in ("datasets", "spaces", "models"):
        if rest.startswith(kind + "/"):
            repo_type, rest = kind.removesuffix("s"), rest[len(kind) + 1:]
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise UserError(f"{spec!r} is not a Hub file: write hf://owner/repo/path/in/repo (or hf://owner/repo@rev/…)")
    repo, _, revision = parts[1].partition("@")
    return f"{parts[0]}/{repo}", "/".join(parts[2:]), revision or None, repo_type


def _hub_file(spec: str, where: str) -> Path:
    from huggingface_hub import hf_hub_download

    repo_id, filename, revision, repo_type = _split_hub(spec)
    try:
        return Path(hf_hub_download(repo_id, filename, revision=revision, repo_type=repo_type))
    except Exception as error:  # noqa: BLE001 - any hub failure becomes one actionable line
        raise UserError(
            f"cannot load {spec} ({where}) from the Hugging Face Hub ({type(error).__name__}); "
            f"connect to the Hub once (it is then cached), or download the file and give its path"
        ) from None


def _url_file(url: str, where: str) -> Path:
    """Download `url` once into $CURATE_CACHE/downloads (named by the URL's hash)."""
    import requests

    target = _cache_dir() / "downloads" / hashlib.sha256(url.encode()).hexdigest()[:24] / Path(url).name
    if target.is_file():
        return target
    try:
        response = requests.get(url, timeout=60)
        response.raise_for_status()
    except Exception as error:  # noqa: BLE001
        raise UserError(f"cannot download {url} ({where}): {type(error).__name__}; "
                        f"check the URL and the network, or download the file and give its path") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_bytes(response.content)
    os.replace(temporary, target)
    return target


def _local_file(spec: str, where: str, hint: str) -> Path:
    from curate.language_configs.schema import config_dirs

    candidate = Path(spec).expanduser()
    places = [candidate] if candidate.is_absolute() else [d / candidate for d in [*config_dirs(), Path.cwd()]]
    for place in places:
        if place.is_file():
            return place
    looked = "" if candidate.is_absolute() else " (looked beside the language configs and in the working directory)"
    raise UserError(f"{where}: no file {spec!r}{looked}; {hint}")


@cache
def resolve_file(spec: str, where: str, hint: str, urls: bool = False) -> Path:
    """The local file for `spec` (path, `hf://…`, or with `urls` an `http(s)://` URL), fetched once per process.

    `where` names the config key (`fin_Latn scorers.quality.model`) and `hint` says how to provide the file;
    both go into the one-line `UserError` raised when the file cannot be had."""
    if spec.startswith(HF_PREFIX):
        return _hub_file(spec, where)
    if spec.startswith(("http://", "https://")):
        if not urls:
            raise UserError(f"{where}: {spec!r} is a URL; give a path or hf://owner/repo/file")
        return _url_file(spec, where)
    return _local_file(spec, where, hint)
