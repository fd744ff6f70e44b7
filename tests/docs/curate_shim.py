"""`curate` as the doc runner puts it on PATH: the documented placeholders filled in, then the real command.

`curate run` and `curate snapshots` without `--source` read the test mirror (`DOC_TEST_MIRROR`); `curate run`
without `--lid` uses `ft176`. A `curate run` (not `--dry-run`) into a local output that does not exist yet, with
the same arguments (the output's name aside) as one an earlier page ran gets a copy of that run's finished output
and its stdout (`DOC_TEST_CACHE`): a run is deterministic, so pages that share the canonical run pay for it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


def substituted(args: list[str]) -> list[str]:
    args = list(args)
    given = {a.split("=", 1)[0] for a in args}
    if args and args[0] in ("run", "snapshots") and "--source" not in given:
        args += ["--source", os.environ["DOC_TEST_MIRROR"]]
    if args and args[0] == "run" and "--lid" not in given:
        args += ["--lid", "ft176"]
    return args


def split_output(args: list[str]) -> tuple[str, list[str]]:
    """The output of a `curate run` and its other arguments."""
    output, rest = "out", []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
        elif arg == "--output" and index + 1 < len(args):
            output, skip = args[index + 1], True
        elif arg.startswith("--output="):
            output = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return output, rest


def main() -> int:
    args = substituted(sys.argv[1:])
    command = [sys.executable, "-m", "curate", *args]
    name, rest = split_output(args)
    output = Path(name)
    cache_root = os.environ.get("DOC_TEST_CACHE")
    if not args or args[0] != "run" or "--dry-run" in args or "://" in name or cache_root is None or output.exists():
        return subprocess.call(command)
    cached = Path(cache_root) / hashlib.sha256(json.dumps(rest).encode()).hexdigest()[:16]
    if (cached / "stdout").is_file():
        shutil.copytree(cached / "output", output)
        sys.stdout.write((cached / "stdout").read_text().replace("{OUTPUT}", name))
        return 0
    result = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(result.stdout)
    if result.returncode == 0:
        partial = cached.with_suffix(".partial")
        shutil.copytree(output, partial / "output")
        (partial / "stdout").write_text(result.stdout.replace(f" {name}/", " {OUTPUT}/"))
        partial.rename(cached)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
