"""The code blocks of README.md and docs/*.md: what the doc runner executes, with its markers and promised output.

A fenced block tagged `bash`, `sh`, `console` or `python` is runnable. An HTML comment right before it
(`<!-- doc-test: skip REASON -->`) is the only way to keep one from running; REASON is one of `SKIP_REASONS`.
An untagged or `text` block right after a runnable one (nothing but blank lines between) is the output the
page promises: each of its lines must appear in the command's output, in order, `…` standing for any text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNNABLE = ("bash", "sh", "console", "python")
OUTPUT = ("", "text")
SKIP_REASONS = {
    "gpu": "needs a GPU",
    "internet": "needs the internet (Common Crawl over HTTPS, PyPI)",
    "hub": "needs the real Hugging Face Hub (a model or a token)",
    "system": "installs system packages or runs the whole suite (make)",
    "long": "runs for many minutes (a benchmark, a real-size training run)",
}
FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"<!--\s*doc-test:\s*(.*?)\s*-->\s*$", re.S)
COMMAND_START = re.compile(r"^\s*(\$ )?(curate|python|pip|ray|make|\.venv/)\b")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository
    line: int  # of the opening fence
    lang: str
    code: str
    skip: str | None  # the marker's reason
    expected: str | None  # the output block that follows, if any

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def parse_marker(before: str, where: str) -> str | None:
    """The skip reason of the marker that ends `before` (the text between the previous block and this one)."""
    match = MARKER.search(before)
    if not match:
        return None
    words = match.group(1).split()
    if len(words) != 2 or words[0] != "skip" or words[1] not in SKIP_REASONS:
        raise ValueError(f"{where}: bad marker {match.group(0)!r}; write <!-- doc-test: skip REASON --> with "
                         f"REASON one of {', '.join(SKIP_REASONS)}")
    return words[1]


def blocks(page: Path) -> list[Block]:
    """Every fenced block of `page` that runs (or is marked), in order, with the output block after it."""
    text = page.read_text(encoding="utf-8")
    relative = str(page.relative_to(REPO)) if page.is_relative_to(REPO) else str(page)
    fences = list(FENCE.finditer(text))
    found: list[Block] = []
    for index, fence in enumerate(fences):
        lang = fence.group(1).lower()
        if lang not in RUNNABLE:
            continue
        line = text.count("\n", 0, fence.start()) + 1
        previous_end = fences[index - 1].end() if index else 0
        skip = parse_marker(text[previous_end:fence.start()], f"{relative}:{line}")
        expected = None
        if index + 1 < len(fences):
            following = fences[index + 1]
            if following.group(1).lower() in OUTPUT and not text[fence.end():following.start()].strip():
                expected = following.group(2)
        found.append(Block(relative, line, lang, fence.group(2), skip, expected))
    return found


def untagged_commands(page: Path) -> list[str]:
    """Untagged blocks that start like a command (a command must be tagged, so that it runs or is marked)."""
    text = page.read_text(encoding="utf-8")
    found = []
    fences = list(FENCE.finditer(text))
    for index, fence in enumerate(fences):
        previous = fences[index - 1] if index else None
        follows_command = (previous is not None and previous.group(1).lower() in RUNNABLE
                           and not text[previous.end():fence.start()].strip())
        if fence.group(1) in OUTPUT and not follows_command and COMMAND_START.match(fence.group(2)):
            name = page.relative_to(REPO) if page.is_relative_to(REPO) else page
            found.append(f"{name}:{text.count(chr(10), 0, fence.start()) + 1}")
    return found


def promised_lines_missing(expected: str, output: str) -> list[str]:
    """The lines of `expected` (`…`: any text) that do not appear in `output` in order; [] when all do."""
    lines = output.splitlines()
    position = 0
    missing = []
    for wanted in (line.strip() for line in expected.splitlines()):
        if not wanted:
            continue
        pattern = re.compile(".*".join(re.escape(part) for part in wanted.split("…")))
        for offset, line in enumerate(lines[position:]):
            if pattern.search(line):
                position += offset + 1
                break
        else:
            missing.append(wanted)
    return missing


def console_commands(code: str) -> tuple[str, str]:
    """A `console` block: its commands (lines after `$ `, with continuations) and the output lines between."""
    commands, output = [], []
    continuing = False
    for line in code.splitlines():
        if line.startswith("$ ") or continuing:
            command = line[2:] if line.startswith("$ ") and not continuing else line
            commands.append(command)
            continuing = command.rstrip().endswith("\\")
        else:
            output.append(line)
    return "\n".join(commands), "\n".join(output)
