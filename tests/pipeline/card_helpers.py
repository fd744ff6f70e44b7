"""Fixtures for the card and release tests: a run's output folder, built without Ray, and a fake Hub.

`build_output` writes what `curate run` leaves for one language (FineWeb2 columns over Finnish text from
../shared, `stats.json` like a real run's, unit manifests with provenance, `_work/` stage files that must
never be released). `FakeHub` is a loopback HTTP server answering the few Hub API routes a release uses
(create repo, tree, branch, YAML check, preupload, LFS batch, upload and verify, commit) and recording every
request. Parquet files take the LFS path, as on the real Hub; the Xet path (the client's default when `hf_xet`
is installed) needs Xet storage servers and is not played here: the tests set `HF_HUB_DISABLE_XET`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq

CODE = "fin_Latn"
# documents of each crawl in each shard (shards mix the crawls, as the final stage writes them): 1,266 in all
DUMPS = {"CC-MAIN-2024-18": [620, 410], "CC-MAIN-2024-22": [136, 100]}
GIT_COMMIT = "a823b3625949b6e10c566488939e8d77d0469ee6"
OTHER_LANGUAGE_COMMIT = "0000000000000000000000000000000000000bad"
LID_SHA = "8f3472cfe8738a7b6099e8e999c3cbfae0dcd15696aac7d7738a8039db603e83"
STAGE3_RULES = {"gopher_quality.alpha_token_share": 41, "fineweb_quality.min_punct_line_share": 17,
                "gopher_repetition.max_dup_line_share": 9}
CLUSTER_SIZES = {"1": 1100, "2": 61, "3": 12, "4": 5, "7": 2, "31": 1, "250": 1}
DEDUP_REMOVED = 104
STEP_TABLE = {"1": 1, "2": 2, "3": 3, "5": 5, "100": 8, "1000": 1}
VERSIONS = {"curate": "0.1.0", "datatrove": "0.10.1", "pyarrow": "26.0.1", "ray": "2.60.0"}


def finnish_documents(shared: Path, count: int) -> list[str]:
    """`count` documents of 4–12 lines of real Finnish text (the UD and WMT test sets in ../shared)."""
    lines = [line.strip() for path in sorted((shared / "data" / "text" / "fi").glob("*.txt"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    documents, position = [], 0
    for index in range(count):
        size = 4 + index % 9
        chunk = [lines[(position + k) % len(lines)] for k in range(size)]
        position += size
        documents.append("\n".join(chunk))
    return documents


def _table(texts: list[str], dump: str, start: int, full: bool) -> pa.Table:
    n = len(texts)
    ids = [f"<urn:uuid:{dump}-{start + i:06d}>" for i in range(n)]
    columns = {
        "text": texts,
        "id": ids,
        "dump": [dump] * n,
        "url": [f"https://uutiset.example.fi/{dump}/{start + i}" for i in range(n)],
        "date": ["2024-05-18T01:58:10Z"] * n,
        "file_path": [f"s3://commoncrawl/crawl-data/{dump}/segments/1.0/warc/CC-MAIN-{i % 7:05d}.warc.gz"
                      for i in range(n)],
        "language": ["fin"] * n,
        "language_score": [0.70 + 0.29 * ((start + i) * 37 % 100) / 100 for i in range(n)],
        "language_script": ["Latn"] * n,
        "top_langs": [json.dumps({"fin_Latn_score": 0.9}) for _ in range(n)],
    }
    if full:
        sizes = [1 if i % 10 else 1 + (start + i) % 40 for i in range(n)]
        columns["minhash_cluster_size"] = pa.array(sizes, pa.int64())
        columns["quality_score"] = [((start + i) * 13 % 100) / 100 for i in range(n)]
        columns["perplexity"] = [200.0 + (start + i) * 7 % 900 for i in range(n)]
        columns["weight"] = pa.array([1 if s == 1 else 2 if s == 2 else 3 if s < 5 else 5 for s in sizes], pa.int32())
    return pa.table(columns)


@dataclass
class BuiltOutput:
    """An output root with one language; the numbers its stats and shards hold."""

    root: Path
    per_dump: dict[str, int]
    texts: list[str]
    weight_sum: int | None
    work_ids: set[str] = field(default_factory=set)

    @property
    def folder(self) -> Path:
        return self.root / CODE

    @property
    def documents(self) -> int:
        return sum(self.per_dump.values())

    @property
    def stats(self) -> dict:
        return json.loads((self.folder / "stats.json").read_text())

    @property
    def shards(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in (self.folder / "data").rglob("*.parquet"))


def build_output(root: Path, shared: Path, *, full: bool = True) -> BuiltOutput:
    """A finished run's output for fin_Latn; `full` adds dedup, rehydration, scores and weights."""
    total = sum(sum(sizes) for sizes in DUMPS.values())
    texts = finnish_documents(shared, total)
    folder = root / CODE
    per_dump: dict[str, int] = {}
    weight_sum = 0
    position = 0
    shards: dict[int, list] = {}
    for dump, sizes in DUMPS.items():
        for bucket, size in enumerate(sizes):
            shards.setdefault(bucket, []).append(_table(texts[position:position + size], dump, position, full))
            position += size
            per_dump[dump] = per_dump.get(dump, 0) + size
    (folder / "data").mkdir(parents=True)
    for bucket, tables in shards.items():
        table = pa.concat_tables(tables)
        pq.write_table(table, folder / "data" / f"{bucket:05d}-000.parquet", compression="zstd")
        if full:
            weight_sum += sum(table["weight"].to_pylist())
    # Stage files under _work/ share the schema and must never be read as the dataset or released.
    work = _table(finnish_documents(shared, 30), "CC-MAIN-2024-18", 900_000, full)
    (folder / "_work" / "stage3").mkdir(parents=True)
    pq.write_table(work, folder / "_work" / "stage3" / "fin_Latn-00000-0123456789.parquet")
    (folder / "_work" / "removed" / "stage3").mkdir(parents=True)
    pq.write_table(work, folder / "_work" / "removed" / "stage3" / "fin_Latn-00000-abcdef0123.parquet")
    removed = sum(STAGE3_RULES.values())
    stats = {
        "documents_per_second": 5.7,
        "documents_read": 5_210,
        "language": CODE,
        "language_mix": {"fin_Latn": total + removed + 3, "eng_Latn": 2_900, "swe_Latn": 700, "ekk_Latn": 311},
        "quarantined": [],
        "released": {"documents": total, "per_dump": dict(sorted(per_dump.items()))},
        "seconds": {"final": 0.22, "stage1": 17.08, "stage3": 0.41},
        "shared": {"lid.other_language": 3_911, "warc.binary": 4, "warc.corrupt_gzip": 1, "warc.http_status": 57,
                   "warc.not_html": 12, "warc.records": 5_400, "warc.responses": 5_300, "warc.too_large": 2,
                   "extract.empty": 14},
        "stage1": {"kept": total + removed + (DEDUP_REMOVED if full else 0), "lid.low_score": 3},
        "stage3": {"kept": total, **STAGE3_RULES},
    }
    if full:
        stats["dedup"] = {"documents": sum(int(k) * v for k, v in CLUSTER_SIZES.items()),
                          "minhash": {"histogram": CLUSTER_SIZES, "removed": DEDUP_REMOVED}}
        stats["rehydration"] = {"method": "fineweb2_fixed", "table": STEP_TABLE}
    (folder / "stats.json").write_text(json.dumps(stats, indent=1, sort_keys=True))
    _manifests(root, per_dump)
    return BuiltOutput(root, per_dump, texts, weight_sum if full else None,
                       set(work["id"].to_pylist()))


def _manifests(root: Path, per_dump: dict[str, int]) -> None:
    provenance = {"versions": VERSIONS, "git_commit": GIT_COMMIT,
                  "models": {"lid_model:ft176": LID_SHA, "word_tokenizer": CODE}}
    other = {"versions": {**VERSIONS, "curate": "0.0.9"}, "git_commit": OTHER_LANGUAGE_COMMIT, "models": {}}
    manifests = {
        "stage1/CC-MAIN-2024-18-000000-cb0ab80f.json": provenance,
        "stage1/CC-MAIN-2024-22-000000-e8fa7579.json": provenance,
        "stage3/fin_Latn-00000.json": provenance,
        "final/fin_Latn-00000.json": provenance,
        "final/swe_Latn-00000.json": other,  # another language of an earlier run in the same output root
    }
    for relative, recorded in manifests.items():
        path = root / "_work" / "manifests" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"stage": relative.split("/")[0], "unit": Path(relative).stem,
                                    "fingerprint": "f" * 24, "result": {}, "provenance": recorded,
                                    "committed": "2026-11-23T09:35:26"}))


# --- a fake Hugging Face Hub ------------------------------------------------------------------------------------
@dataclass
class Repo:
    private: bool
    branches: dict[str, dict[str, bytes]]


class FakeHub:
    """A loopback Hub: `repos` (id → branches → path → bytes), `requests` (method, path, headers), `commits`.

    `*.parquet` files are LFS files: preupload answers `lfs`, the LFS batch call hands out an upload URL for
    each object it does not hold, the bytes PUT there are checked against their sha256 and kept in
    `lfs_objects` (sha256 → bytes), and a commit names them by pointer (`lfsFile`). `lfs_batches` holds the
    batch requests (their `transfers`), `lfs_uploads` the sha256 of each upload received.
    Model repos put in `repos` are served for download (`snapshot_download`: revision, tree, and each file by
    HEAD and GET)."""

    SHA = "0123456789abcdef0123456789abcdef01234567"

    def __init__(self, fail_status: int | None = None):
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.commits: list[dict] = []
        self.created: list[dict] = []
        self.lfs_objects: dict[str, bytes] = {}
        self.lfs_batches: list[dict] = []
        self.lfs_uploads: list[str] = []
        self.squashed: list[dict] = []  # super-squash calls: branch, message
        self.fail_status = fail_status
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                    return self.rfile.read(int(self.headers.get("Content-Length") or 0))
                data = bytearray()
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    data += self.rfile.read(size)
                    self.rfile.readline()
                self.rfile.readline()  # the blank line after the last chunk
                return bytes(data)

            def do_PUT(self):
                hub.requests.append(("PUT", self.path, dict(self.headers)))
                body = self._body()
                parts = urlparse(self.path).path.strip("/").split("/")
                if parts[:1] != ["lfs-upload"] or hashlib.sha256(body).hexdigest() != parts[1]:
                    return self._send(400, {"error": "the uploaded bytes do not match their sha256"})
                hub.lfs_objects[parts[1]] = body
                hub.lfs_uploads.append(parts[1])
                self._send(200, {})

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_GET(self, head: bool = False):
                hub.requests.append(("HEAD" if head else "GET", self.path, dict(self.headers)))
                parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/")]
                if len(parts) >= 5 and parts[2] == "resolve":  # a model file: /owner/repo/resolve/rev/path
                    return self._file(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), head)
                if parts[:1] == ["api"] and parts[1:2] in (["datasets"], ["models"]) and len(parts) >= 6:
                    repo, revision = hub.repos.get(f"{parts[2]}/{parts[3]}"), parts[5]
                    if repo is None:
                        return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                    if revision == hub.SHA:
                        revision = "main"
                    if revision not in repo.branches:
                        return self._send(404, {"error": "Invalid rev id"}, {"X-Error-Code": "RevisionNotFound"})
                    if parts[4] == "tree":
                        return self._send(200, [{"type": "file", "path": p, "size": len(c), "oid": _git_hash(c)}
                                                for p, c in sorted(repo.branches[revision].items())])
                    if parts[4] == "revision":
                        return self._send(200, {"id": f"{parts[2]}/{parts[3]}", "sha": hub.SHA,
                                                "private": repo.private,
                                                "siblings": [{"rfilename": p} for p in sorted(repo.branches[revision])]})
                self._send(404, {"error": f"no route {self.path}"})

            def _file(self, repo_id: str, revision: str, path: str, head: bool) -> None:
                repo = hub.repos.get(repo_id)
                branch = repo.branches.get("main" if revision == hub.SHA else revision) if repo else None
                if branch is None or path not in branch:
                    return self._send(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                data = branch[path]
                self.send_response(200)
                for key, value in {"Content-Length": str(len(data)), "ETag": f'"{_git_hash(data)}"',
                                   "X-Repo-Commit": hub.SHA, "Content-Type": "application/octet-stream"}.items():
                    self.send_header(key, value)
                self.end_headers()
                if not head:
                    self.wfile.write(data)

            def do_POST(self):
                hub.requests.append(("POST", self.path, dict(self.headers)))
                body = self._body()
                if hub.fail_status:
                    return self._send(hub.fail_status, {"error": "Invalid credentials in Authorization header"})
                parts = [unquote(p) for p in urlparse(self.path).path.strip("/").split("/")]
                if parts == ["api", "repos", "create"]:
                    payload = json.loads(body)
                    hub.created.append(payload)
                    repo_id = f"{payload.get('organization') or 'user'}/{payload['name']}"
                    if repo_id in hub.repos:
                        return self._send(409, {"error": "You already created this dataset repo",
                                                "url": f"{hub.url}/datasets/{repo_id}"})
                    private = payload.get("visibility") == "private" or bool(payload.get("private"))
                    hub.repos[repo_id] = Repo(private,
                                              {"main": {".gitattributes": b"*.parquet filter=lfs\n"}})
                    return self._send(200, {"url": f"{hub.url}/datasets/{repo_id}"})
                if parts == ["api", "validate-yaml"]:
                    return self._send(200, {"errors": [], "warnings": []})
                if parts[:1] == ["datasets"] and parts[3:] == ["info", "lfs", "objects", "batch"]:
                    return self._lfs_batch(json.loads(body))
                if parts == ["lfs-verify"]:
                    known = json.loads(body)["oid"] in hub.lfs_objects
                    return self._send(200 if known else 404, {} if known else {"error": "object not uploaded"})
                if parts[:2] != ["api", "datasets"] or len(parts) < 6:
                    return self._send(404, {"error": f"no route {self.path}"})
                repo = hub.repos.get(f"{parts[2]}/{parts[3]}")
                action, revision = parts[4], "/".join(parts[5:])
                if repo is None:
                    return self._send(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if action == "branch":
                    if revision in repo.branches:
                        return self._send(409, {"error": "Reference already exists"})
                    repo.branches[revision] = dict(repo.branches["main"])
                    return self._send(200, {})
                if action == "super-squash":
                    if revision not in repo.branches:
                        return self._send(404, {"error": "Revision not found"}, {"X-Error-Code": "RevisionNotFound"})
                    hub.squashed.append({"revision": revision, "message": json.loads(body or b"{}").get("message")})
                    return self._send(200, {"commitId": hashlib.sha1(body).hexdigest()})
                if action == "preupload":
                    files = json.loads(body)["files"]
                    current = repo.branches.get(revision, {})
                    return self._send(200, {"files": [
                        {"path": f["path"], "uploadMode": "lfs" if _is_lfs(f["path"]) else "regular",
                         "shouldIgnore": False, "oid": _oid(f["path"], current[f["path"]]) if f["path"] in current
                         else None} for f in files]})
                if action == "commit":
                    lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
                    added = {item["value"]["path"]: base64.b64decode(item["value"]["content"])
                             for item in lines if item["key"] == "file"}
                    pointers = {item["value"]["path"]: item["value"]["oid"] for item in lines if item["key"] == "lfsFile"}
                    if any(oid not in hub.lfs_objects for oid in pointers.values()):
                        return self._send(422, {"error": "an LFS pointer names an object that was not uploaded"})
                    added |= {path: hub.lfs_objects[oid] for path, oid in pointers.items()}
                    deleted = [item["value"]["path"] for item in lines if item["key"] == "deletedFile"]
                    hub.commits.append({"revision": revision, "added": added, "deleted": deleted,
                                        "lfs": sorted(pointers), "query": parse_qs(urlparse(self.path).query)})
                    branch = repo.branches.setdefault(revision, {})
                    for path in deleted:
                        branch.pop(path, None)
                    branch.update(added)
                    return self._send(200, {"commitUrl": f"{hub.url}/datasets/{parts[2]}/{parts[3]}/commit/1",
                                            "commitOid": hashlib.sha1(body).hexdigest(), "pullRequestUrl": None})
                self._send(404, {"error": f"no route {self.path}"})

            def _lfs_batch(self, payload: dict) -> None:
                hub.lfs_batches.append(payload)
                for repo in hub.repos.values():  # content-addressed: a file already in a repo is held
                    hub.lfs_objects |= {hashlib.sha256(data).hexdigest(): data for branch in repo.branches.values()
                                        for path, data in branch.items() if _is_lfs(path)}
                objects = []
                for item in payload["objects"]:
                    answer = {"oid": item["oid"], "size": item["size"]}
                    if item["oid"] not in hub.lfs_objects:  # no actions: the Hub already holds it
                        answer["actions"] = {"upload": {"href": f"{hub.url}/lfs-upload/{item['oid']}"},
                                             "verify": {"href": f"{hub.url}/lfs-verify"}}
                    objects.append(answer)
                self._send(200, {"transfer": "basic", "objects": objects})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.server.server_close()

    def files(self, repo_id: str, branch: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id].branches[branch]


def _is_lfs(path: str) -> bool:
    return path.endswith(".parquet")


def _oid(path: str, data: bytes) -> str:
    """What the Hub reports as a file's oid: the sha256 of an LFS file's content, the git blob hash of others."""
    return hashlib.sha256(data).hexdigest() if _is_lfs(path) else _git_hash(data)


def _git_hash(data: bytes) -> str:
    return hashlib.sha1(b"blob " + str(len(data)).encode() + b"\0" + data).hexdigest()
