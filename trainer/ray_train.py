"""Scale out with Ray Train: the same `train` on N workers, one device each (DDP or FSDP).

    from curate.trainer import TrainConfig, launch
    launch(TrainConfig(mix="out/fin_Latn", model="...", parallel="fsdp"), num_workers=8)

Ray Train's `TorchTrainer` starts the workers and the process group (NCCL on GPUs, gloo on CPUs)
and each worker runs `trainer.loop.train`. On a cluster (`RAY_ADDRESS` or `ray job submit`) the
data, the tokenizer and `out_dir` must be paths every node can read (and write, for `out_dir`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from curate.trainer.config import TrainConfig


def launch(config: TrainConfig, *, num_workers: int, use_gpu: bool | None = None,
           cpus_per_worker: float = 1.0, ray_address: str | None = None) -> Any:
    """Train on `num_workers` Ray Train workers and return the main worker's `TrainResult`.

    `use_gpu=None` uses GPUs when the Ray cluster has at least one per worker. Starts a local Ray
    instance (or joins `ray_address` / `RAY_ADDRESS`) when Ray is not initialised yet.
    """
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from curate.trainer.loop import TrainResult

    config.validate()
    config = config.with_absolute_paths()
    if not ray.is_initialized():
        package_root = str(Path(__file__).resolve().parents[2])  # the folder that holds `curate`
        ray.init(address=ray_address, runtime_env={"env_vars": {"PYTHONPATH": package_root}})
    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) >= num_workers
    out_dir = Path(config.out_dir)
    trainer = TorchTrainer(
        _worker,
        train_loop_config={"config": config.to_dict()},
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker}),
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        run_config=RunConfig(name="curate-train", storage_path=str(out_dir / "ray")),
    )
    trainer.fit()
    return TrainResult(**json.loads((out_dir / "result.json").read_text()))


def _worker(loop_config: dict[str, Any]) -> None:
    """One Ray Train worker: the process group is up; train on this worker's device."""
    import ray.train.torch

    from curate.trainer.loop import train

    train(TrainConfig.from_dict(loop_config["config"]), device=ray.train.torch.get_device())
