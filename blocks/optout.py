"""Opt-outs honoured at processing time: robots.txt of the crawl, the TDM Reservation Protocol, takedown lists.

- `RobotsOptOut` (stage 1): a page whose URL the host's robots.txt disallows for ANY of the configured user
  agents is dropped (`optout.robots`); each agent is judged by `protego` with the group that applies to it
  under RFC 9309 (its own group, else `*`). A host whose robots.txt answered 5xx, or could not be read, is a
  complete disallow (`optout.robots_unreachable`, counted apart). Rules come from the run's host table
  (`curate.pipeline.sources.robots`), read per batch from only the partitions and row groups of its hosts.
- `TdmOptOut` (stage 1): a `tdm-reservation: 1` response header or `<meta name="tdm-reservation" content="1">`
  in the page's head (W3C TDM Reservation Protocol) → `optout.tdm`; the `tdm-policy` URL, if any, goes into the
  audit row as `tdm_policy`.
- `ListOptOut` (stage 3): a page whose host is (or is under) a listed domain, or whose URL starts with a listed
  URL prefix → `optout.list`.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curate.blocks.base import Block, mark_dropped, set_column
from curate.files import FileRoot

# Crawlers whose robots.txt groups sites use to refuse AI training or dataset collection (see docs/optout.md).
DEFAULT_AGENTS = ("CCBot", "GPTBot", "Google-Extended", "ClaudeBot", "anthropic-ai", "Claude-Web", "Applebot-Extended",
                  "meta-externalagent", "FacebookBot", "Bytespider", "cohere-ai", "cohere-training-data-crawler",
                  "PerplexityBot", "Amazonbot", "AI2Bot", "Diffbot", "omgili", "Timpibot", "ImagesiftBot")
HTTP_TDM_RESERVATION = "http_tdm_reservation"  # the response header as the WARC recorded it (transient)
HTTP_TDM_POLICY = "http_tdm_policy"
TDM_POLICY = "tdm_policy"
HEAD_CHARS = 32_768  # the page head the meta tags are looked for in
META_TAG = re.compile(r"<meta\b[^>]*>", re.IGNORECASE)
ATTRIBUTE = re.compile(r"""([a-zA-Z_:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
COMMENT = re.compile(r"(?:^|\s)#")  # a list line's comment
HOST_CACHE = 65_536  # hosts whose rules a worker keeps between batches
PARSER_CACHE = 4_096  # parsed robots.txt files (by digest) a worker keeps
FILE_CACHE = 256  # host-table partition files a worker keeps open


# --- robots.txt --------------------------------------------------------------------------------------------------

ALLOW, DISALLOW, RULES = "allow", "disallow", "rules"  # a host's kind in the table
DEFAULT_PORTS = {"http": 80, "https": 443}


def host_key(url: str) -> str | None:
    """`scheme://host:port` of an http(s) URL, lowercased, the default port written out; None if it has none."""
    try:
        parts = urlsplit(url.strip())
        scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
    except (ValueError, AttributeError):
        return None
    if scheme not in DEFAULT_PORTS or not host:
        return None
    return f"{scheme}://{host.rstrip('.')}:{port or DEFAULT_PORTS[scheme]}"


def partition_of(hosts: list[str], partitions: int) -> np.ndarray:
    """The host-hash partition of each host key (stable across processes and machines)."""
    return np.fromiter((int.from_bytes(hashlib.blake2b(h.encode(), digest_size=8).digest(), "little") % partitions
                        for h in hosts), dtype=np.int64, count=len(hosts))


def partition_name(partition: int) -> str:
    return f"part-{partition:05d}.parquet"


def lookup(output: FileRoot, directory: str, hosts: list[str], partitions: int) -> dict[str, dict]:
    """Rows of `hosts` in a partitioned host table under `directory` (reads only their partitions, filtered)."""
    found: dict[str, dict] = {}
    parts = partition_of(hosts, partitions)
    for partition in np.unique(parts):
        wanted = [h for h, p in zip(hosts, parts) if p == partition]
        path = output.path(directory, partition_name(int(partition)))
        if not output.fs.exists(path):
            continue
        rows = pq.read_table(path, filesystem=output.fs, filters=[("host", "in", wanted)])
        for row in rows.to_pylist():
            found[row["host"]] = row
    return found


def _row_group_bounds(handle: pq.ParquetFile) -> tuple[list, list] | None:
    """(first host, last host) of each row group from the footer's statistics; None if one has none."""
    meta = handle.metadata
    column = handle.schema_arrow.get_field_index("host")
    firsts, lasts = [], []
    for index in range(meta.num_row_groups):
        stats = meta.row_group(index).column(column).statistics
        if stats is None or not stats.has_min_max:
            return None
        firsts.append(stats.min)
        lasts.append(stats.max)
    return firsts, lasts


def _open_partition(root: FileRoot, path: str):
    if not root.fs.exists(path):
        return None
    handle = pq.ParquetFile(root.fs.open(path, "rb"))
    return handle, _row_group_bounds(handle)


def lookup_sorted(root: FileRoot, directory: str, hosts: list[str], partitions: int) -> dict[str, dict]:
    """Like `lookup`, for a table sorted by host: the partition files stay open per worker (their footers read
    once), and only the row groups whose host range holds a wanted host are read."""
    import bisect

    import pyarrow.compute as pc

    found: dict[str, dict] = {}
    parts = partition_of(hosts, partitions)
    for partition in np.unique(parts):
        wanted = sorted(h for h, p in zip(hosts, parts) if p == partition)
        path = root.path(directory, partition_name(int(partition)))
        entry = _FILES.get_or(path, lambda path=path: _open_partition(root, path))
        if entry is None:
            continue
        handle, bounds = entry
        if bounds is None:
            groups = list(range(handle.metadata.num_row_groups))
        else:
            firsts, lasts = bounds  # row groups are sorted, without overlap: a host is in at most one
            groups = sorted({i for h in wanted if (i := bisect.bisect_right(firsts, h) - 1) >= 0 and h <= lasts[i]})
        if not groups:
            continue
        table = handle.read_row_groups(groups)
        table = table.filter(pc.is_in(table["host"], value_set=pa.array(wanted, pa.string())))
        for row in table.to_pylist():
            found[row["host"]] = row
    return found


class _Lru(OrderedDict):
    """A bounded dict: the least recently used entry leaves first."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or(self, key, make):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = self[key] = make()
        if len(self) > self.size:
            self.popitem(last=False)
        return value


_HOSTS: dict[str, _Lru] = {}  # table fingerprint → host → (kind, digest); per worker process
_PARSERS = _Lru(PARSER_CACHE)  # rules digest → Robots
_FILES = _Lru(FILE_CACHE)  # partition file → (open ParquetFile, row groups' host ranges)
USER_AGENT_LINE = re.compile(r"^\s*user-agent\s*:\s*([^#\s]+)", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Robots:
    """One robots.txt parsed by protego, and the product tokens it has groups for (lowercase)."""

    parser: object
    groups: frozenset[str]

    @classmethod
    def parse(cls, rules: str) -> Robots:
        from protego import Protego

        return cls(Protego.parse(rules), frozenset(m.lower() for m in USER_AGENT_LINE.findall(rules)))

    def allowed(self, url: str, agent: str) -> bool:
        """RFC 9309 2.2.1: the group whose product token equals `agent` (case-insensitive), else the `*` group,
        else allow. protego picks the group by its longest token found inside the agent string (a `Google`
        group would apply to `Google-Extended`), so an agent without a group of its own asks as `*`."""
        return self.parser.can_fetch(url, agent if agent.lower() in self.groups else "*")


def _parser(digest: str, rules: str) -> Robots:
    return _PARSERS.get_or(digest, lambda: Robots.parse(rules))


@dataclass
class RobotsOptOut(Block):
    """Drops pages that the newest robots.txt of their host (in the run's host table) disallows for any agent."""

    name = "optout"
    reads = ("url",)
    writes = ("drop_reason",)
    output: str = ""  # the output root the table is under
    directory: str = ""  # the table, relative to `output`
    partitions: int = 1
    table_fingerprint: str = ""
    agents: tuple[str, ...] = DEFAULT_AGENTS

    def check(self) -> None:
        """The table must be readable where the block runs (the output is shared by every node)."""
        from curate.errors import UserError

        root = FileRoot(self.output)
        if not root.fs.exists(root.path(self.directory, "_SUCCESS.json")):
            raise UserError(f"the robots.txt host table {self.output}/{self.directory} cannot be read here: the "
                            "output must be reachable from every node")

    def fingerprint(self) -> object:
        """The agents and the table's contents, not where the output is."""
        return ("robots", self.agents, self.table_fingerprint, self.partitions)

    def provenance(self) -> dict[str, str]:
        return {"robots_table": self.table_fingerprint}

    def _rules(self, hosts: list[str]) -> dict[str, tuple[str, str]]:
        """host → (kind, digest), from the worker's cache or the table; the parsers of new digests are cached."""
        cache = _HOSTS.setdefault(self.table_fingerprint, _Lru(HOST_CACHE))
        missing = sorted({h for h in hosts if h not in cache})
        if missing:
            found = lookup_sorted(FileRoot(self.output), self.directory, missing, self.partitions)
            for host in missing:
                row = found.get(host)
                entry = ("allow", "") if row is None else (row["kind"], row["digest"])
                if row is not None and row["digest"]:
                    _parser(row["digest"], row["rules"])
                cache.get_or(host, lambda entry=entry: entry)
        return {h: cache.get_or(h, lambda: ("allow", "")) for h in set(hosts)}

    def apply(self, batch: pa.Table) -> pa.Table:
        urls = [u or "" for u in batch["url"].to_pylist()]
        hosts = [host_key(u) for u in urls]
        rules = self._rules([h for h in hosts if h])
        disallowed = np.zeros(len(urls), bool)
        unreachable = np.zeros(len(urls), bool)
        for i, (url, host) in enumerate(zip(urls, hosts)):
            if host is None:
                continue
            kind, digest = rules[host]
            if kind == DISALLOW:
                unreachable[i] = True
            elif kind == RULES and digest:
                parser = _PARSERS.get(digest)
                if parser is None:  # evicted since the lookup: read the host again
                    _HOSTS[self.table_fingerprint].pop(host, None)
                    kind, digest = self._rules([host])[host]
                    parser = _PARSERS[digest]
                disallowed[i] = any(not parser.allowed(url, agent) for agent in self.agents)
        batch = mark_dropped(batch, unreachable, f"{self.name}.robots_unreachable")
        return mark_dropped(batch, disallowed, f"{self.name}.robots")


# --- TDM Reservation Protocol ------------------------------------------------------------------------------------

def _reserved(value: str | None) -> bool:
    """TDMRep: the reservation holds for the value 1 (whitespace and case aside); 0 or anything else does not."""
    return value is not None and value.strip() == "1"


def tdm_meta(html: str) -> tuple[str | None, str | None]:
    """(`tdm-reservation`, `tdm-policy`) of the page's `<meta name=… content=…>` tags, read in its head only."""
    head = html[:HEAD_CHARS]
    end = head.lower().find("</head")
    if end >= 0:
        head = head[:end]
    if "tdm-" not in head.lower():
        return None, None
    found: dict[str, str] = {}
    for tag in META_TAG.findall(head):
        attributes = {m[0].lower(): next((v for v in m[1:] if v), "") for m in ATTRIBUTE.findall(tag)}
        name = attributes.get("name", "").strip().lower()
        if name in ("tdm-reservation", "tdm-policy") and "content" in attributes:
            found.setdefault(name, attributes["content"].strip())
    return found.get("tdm-reservation"), found.get("tdm-policy")


@dataclass
class TdmOptOut(Block):
    """Drops pages that reserve text-and-data-mining rights (TDMRep header or meta tag): `optout.tdm`."""

    name = "optout"
    reads = ("html",)
    writes = ("drop_reason", TDM_POLICY)

    def apply(self, batch: pa.Table) -> pa.Table:
        headers = (batch[HTTP_TDM_RESERVATION].to_pylist() if HTTP_TDM_RESERVATION in batch.column_names
                   else [None] * batch.num_rows)
        header_policies = (batch[HTTP_TDM_POLICY].to_pylist() if HTTP_TDM_POLICY in batch.column_names
                           else [None] * batch.num_rows)
        reserved, policies = [], []
        for html, header, header_policy in zip(batch["html"].to_pylist(), headers, header_policies):
            if header is not None:  # the header, when sent, is the answer (TDMRep: HTTP takes precedence)
                meta_policy = None
                flag = _reserved(header)
            else:
                value, meta_policy = tdm_meta(html or "")
                flag = _reserved(value)
            reserved.append(flag)
            policies.append((header_policy or meta_policy) if flag else None)
        batch = set_column(batch, TDM_POLICY, pa.array(policies, pa.string()))
        return mark_dropped(batch, np.array(reserved, bool), f"{self.name}.tdm")


# --- takedown / opt-out lists -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class OptOutList:
    """One list as read: where it came from, its entries (normalised) and a digest of them."""

    source: str
    entries: tuple[str, ...]

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.entries).encode()).hexdigest()[:16]


def normal_url(url: str) -> str:
    """`url` with its scheme and host lowercased (what URL prefixes are compared on)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.strip()
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, parts.fragment))


def normalise_entry(line: str) -> str | None:
    """A list line as matched: `domain.tld` / `host.domain.tld` (lowercase, no trailing dot) or an http(s) URL
    prefix (scheme and host lowercase); None for a blank or comment line. A comment starts with `#` at the
    start of the line or after a space (a `#` inside a URL is its fragment)."""
    line = COMMENT.split(line, maxsplit=1)[0].strip()
    if not line:
        return None
    if line.lower().startswith(("http://", "https://")):
        return normal_url(line)
    return line.lower().rstrip(".").removeprefix("*.")


def parse_list(source: str, text: str) -> OptOutList:
    entries = sorted({e for e in (normalise_entry(line) for line in text.splitlines()) if e})
    return OptOutList(source, tuple(entries))


def read_list(location: str) -> OptOutList:
    """A list from a local file or an fsspec URL (`https://…`, `s3://…`)."""
    import fsspec

    from curate.errors import UserError

    try:
        with fsspec.open(location, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except (OSError, ValueError) as error:
        raise UserError(f"cannot read the opt-out list {location} ({type(error).__name__}: {error})") from None
    return parse_list(location, text)


@dataclass
class ListOptOut(Block):
    """Drops pages whose host is a listed domain or under one, or whose URL starts with a listed prefix."""

    name = "optout"
    reads = ("url",)
    writes = ("drop_reason",)
    before_dedup = True
    domains: frozenset[str] = field(default_factory=frozenset, repr=False)
    prefixes: tuple[str, ...] = field(default=(), repr=False)
    digest: str = ""  # of every list's entries: what the stage-3 fingerprint sees

    @classmethod
    def from_lists(cls, lists: list[OptOutList]) -> ListOptOut:
        entries = sorted({e for item in lists for e in item.entries})
        prefixes = tuple(e for e in entries if e.startswith(("http://", "https://")))
        domains = frozenset(e for e in entries if not e.startswith(("http://", "https://")))
        digest = hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16]
        return cls(domains, prefixes, digest)

    def provenance(self) -> dict[str, str]:
        return {"optout_lists": self.digest}

    def listed(self, url: str) -> bool:
        try:
            parts = urlsplit(url.strip())
            host = (parts.hostname or "").rstrip(".")
        except ValueError:
            return False
        labels = host.split(".")
        if any(".".join(labels[i:]) in self.domains for i in range(len(labels))):
            return True
        if not self.prefixes:
            return False
        return normal_url(url).startswith(self.prefixes)

    def apply(self, batch: pa.Table) -> pa.Table:
        mask = np.array([self.listed(u or "") for u in batch["url"].to_pylist()], bool)
        return mark_dropped(batch, mask, f"{self.name}.list")
