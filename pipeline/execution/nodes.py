"""What every node of a run must have: the models (resolved on the node itself, with the driver's hashes), the
source and the output. `preflight` checks each node before the first unit; `NodeChecked` checks again in
each worker process (once), so a node that joins later is held to the same.
"""

from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from typing import Any

import ray

from curate.blocks.base import Block
from curate.errors import UserError

SHARED_HINT = "put it on shared storage or on every node at the same path"


def verify_models(blocks: list[Block], expected: dict[str, str]) -> None:
    """Resolve and load every block's models on this node, and check their sha256 against the driver's; the
    `UserError` says that a model given as a path must be on every node."""
    try:
        for block in blocks:
            block.check()
            for key, digest in block.provenance().items():
                if key in expected and expected[key] != digest:
                    raise UserError(f"{key} has sha256 {digest[:12]}… here, {expected[key][:12]}… on the driver")
    except UserError as error:
        raise UserError(f"{error} (on this node; a model given as a path must be on every node: {SHARED_HINT}, "
                        f"or use hf://…)") from None


_verified: set[str] = set()


@dataclass
class NodeChecked:
    """A stage's work whose blocks' models are verified in each worker process before its first unit."""

    work: Any
    blocks: list[Block]
    models: dict[str, str]

    def run(self, unit: Any) -> Any:
        key = repr((self.blocks, sorted(self.models.items())))
        if key not in _verified:
            verify_models(self.blocks, self.models)
            _verified.add(key)
        return self.work.run(unit)


WARM_LANGUAGES = 4  # a run of more languages warms its shared blocks only: each worker loads what its pages need


def warm_workers(blocks: list[Block], cpus_per_task: float) -> list[ray.ObjectRef]:
    """One task a worker slot of the cluster that warms `blocks` (`Block.warm`: imports, models, the extractor
    subprocess; ~3 s for a fresh worker) while the driver still plans and checks, instead of during its first
    unit. Nothing waits for them: a failure is left to the first unit, whose own load reports it."""
    slots = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_task))
    task = ray.remote(num_cpus=cpus_per_task, max_retries=0)(warm_blocks)
    return [task.remote(blocks) for _ in range(slots)]


def warm_blocks(blocks: list[Block]) -> int:
    """`Block.warm` of each block; how many warmed (one that fails does not stop the others)."""
    warmed = 0
    for block in blocks:
        try:
            block.warm()
            warmed += 1
        except Exception:  # noqa: BLE001 - the first unit loads it again and reports the failure there
            continue
    return warmed


def node_name() -> str:
    return f"{socket.gethostname()} ({ray.util.get_node_ip_address()})"


def _check_node(blocks: list[Block], models: dict[str, str], source: str, probe_file: str | None, output: str,
                marker: str) -> str | None:
    """On one node: the error that stops the run there, or None."""
    from curate.pipeline.execution.storage import Output
    from curate.pipeline.sources.crawls import Source

    try:
        out = Output(output)
        if out.read_json(marker) is None:
            return (f"cannot see the output {output} that the driver writes (a local folder of the driver?); "
                    f"give an --output that every node reaches (s3://…, a shared file system)")
        out.check_writable()
        if probe_file is not None:
            where = Source(source)
            try:
                with where.open(probe_file) as stream:
                    stream.read(1)
            except FileNotFoundError as error:  # one missing input is an input fault (counted); no source is not
                if not where.is_http and not where.fs.exists(where.url("crawl-data")):
                    return (f"cannot read the source {source} ({type(error).__name__}: {error}); "
                            f"give a --source that every node reaches")
            except Exception as error:  # noqa: BLE001 - any failure to read the source is reported
                return (f"cannot read the source {source} ({type(error).__name__}: {error}); "
                        f"give a --source that every node reaches")
        verify_models(blocks, models)
    except UserError as error:
        return str(error)
    return None


def preflight(blocks: list[Block], models: dict[str, str], source: str, probe_file: str | None, output: str) -> None:
    """Check, on every alive node with CPUs but the driver's, that it reaches the source and the output and
    resolves every model; raise one `UserError` naming the first node that cannot. The driver's node is the
    driver's machine, whose files the driver has checked (`Graph.check`, the plan, `check_writable`): a local run
    starts no task here (its workers still verify their models before their first unit: `NodeChecked`)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    from curate.pipeline.execution.storage import Output

    driver = ray.get_runtime_context().get_node_id()
    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0
             and n["NodeID"] != driver]
    if not nodes:
        return
    out = Output(output)
    marker = out.path("_work", f".preflight-{uuid.uuid4().hex[:8]}")
    out.write_json(marker, {"written_by": "driver"})
    try:
        check = ray.remote(num_cpus=0, max_retries=2)(_check_node_named)
        tasks = [check.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote(
            blocks, models, source, probe_file, output, marker) for n in nodes]
        for name, error in ray.get(tasks):
            if error:
                raise UserError(f"node {name}: {error}")
    finally:
        out.fs.rm(marker)


def _check_node_named(*args) -> tuple[str, str | None]:
    return node_name(), _check_node(*args)


__all__ = ["NodeChecked", "node_name", "preflight", "verify_models", "warm_blocks", "warm_workers"]
