"""The GPU actor pool of the transformer scorers (`blocks/score_transformer.py`).

Each actor holds one GPU (`num_gpus=1`) and no CPU slot (`num_cpus=0`, so a 2-CPU local Ray cannot deadlock on
them), loads each model once, and runs forward passes on batches the stage-3 bucket tasks tokenized and formed.
A bucket task keeps at most `in_flight` requests outstanding per actor (back-pressure), and the driver already
caps the bucket tasks in flight. Without GPUs there is no pool: the bucket tasks run the models on their CPU.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import ray

from curate.blocks import faults
from curate.blocks.base import Block
from curate.blocks.score_transformer import TransformerScorer, TransformerScores, forward
from curate.errors import UserError

REQUEST_BATCHES = 8  # batches per actor request: big enough to keep a GPU busy, small enough to spread
ACTOR_RESTARTS = 4  # a lost actor (its node or GPU gone) is restarted, and its requests retried, this many times


@ray.remote(num_cpus=0)
class ScorerActor:
    """One GPU's models: loaded on first use, kept for the run."""

    def forward(self, scorer: TransformerScorer, batches: list[list[list[int]]]) -> list[np.ndarray]:
        import torch

        faults.kill_point("scorer_actor")  # an actor lost mid-request (its node or GPU gone)
        device = "cuda" if torch.cuda.is_available() else "cpu"  # a declared GPU resource without CUDA: tests
        return forward(scorer.checkpoint(device), batches)

    def loads(self) -> dict[str, int]:
        from curate.blocks import score_transformer  # this process's counter (Ray pickles the class by value)

        return dict(score_transformer.LOADS)


@dataclass
class ScorerPool:
    """Actor handles (picklable, so bucket tasks carry the pool) and the per-task request cap."""

    actors: list
    in_flight: int = 2

    @classmethod
    def start(cls, gpus: int) -> ScorerPool:
        """`gpus` actors; one that dies (a lost node, a GPU fault) is restarted and its requests run again, so a
        bucket task sees the same scores."""
        return cls([ScorerActor.options(num_gpus=1, max_restarts=ACTOR_RESTARTS,
                                        max_task_retries=ACTOR_RESTARTS).remote() for _ in range(gpus)])

    def forward(self, scorer: TransformerScorer, batches: list[list[list[int]]]) -> list[np.ndarray]:
        """Outputs of `batches`, in order; requests go round the actors, from one the first batch's tokens choose
        (bucket tasks spread over the actors, the same way every run)."""
        requests = [batches[i:i + REQUEST_BATCHES] for i in range(0, len(batches), REQUEST_BATCHES)]
        first = zlib.crc32(repr(batches[0][:1]).encode()) % len(self.actors) if batches else 0
        results: dict[int, list[np.ndarray]] = {}
        pending: dict[ray.ObjectRef, int] = {}
        for index, request in enumerate(requests):
            if len(pending) >= self.in_flight * len(self.actors):
                self._collect(pending, results)
            actor = self.actors[(first + index) % len(self.actors)]
            pending[actor.forward.remote(scorer, request)] = index
        while pending:
            self._collect(pending, results)
        return [output for index in range(len(requests)) for output in results[index]]

    @staticmethod
    def _collect(pending: dict, results: dict) -> None:
        done, _ = ray.wait(list(pending), num_returns=1)
        results[pending.pop(done[0])] = ray.get(done[0])

    def loads(self) -> list[dict[str, int]]:
        """Each actor's model loads, by checkpoint folder."""
        return ray.get([actor.loads.remote() for actor in self.actors])

    def stop(self) -> None:
        """End the actors (and their GPU memory); the pool is not used again."""
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []


def plan_pool(blocks: list[Block], cluster_gpus: float, scorer_gpus: int | None) -> int:
    """How many GPU actors the run's transformer scorers get (0: they run in the CPU tasks); a scorer that says
    `device: gpu` on a cluster without GPUs stops the run before it starts."""
    scorers = [s for block in blocks if isinstance(block, TransformerScores) for s in block.scorers]
    gpu_only = [s for s in scorers if s.config.device == "gpu"]
    if gpu_only and cluster_gpus < 1:
        raise UserError(f"{gpu_only[0].where} needs a GPU (device: gpu) but the cluster has none; add GPU nodes, "
                        f"or set device: auto (CPU when there is no GPU)")
    if not any(s.config.device != "cpu" for s in scorers):
        return 0
    gpus = int(cluster_gpus) if scorer_gpus is None else min(scorer_gpus, int(cluster_gpus))
    if gpu_only and gpus < 1:
        raise UserError(f"{gpu_only[0].where} needs a GPU (device: gpu) but --scorer-gpus is 0")
    return max(0, gpus)


def detach_pool(blocks: list[Block], pool: ScorerPool | None) -> None:
    """Stop the run's pool and take it from the blocks (a later run in the same Ray session starts its own)."""
    if pool is None:
        return
    pool.stop()
    for block in blocks:
        if isinstance(block, TransformerScores) and block.pool is pool:
            block.pool = None


def attach_pool(blocks: list[Block], scorer_gpus: int | None) -> ScorerPool | None:
    """Start the pool the cluster's GPUs allow and give it to the transformer scorer blocks (None: no pool)."""
    gpus = plan_pool(blocks, ray.cluster_resources().get("GPU", 0), scorer_gpus)
    if not gpus:
        return None
    pool = ScorerPool.start(gpus)
    for block in blocks:
        if isinstance(block, TransformerScores):
            block.pool = pool
    return pool
