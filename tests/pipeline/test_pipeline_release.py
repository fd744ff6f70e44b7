"""`curate release`: what is uploaded, refusals, dry run, token hygiene and one-line errors.

The upload runs against `FakeHub`, a loopback HTTP server answering the Hub API routes that
`huggingface_hub.HfApi.upload_folder` uses, with a real `HfApi`: Parquet shards go the LFS way (preupload, LFS
batch, upload, verify, commit with pointers). The Xet path, the client's default with `hf_xet` installed, needs
Xet storage servers and is not tested (`HF_HUB_DISABLE_XET`). The unreachable-Hub case uses a real `HfApi` on a
closed port.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import time

import pytest
from card_helpers import CODE, FakeHub, build_output
from huggingface_hub import HfApi, constants

from curate.errors import UserError
from curate.pipeline.publishing.card import write_card
from curate.pipeline.publishing.release import describe_files, release, release_files

TOKEN = "hf_TestSecretToken0123456789"
REPO = "org/fineweb-fin"


@pytest.fixture(scope="module")
def template(tmp_path_factory, shared):
    built = build_output(tmp_path_factory.mktemp("release"), shared, full=True)
    write_card(str(built.root), CODE)
    (built.folder / "data" / "00000-000.parquet.tmp-1a2b3c4d").write_bytes(b"torn write")
    (built.folder / "report.html").write_text("<html></html>")
    return built


@pytest.fixture()
def output(template, tmp_path):
    """A fresh copy of a finished run's output with its card, plus files a release must leave out."""
    shutil.copytree(template.root, tmp_path / "out")
    return dataclasses.replace(template, root=tmp_path / "out")


@pytest.fixture()
def online(monkeypatch):
    """The test session runs with HF_HUB_OFFLINE=1 (tests/conftest.py); a release needs it off. LFS, not Xet: a
    loopback server cannot play Xet storage."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)


def expected_files(built) -> list[str]:
    images = sorted(f"images/{p.name}" for p in (built.folder / "images").iterdir())
    return sorted(["README.md", *built.shards, *images])


class NoNetwork:
    """An `api` that fails the test on any use."""

    token = TOKEN

    def __getattr__(self, name):
        raise AssertionError(f"dry run called api.{name}")


def test_dry_run_lists_only_data_card_and_images_and_makes_no_call(output, capsys, caplog):
    paths = release(str(output.root), "fin", REPO, dry_run=True, api=NoNetwork())
    assert paths == expected_files(output)
    assert not [p for p in paths if p.startswith("_work") or p in ("stats.json", "report.html") or ".tmp-" in p]
    listing = describe_files(release_files(str(output.root), "fin"))
    shard = output.folder / output.shards[0]
    assert f"{shard.stat().st_size:,}  {output.shards[0]}" in listing
    assert listing.splitlines()[-1].strip().endswith(f"bytes in {len(paths)} files")
    assert TOKEN not in capsys.readouterr().out + caplog.text


def test_upload_sends_only_released_files_in_one_commit(output, online, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    with FakeHub() as hub:
        paths = release(str(output.root), "fin", REPO, private=True, api=HfApi(endpoint=hub.url, token=TOKEN))
        assert paths == expected_files(output)
        assert [(c["type"], c["organization"], c["name"]) for c in hub.created] == [("dataset", "org", "fineweb-fin")]
        assert hub.repos[REPO].private
        assert len(hub.commits) == 1 and hub.commits[0]["revision"] == "main"
        assert sorted(hub.commits[0]["added"]) == paths and hub.commits[0]["deleted"] == []
        assert hub.files(REPO)["README.md"] == (output.folder / "README.md").read_bytes()
        for shard in output.shards:  # every shard's bytes arrived through LFS, checked against their sha256
            assert hub.files(REPO)[shard] == (output.folder / shard).read_bytes()
        assert hub.commits[0]["lfs"] == sorted(output.shards) and "README.md" not in hub.commits[0]["lfs"]
        assert sorted(hub.lfs_uploads) == sorted(hashlib.sha256((output.folder / s).read_bytes()).hexdigest()
                                                 for s in output.shards)
        assert [b["transfers"] for b in hub.lfs_batches] == [["basic", "multipart"]]
        authorization = [({k.lower(): v for k, v in headers.items()}.get("authorization"), method == "PUT")
                         for method, _, headers in hub.requests]
        assert {a for a, storage in authorization if not storage} == {f"Bearer {TOKEN}"}  # every Hub API call
        assert {a for a, storage in authorization if storage} == {None}  # the LFS storage upload never sees it
    captured = capsys.readouterr()
    assert TOKEN not in captured.out + captured.err + caplog.text


def test_a_non_empty_repo_is_refused_without_force(output, online):
    with FakeHub() as hub:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo(REPO, repo_type="dataset")
        hub.files(REPO).update({"data/CC-MAIN-2023-50/00000.parquet": b"old", "README.md": b"old card"})
        with pytest.raises(UserError) as error:
            release(str(output.root), "fin", REPO, api=api)
        message = str(error.value)
        assert "already has 2 file(s)" in message and "--force" in message and "\n" not in message
        assert hub.commits == []
        release(str(output.root), "fin", REPO, force=True, api=api)
        assert hub.commits[-1]["deleted"] == ["data/CC-MAIN-2023-50/00000.parquet"], "stale shards leave data/"
        assert sorted(hub.files(REPO)) == sorted([".gitattributes", *expected_files(output)])


def test_a_rerun_resumes_and_skips_files_already_uploaded(output, online):
    with FakeHub() as hub:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        api.create_repo(REPO, repo_type="dataset")
        first_shard = output.shards[0]
        hub.files(REPO)[first_shard] = (output.folder / first_shard).read_bytes()  # an interrupted upload
        release(str(output.root), "fin", REPO, force=True, api=api)
        assert len(hub.commits) == 1
        assert first_shard not in hub.commits[0]["added"] and len(hub.commits[0]["added"]) == len(
            expected_files(output)) - 1
        assert len(hub.lfs_uploads) == len(output.shards) - 1, "the shard already there is not sent again"
        release(str(output.root), "fin", REPO, force=True, api=api)
        assert len(hub.commits) == 1, "nothing changed: no new commit"


def test_a_revision_goes_to_its_own_branch(output, online):
    with FakeHub() as hub:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        release(str(output.root), "fin", REPO, revision="v1", api=api)
        assert [c["revision"] for c in hub.commits] == ["v1"]
        assert any(method == "POST" and path.endswith("/branch/v1") for method, path, _ in hub.requests)
        assert "README.md" in hub.files(REPO, "v1") and "README.md" not in hub.files(REPO, "main")


def test_unreachable_hub_is_one_line_and_quick(output, online, monkeypatch, capsys):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    started = time.monotonic()
    with pytest.raises(UserError) as error:
        release(str(output.root), "fin", REPO)
    assert time.monotonic() - started < 15
    message = str(error.value)
    assert message.startswith("cannot reach the Hugging Face Hub at http://127.0.0.1:9 (")
    assert message.endswith("check the network or HF_ENDPOINT") and "\n" not in message and TOKEN not in message
    assert TOKEN not in "".join(capsys.readouterr())


def test_rejected_token_is_one_line_without_the_token(output, online):
    with FakeHub(fail_status=401) as hub:
        with pytest.raises(UserError) as error:
            release(str(output.root), "fin", REPO, api=HfApi(endpoint=hub.url, token=TOKEN))
    message = str(error.value)
    assert "rejected the token" in message and "HF_TOKEN" in message and TOKEN not in message


def test_no_token_says_how_to_log_in(output, online, monkeypatch, tmp_path):
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    with pytest.raises(UserError, match=r"no Hugging Face token: set HF_TOKEN or run `hf auth login`"):
        release(str(output.root), "fin", REPO, api=HfApi(endpoint="http://127.0.0.1:9", token=False))


def test_offline_mode_is_named(output, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(UserError, match="HF_HUB_OFFLINE is set"):
        release(str(output.root), "fin", REPO, api=NoNetwork())


def test_missing_card_or_shards_say_run_first(tmp_path, shared):
    built = build_output(tmp_path, shared, full=False)
    with pytest.raises(UserError, match=r"no dataset card .*: run `curate run --lang fin_Latn"):
        release(str(built.root), "fin", REPO, dry_run=True)
    write_card(str(built.root), CODE)
    for shard in built.shards:
        (built.folder / shard).unlink()
    with pytest.raises(UserError, match=r"no released shards .*: run `curate run"):
        release(str(built.root), "fin", REPO, dry_run=True)


def test_a_bad_repo_id_is_one_line(output):
    with pytest.raises(UserError, match=r"--repo 'org/has space' is not a Hub repo id"):
        release(str(output.root), "fin", "org/has space", dry_run=True)


def test_squash_leaves_one_commit_and_says_so(output, online, caplog):
    """A takedown republished with `squash`: the upload commit, then the branch's history squashed, with a warning."""
    with FakeHub() as hub:
        api = HfApi(endpoint=hub.url, token=TOKEN)
        release(str(output.root), "fin", REPO, api=api)
        assert hub.squashed == []
        emptied = output.shards[0]
        (output.folder / emptied).unlink()  # a shard a takedown emptied
        with caplog.at_level(logging.WARNING, logger="curate"):
            release(str(output.root), "fin", REPO, force=True, squash=True, api=api)
        assert hub.commits[-1]["deleted"] == [emptied]
        assert hub.squashed == [{"revision": "main", "message": "curate release of fin_Latn (history squashed)"}]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert warnings == [f"squashing the history of {REPO} (branch main) into one commit: every earlier revision "
                            "is deleted for good, with any copy of taken-down files"]
