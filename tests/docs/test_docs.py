"""Every command and Python example of README.md and docs/*.md runs as written (docs/python-api.md#tested-docs).

Blocks of a page run in order in one folder of their own (a session: later blocks use earlier outputs), next
to a `shared` link to ../shared, with only the documented placeholders filled in: the test mirror for
`--source` and `--lid ft176` (`curate_shim.py`, first on PATH), a moto S3 server (`AWS_ENDPOINT_URL`), the
loopback Hub for `curate release`, and, for docs/cluster.md, a network namespace with only loopback where
`ray start` gets `--node-ip-address=127.0.0.1`. A block fails the test unless the page marks it
`<!-- doc-test: skip REASON -->`; the output a page promises after a block is checked.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from doc_blocks import (
    REPO,
    Block,
    blocks,
    console_commands,
    pages,
    promised_lines_missing,
    untagged_commands,
)

sys.path.insert(0, str(REPO / "tests" / "pipeline"))

from card_helpers import FakeHub  # noqa: E402
from cluster_helpers import _namespace_inode, kill_network_namespace  # noqa: E402
from mirror import SHARED, build_index, build_mirror  # noqa: E402

BLOCK_TIMEOUT = 600
HF_TOKEN = "hf_DocTestToken0123456789"
RAY_NAMESPACE_ENV = {  # docs/cluster.md: multi-node Ray on loopback, only inside the namespace
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_agent_register_timeout_ms": "300000",  # a loaded 2-core test machine starts agents slowly
}
MOTO_PORT = 5123


def runnable_pages() -> list[str]:
    return [str(p.relative_to(REPO)) for p in pages() if any(b.skip is None for b in blocks(p))]


def test_every_command_block_is_tagged_and_every_marker_is_valid():
    """A command in an untagged block would never run; a marker must name a known reason (blocks() checks)."""
    assert [b for p in pages() for b in blocks(p)], "the runner finds the pages' blocks"
    assert [u for p in pages() for u in untagged_commands(p)] == []


def test_markers_and_promised_output_are_read_as_documented(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("Intro\n\n<!-- doc-test: skip gpu -->\n```bash\nnvidia-smi\n```\n\n```python\nprint(1)\n```\n"
                    "```text\nfound … here\n```\n\n```\ncurate run --lang fin\n```\n")
    found = blocks(page)
    assert [(b.lang, b.skip, b.expected) for b in found] == [("bash", "gpu", None),
                                                             ("python", None, "found … here\n")]
    assert untagged_commands(page) == [f"{page}:15"]
    assert promised_lines_missing("a … c\nd", "x\na b c\nd e") == []
    assert promised_lines_missing("d\na … c", "a b c\nd") == ["a … c"], "in order"
    page.write_text("<!-- doc-test: skip because -->\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="bad marker"):
        blocks(page)


@pytest.fixture(scope="module")
def doc_root(tmp_path_factory) -> Path:
    """A folder with `shared` (../shared), `bin/` (the `curate` shim, python, ray), the mirror with its index."""
    root = tmp_path_factory.mktemp("docs")
    (root / "shared").symlink_to(SHARED)
    mirror = build_mirror(root / "mirror")
    build_index(mirror)
    bin_folder = root / "bin"
    bin_folder.mkdir()
    shim = bin_folder / "curate"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {REPO / 'tests' / 'docs' / 'curate_shim.py'} \"$@\"\n")
    shim.chmod(0o755)
    python = bin_folder / "python"  # a script, not a link: the virtualenv is found from the interpreter's own path
    python.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    python.chmod(0o755)
    ray = shutil.which("ray", path=f"{Path(sys.executable).parent}{os.pathsep}{Path(sys.executable).resolve().parent}")
    assert ray, "Ray's command line"
    (bin_folder / "ray").symlink_to(ray)
    (root / "cache").mkdir()
    return root


@pytest.fixture(scope="module")
def moto_endpoint():
    """S3 in moto, with the empty bucket `bucket` the pages write to."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket="bucket")
    yield endpoint
    server.stop()


@pytest.fixture(scope="module")
def hub():
    hub = FakeHub()
    with hub:
        yield hub


def page_env(doc_root: Path, moto_endpoint: str, hub: FakeHub) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "PYTEST", "COV_"))}
    env.update({
        "PATH": f"{doc_root / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "DOC_TEST_MIRROR": str(doc_root / "mirror"), "DOC_TEST_CACHE": str(doc_root / "cache"),
        "AWS_ENDPOINT_URL": moto_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HF_ENDPOINT": hub.url, "HF_TOKEN": HF_TOKEN, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
        "PYTHONUNBUFFERED": "1",
    })
    return env


class LoopbackNamespace:
    """A network namespace with only loopback (held by a sleeping process); every process in it is stopped by pid."""

    def __init__(self):
        holder = ["unshare", "-n", "sh", "-c", "ip link set lo up && echo up && exec sleep 86400"]
        self.holder = subprocess.Popen(holder, stdout=subprocess.PIPE, text=True)
        assert self.holder.stdout.readline().strip() == "up"
        self.net = _namespace_inode(self.holder.pid, "net")

    def command(self, args: list[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", "--", *args]

    def stop(self) -> None:
        kill_network_namespace(self.net, rounds=5)
        self.holder.wait(30)


def cluster_page_setup(namespace: LoopbackNamespace, env: dict[str, str], folder: Path) -> None:
    """docs/cluster.md: Ray on loopback in the namespace, its own temp folder, and moto inside it too."""
    env.update(RAY_NAMESPACE_ENV)
    env.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)})  # as on a real cluster
    env["RAY_TMPDIR"] = f"/tmp/dt-{os.getpid()}"  # short: Ray's socket paths
    env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{MOTO_PORT}"
    log = (folder / "moto.log").open("w")
    subprocess.Popen(namespace.command([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(MOTO_PORT)]),
                     env=env, stdout=log, stderr=subprocess.STDOUT)
    create = ("import time, boto3\nfor _ in range(120):\n    try:\n"
              "        boto3.client('s3').create_bucket(Bucket='bucket'); break\n"
              "    except Exception:\n        time.sleep(0.5)\nelse:\n    raise SystemExit('moto did not start')\n")
    subprocess.run(namespace.command([sys.executable, "-c", create]), env=env, check=True, timeout=120)


def substituted(block: Block, code: str, doc_root: Path) -> str:
    """The documented placeholders a block's text gets (the rest comes from PATH and the environment)."""
    if block.lang == "python" and "RunOptions(" in code and "source=" not in code:
        code = code.replace("RunOptions(", f"RunOptions(source={str(doc_root / 'mirror')!r}, ", 1)
    if block.page == "docs/cluster.md":
        code = re.sub(r"\bray start\b", "ray start --node-ip-address=127.0.0.1", code)
    return code


def run_block(block: Block, folder: Path, env: dict[str, str], doc_root: Path,
              namespace: LoopbackNamespace | None) -> tuple[subprocess.CompletedProcess, str | None]:
    code, expected = block.code, block.expected
    if block.lang == "console":
        code, inline = console_commands(code)
        expected = "\n".join(filter(None, [inline.strip(), expected]))
    code = substituted(block, code, doc_root)
    args = [sys.executable, "-c", code] if block.lang == "python" else ["bash", "-e", "-o", "pipefail", "-c", code]
    if namespace is not None:
        args = namespace.command(args)
    result = subprocess.run(args, cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            timeout=BLOCK_TIMEOUT)  # one stream, in the order the lines came
    return result, expected or None


@pytest.mark.parametrize("page", runnable_pages())
def test_page_runs_as_written(page, doc_root, moto_endpoint, hub):
    folder = doc_root / page.replace("/", "_").removesuffix(".md")
    folder.mkdir()
    env = page_env(doc_root, moto_endpoint, hub)
    namespace = LoopbackNamespace() if page == "docs/cluster.md" else None
    try:
        if namespace is not None:
            cluster_page_setup(namespace, env, folder)
        for block in blocks(REPO / page):
            if block.skip:
                continue
            result, expected = run_block(block, folder, env, doc_root, namespace)
            transcript = f"{block.where} ({block.lang})\n--- output\n{result.stdout[-6000:]}"
            fails = bool(expected) and expected.strip().startswith("error:")  # a promised one-line error: exit 2
            assert result.returncode == (2 if fails else 0), f"exit code {result.returncode}: {transcript}"
            if expected:
                missing = promised_lines_missing(expected, result.stdout)
                assert not missing, f"promised output missing {missing}: {transcript}"
    finally:
        if namespace is not None:
            namespace.stop()
            shutil.rmtree(env["RAY_TMPDIR"], ignore_errors=True)
