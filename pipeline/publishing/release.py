"""`curate release`: upload one language's shards, card and images to a Hugging Face dataset repo.

Only the shards under `data/`, `README.md` and `images/*.png` of `<out>/<lang>/` are uploaded: never `_work/`,
`stats.json` or anything else in the folder. The upload is `HfApi.upload_folder`, which in
huggingface_hub 2.x (with `hf_xet`, one of its dependencies) streams files, commits large folders in a few
adaptive batches and resumes an interrupted upload when rerun (files already on the Hub are skipped).

The token comes from where huggingface_hub looks (`HF_TOKEN`, then `hf auth login`'s stored token) and is
never printed. A repo that already has files (other than `.gitattributes`) is refused unless `force`; with
`force`, remote `data/` and `images/` files that this release does not have are deleted in the same
commit, so the card's `configs` (`data/**`) never pick up shards of an earlier release. Network, auth and
Hub errors end as a one-line `UserError`.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curate.errors import UserError
from curate.pipeline.execution.storage import Output

log = logging.getLogger("curate")

REPO_TYPE = "dataset"
# relative to <out>/<lang>/; fnmatch's `*` crosses `/`: `data/*.parquet` is every shard under data/, nested or not
RELEASED_PATTERNS = ["README.md", "data/*.parquet", "images/*.png"]
REPLACED_ON_FORCE = ["data/**", "images/**"]  # remote files under these that the release lacks are deleted
KEPT_REMOTE = {".gitattributes"}  # what a freshly created repo holds: not "non-empty"
DEFAULT_BRANCH = "main"


@dataclass(frozen=True)
class ReleaseFile:
    """A file of the release: path relative to `<out>/<lang>/` (and in the repo), and its size in bytes."""

    path: str
    size: int


def language_folder(output_root: str, language: str) -> tuple[str, Path]:
    """(`fin_Latn`, the local folder `<out>/fin_Latn`); a remote (fsspec URL) output is refused with one line."""
    from curate.pipeline.publishing.card import language_info

    output = Output(output_root)
    code = language_info(output, language).code
    if not output.is_local:
        raise UserError(f"curate release uploads a local folder; {output_root} is not local: copy "
                        f"{output_root.rstrip('/')}/{code}/ (README.md, data/, images/) to a local folder and "
                        "release that")
    return code, Path(output.language(code))


def release_files(output_root: str, language: str) -> list[ReleaseFile]:
    """What a release uploads, sorted; a missing card or no shards is a `UserError` naming `curate run`."""
    from huggingface_hub.utils import filter_repo_objects

    code, folder = language_folder(output_root, language)
    if not (folder / "README.md").is_file():
        raise UserError(f"no dataset card at {folder / 'README.md'}: run `curate run --lang {code} --output "
                        f"{output_root}` first (or `curate card {output_root} --lang {code}` after a finished run)")
    local = sorted(p.relative_to(folder).as_posix() for p in folder.glob("**/*") if p.is_file())
    chosen = list(filter_repo_objects(local, allow_patterns=RELEASED_PATTERNS))
    if not any(path.startswith("data/") for path in chosen):
        raise UserError(f"no released shards under {folder / 'data'}: run `curate run --lang {code} --output "
                        f"{output_root}` first")
    return [ReleaseFile(path, (folder / path).stat().st_size) for path in chosen]


def describe_files(files: list[ReleaseFile]) -> str:
    """One line per file (size, path) and a total: what `--dry-run` prints."""
    lines = [f"{f.size:>14,}  {f.path}" for f in files]
    lines.append(f"{sum(f.size for f in files):>14,}  bytes in {len(files):,} files")
    return "\n".join(lines)


def release(output_root: str, language: str, repo_id: str, private: bool = False, revision: str | None = None,
            force: bool = False, dry_run: bool = False, api: Any = None, squash: bool = False) -> list[str]:
    """Upload `<out>/<lang>/{README.md, data/, images/}` to the dataset repo `repo_id`; returns the paths.

    `revision`: a branch to commit to (created from `main` if missing). `private` applies when the repo is
    created. `dry_run` returns the paths that would be uploaded and touches no network. `api` is an
    `HfApi` (tests pass one bound to a local endpoint); by default one for `HF_ENDPOINT` with the stored token.
    `squash` then squashes the branch's history into one commit (`HfApi.super_squash_history`), so files the
    release removed (a takedown: `curate optout`) leave no copy in older revisions; it cannot be undone.
    """
    _check_repo_id(repo_id)
    files = release_files(output_root, language)
    paths = [f.path for f in files]
    if dry_run:
        return paths
    code, folder = language_folder(output_root, language)
    _upload(folder, RELEASED_PATTERNS, REPLACED_ON_FORCE, repo_id, private, revision, force, api, squash,
            f"curate release of {code}: {sum(p.startswith('data/') for p in paths)} shards")
    return paths


def languages_release_files(output_root: str, codes: list[str]) -> tuple[list[ReleaseFile], list[str]]:
    """What a release of several languages uploads from `<out>/`: the card `README.md` and, for each language that
    released documents, `<code>/{README.md, data/, images/}`; returns them with the patterns that select them."""
    from huggingface_hub.utils import filter_repo_objects

    folder = Path(Output(output_root).root)
    if not (folder / "README.md").is_file():
        raise UserError(f"no dataset card at {folder / 'README.md'}: run `curate card {output_root} --lang all` first")
    patterns = ["README.md", *(f"{code}/{pattern}" for code in codes for pattern in RELEASED_PATTERNS)]
    local = sorted(p.relative_to(folder).as_posix() for code in codes for p in (folder / code).glob("**/*")
                   if p.is_file())
    chosen = ["README.md", *filter_repo_objects(local, allow_patterns=patterns[1:])]
    return [ReleaseFile(path, (folder / path).stat().st_size) for path in chosen], patterns


def release_languages(output_root: str, codes: list[str], repo_id: str, private: bool = False,
                      revision: str | None = None, force: bool = False, dry_run: bool = False, api: Any = None,
                      squash: bool = False) -> list[str]:
    """One Hub dataset of several languages: `<out>/README.md` (the card with a config per language, written by
    `card.write_languages_card`) and each released language's folder as `<code>/…` (`data_dir` per language, as
    FineWeb2's dataset). Same rules as `release` (`force`, `revision`, `squash`)."""
    _check_repo_id(repo_id)
    files, patterns = languages_release_files(output_root, codes)
    paths = [f.path for f in files]
    if dry_run:
        return paths
    if not Output(output_root).is_local:
        raise UserError(f"curate release uploads a local folder; {output_root} is not local: copy it to a local "
                        "folder and release that")
    replaced = [f"{code}/{pattern}" for code in codes for pattern in REPLACED_ON_FORCE]
    _upload(Path(Output(output_root).root), patterns, replaced, repo_id, private, revision, force, api, squash,
            f"curate release of {len(codes)} languages: {sum('/data/' in p for p in paths)} shards")
    return paths


def _upload(folder: Path, patterns: list[str], replaced: list[str], repo_id: str, private: bool,
            revision: str | None, force: bool, api: Any, squash: bool, message: str) -> None:
    """Upload the files of `folder` that match `patterns` to the dataset `repo_id` (see `release`)."""
    code = folder.name
    _check_online()
    api = api or _default_api()
    token = _token(api)
    endpoint = getattr(api, "endpoint", None) or "the Hugging Face Hub"
    branch = revision if revision and revision != DEFAULT_BRANCH else None
    with _hub_errors(endpoint, repo_id, token):
        # private=None lets the Hub apply the namespace's default visibility when the repo is created
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=True if private else None, exist_ok=True)
        existing = _remote_files(api, repo_id, branch)
        foreign = sorted(set(existing) - KEPT_REMOTE)
        if foreign and not force:
            shown = ", ".join(foreign[:3]) + (", …" if len(foreign) > 3 else "")
            raise UserError(f"{repo_id} already has {len(foreign)} file(s) ({shown}); pass --force to release into it "
                            "(unchanged files are skipped, data/ and images/ files this release lacks are deleted)")
        if branch:
            api.create_branch(repo_id, branch=branch, repo_type=REPO_TYPE, exist_ok=True)
        log.info("uploading %s to %s", code, repo_id)
        api.upload_folder(
            repo_id=repo_id, repo_type=REPO_TYPE, folder_path=str(folder), revision=branch,
            allow_patterns=list(patterns), delete_patterns=list(replaced) if foreign else None,
            commit_message=message,
        )
        if squash:
            target = branch or DEFAULT_BRANCH
            log.warning("squashing the history of %s (branch %s) into one commit: every earlier revision is deleted "
                        "for good, with any copy of taken-down files", repo_id, target)
            api.super_squash_history(repo_id=repo_id, repo_type=REPO_TYPE, branch=target,
                                     commit_message=f"{message.split(':')[0]} (history squashed)")


def repo_url(repo_id: str, revision: str | None = None) -> str:
    """The dataset's page on the Hub (`HF_ENDPOINT` respected), at `revision` if one is given."""
    from huggingface_hub import constants

    endpoint = (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    return f"{endpoint}/datasets/{repo_id}" + (f"/tree/{revision}" if revision else "")


def _check_repo_id(repo_id: str) -> None:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UserError(f"--repo {repo_id!r} is not a Hub repo id such as org/name ({_one_line(error, '')})") from None


def _default_api():
    from huggingface_hub import HfApi, constants

    # HF_ENDPOINT is read when the call is made (huggingface_hub reads it once, at import).
    return HfApi(endpoint=os.environ.get("HF_ENDPOINT") or constants.ENDPOINT)


def _token(api: Any) -> str:
    from huggingface_hub import get_token
    from huggingface_hub.errors import OIDCError

    try:
        token = getattr(api, "token", None) or get_token()
    except OIDCError as error:  # HF_OIDC_RESOURCE set (CI) but the exchange failed
        raise UserError(f"no Hugging Face token: {' '.join(str(error).split())}") from None
    if not token:
        raise UserError("no Hugging Face token: set HF_TOKEN or run `hf auth login` (huggingface-cli login)")
    return token


def _check_online() -> None:
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise UserError("HF_HUB_OFFLINE is set: unset it (and TRANSFORMERS_OFFLINE) to release to the Hub")


def _remote_files(api: Any, repo_id: str, branch: str | None) -> list[str]:
    """Files on `branch` (or `main` if the branch does not exist yet: it will start from there)."""
    from huggingface_hub.errors import RevisionNotFoundError

    if branch:
        try:
            return list(api.list_repo_files(repo_id, repo_type=REPO_TYPE, revision=branch))
        except RevisionNotFoundError:
            pass
    return list(api.list_repo_files(repo_id, repo_type=REPO_TYPE))


def _network_errors() -> tuple[type[BaseException], ...]:
    """Connection failures as the HTTP clients huggingface_hub may use raise them."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):  # huggingface_hub 2.x uses httpx2, 1.x httpx
        try:
            errors.append(importlib.import_module(module).TransportError)
        except (ImportError, AttributeError):
            continue
    try:
        import requests  # huggingface_hub 0.x

        errors += [requests.exceptions.ConnectionError, requests.exceptions.Timeout]
    except ImportError:
        pass
    return tuple(errors)


def _one_line(error: BaseException, token: str) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    text = text.replace(token, "***") if token else text
    return text if len(text) <= 200 else text[:197] + "..."


@contextmanager
def _hub_errors(endpoint: str, repo_id: str, token: str) -> Iterator[None]:
    """Turn what the Hub or the network raise into one line; the token never appears in it."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        yield
    except UserError:
        raise
    except OfflineModeIsEnabled:
        raise UserError("HF_HUB_OFFLINE is set: unset it (and TRANSFORMERS_OFFLINE) to release to the Hub") from None
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        detail = _one_line(error, token)
        if status == 401:
            raise UserError(f"the Hugging Face Hub at {endpoint} rejected the token (401): set HF_TOKEN to a valid "
                            "token or run `hf auth login`") from None
        if status == 403:
            raise UserError(f"the token may not write to {repo_id} (403: {detail}); use a token with write access "
                            "to that namespace") from None
        raise UserError(f"the Hugging Face Hub at {endpoint} refused the release to {repo_id} ({detail})") from None
    except _network_errors() as error:
        raise UserError(f"cannot reach the Hugging Face Hub at {endpoint} ({type(error).__name__}: "
                        f"{_one_line(error, token)}); check the network or HF_ENDPOINT") from None
    except ValueError as error:  # e.g. the Hub's YAML check of README.md
        raise UserError(f"the Hugging Face Hub at {endpoint} refused the release to {repo_id} "
                        f"({_one_line(error, token)})") from None
