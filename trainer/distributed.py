"""Several workers: the process group, DDP / FSDP2 wrapping, and the few collectives the loop uses.

A worker is one process with one device. Ray Train (`trainer.ray_train.launch`) or `torchrun` start the
workers and the process group; `setup_world` only reads it. With one worker everything here is a
no-op, so the training loop reads the same on a laptop and on a cluster.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_model_state_dict,
                                                     get_optimizer_state_dict,
                                                     set_optimizer_state_dict)
from torch.nn.parallel import DistributedDataParallel

from curate.trainer.model import decoder_layers

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


@dataclass(frozen=True)
class World:
    """This worker's place among all workers."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    control_group: Any = None
    """A gloo group for small CPU-side messages (no GPU synchronisation)."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_world() -> World:
    """Join the process group Ray Train or torchrun set up (or start it from torchrun's
    environment); a single worker when there is none."""
    if not dist.is_initialized():
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return World()
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    size = dist.get_world_size()
    if size == 1:
        return World()
    control = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
    return World(dist.get_rank(), size, int(os.environ.get("LOCAL_RANK", "0")), control)


def pick_device(world: World, device: torch.device | str | None) -> torch.device:
    """The given device, else this worker's GPU, else the CPU."""
    if device is not None:
        device = torch.device(device)
        if device.type == "cuda":
            torch.cuda.set_device(device)
        return device
    if torch.cuda.is_available():
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return torch.device("cpu")


def parallelize(model: torch.nn.Module, world: World, parallel: str, device: torch.device,
                bf16: bool) -> torch.nn.Module:
    """Wrap for several workers: DDP replicas, or FSDP2 sharding each decoder layer and the rest
    (gathering bf16 weights and reducing fp32 gradients when training in bf16)."""
    if world.size == 1:
        return model
    if parallel == "fsdp":
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        policy = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                  if bf16 else MixedPrecisionPolicy())
        for layer in decoder_layers(model):
            fully_shard(layer, mp_policy=policy)
        fully_shard(model, mp_policy=policy)
        return model
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def gradient_sync(model: torch.nn.Module, enabled: bool) -> AbstractContextManager[Any]:
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulation."""
    if isinstance(model, DistributedDataParallel):
        return nullcontext() if enabled else model.no_sync()
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(enabled)
    return nullcontext()


def mean_over_workers(values: torch.Tensor, world: World) -> torch.Tensor:
    """Element-wise mean of a tensor over all workers."""
    if world.size > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= world.size
    return values


def sum_over_workers(values: np.ndarray, world: World) -> np.ndarray:
    """Element-wise sum of a small CPU array over all workers (through the gloo group)."""
    if world.size == 1:
        return values
    tensor = torch.from_numpy(np.ascontiguousarray(values, dtype=np.int64))
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=world.control_group)
    return tensor.numpy()


def all_workers(flag: bool, world: World) -> bool:
    """True when `flag` is true on every worker."""
    if world.size == 1:
        return flag
    tensor = torch.tensor([int(flag)])
    dist.all_reduce(tensor, op=dist.ReduceOp.MIN, group=world.control_group)
    return bool(tensor.item())


def gather_objects(obj: Any, world: World) -> list[Any]:
    """`obj` of every worker, in rank order (on every worker)."""
    if world.size == 1:
        return [obj]
    gathered: list[Any] = [None] * world.size
    dist.all_gather_object(gathered, obj, group=world.control_group)
    return gathered


def full_model_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded model weights on the CPU (a collective under FSDP: call on every worker)."""
    return get_model_state_dict(model, options=_FULL)


def full_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Unsharded optimizer state keyed by parameter name (a collective under FSDP)."""
    return get_optimizer_state_dict(model, optimizer, options=_FULL)


def load_optimizer_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                         state: dict[str, Any]) -> None:
    """Inverse of `full_optimizer_state` (every worker passes the full state). Not strict: a parameter
    that has not been updated yet (frozen by `embeddings_only_steps`) has no state to load."""
    set_optimizer_state_dict(model, optimizer, optim_state_dict=state,
                             options=StateDictOptions(full_state_dict=True, strict=False))
