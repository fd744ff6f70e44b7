"""Stage-3 formatters: text fix-ups on kept documents, after the filters (FineWeb2's "final touches").

Each rewrites `text` in place and is switched on by its section of the config's `formatters:` (null = off):
`fix_text` (ftfy encoding repair), `pii` (e-mail and public IP replacement), `table_artifacts` (lines made
only of table-border symbols, which trafilatura leaves behind). They use datatrove's formatters' settings and
patterns, so their output equals FineWeb2's, except that PII replacements restart with the first one in every
document (datatrove cycles across a worker's whole stream, which makes output depend on batching).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import pyarrow as pa

from curate.blocks.base import Block, set_column
from curate.language_configs.filters import FixTextConfig, FormattersConfig, PiiConfig, TableArtifactsConfig


def _map_text(batch: pa.Table, function) -> pa.Table:
    texts = [function(text) if text else text for text in batch["text"].to_pylist()]
    return set_column(batch, "text", pa.array(texts, pa.string()))


@cache
def _ftfy_config(settings: FixTextConfig):
    from ftfy import TextFixerConfig

    # datatrove's FTFYFormatter defaults, with the switchable ones from the config
    return TextFixerConfig(
        unescape_html="auto", remove_terminal_escapes=True, fix_encoding=True, restore_byte_a0=True,
        replace_lossy_sequences=True, decode_inconsistent_utf8=True, fix_c1_controls=True,
        fix_latin_ligatures=settings.fix_latin_ligatures, fix_character_width=settings.fix_character_width,
        uncurl_quotes=settings.uncurl_quotes, fix_line_breaks=settings.fix_line_breaks, fix_surrogates=True,
        remove_control_chars=True, normalization=settings.normalization,
    )


@dataclass
class FixText(Block):
    """Repairs mojibake and encoding damage in `text` with ftfy (datatrove's `FTFYFormatter` settings)."""

    settings: FixTextConfig
    name = "fix_text"
    reads = ("text",)
    writes = ("text",)

    def check(self) -> None:
        _ftfy_config(self.settings)

    def apply(self, batch: pa.Table) -> pa.Table:
        import ftfy

        config = _ftfy_config(self.settings)
        return _map_text(batch, lambda text: ftfy.fix_text(text, config=config))


@cache
def _pii_patterns() -> tuple[re.Pattern, re.Pattern]:
    from datatrove.pipeline.formatters.pii import PIIFormatter

    formatter = PIIFormatter()
    return formatter.emails_replacer.regex, formatter.ip_replacer.regex


def _is_public_ip(text: str) -> bool:
    from datatrove.pipeline.formatters.pii import public_ip_validator

    return public_ip_validator(text, public_only=True)


def _replace_cycling(pattern: re.Pattern, text: str, replacements: list[str], keep=None) -> str:
    position = 0

    def replacement(match: re.Match) -> str:
        nonlocal position
        if keep is not None and keep(match.group(0)):
            return match.group(0)
        value = replacements[position % len(replacements)]
        position += 1
        return value

    return pattern.sub(replacement, text)


@dataclass
class ReplacePii(Block):
    """Replaces e-mail addresses and public IPv4 addresses in `text` (datatrove's `PIIFormatter` patterns)."""

    settings: PiiConfig
    name = "pii"
    reads = ("text",)
    writes = ("text",)

    def format(self, text: str) -> str:
        email, ip = _pii_patterns()
        if self.settings.replace_emails:
            text = _replace_cycling(email, text, self.settings.email_replacements)
        if self.settings.replace_public_ips:
            text = _replace_cycling(ip, text, self.settings.ip_replacements, keep=lambda t: not _is_public_ip(t))
        return text

    def apply(self, batch: pa.Table) -> pa.Table:
        return _map_text(batch, self.format)


@cache
def _symbol_lines_formatter(symbols: tuple[str, ...], replace_with: str):
    from datatrove.pipeline.formatters.symbol_lines_remover import SymbolLinesFormatter

    return SymbolLinesFormatter(symbols_to_remove=list(symbols), replace_char=replace_with)


@dataclass
class RemoveTableArtifacts(Block):
    """Removes lines of `text` made only of table-border symbols (`|` by default) and spaces; a run of them
    becomes `replace_with` (datatrove's `SymbolLinesFormatter`, as FineWeb2 runs it)."""

    settings: TableArtifactsConfig
    name = "table_artifacts"
    reads = ("text",)
    writes = ("text",)

    def apply(self, batch: pa.Table) -> pa.Table:
        formatter = _symbol_lines_formatter(tuple(self.settings.symbols), self.settings.replace_with)
        return _map_text(batch, formatter.format)


def formatter_blocks_of(formatters: FormattersConfig) -> list[Block]:
    """The switched-on formatters of a `FormattersConfig`, in FineWeb2's order."""
    blocks: list[Block] = []
    if formatters.fix_text is not None:
        blocks.append(FixText(formatters.fix_text))
    if formatters.pii is not None:
        blocks.append(ReplacePii(formatters.pii))
    if formatters.table_artifacts is not None:
        blocks.append(RemoveTableArtifacts(formatters.table_artifacts))
    return blocks
