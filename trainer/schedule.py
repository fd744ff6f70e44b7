"""Learning-rate schedules for continued pretraining: a pure function of the step.

All three start with a linear re-warmup from 0 to the peak (`lr`) over `warmup_steps` and end at
`lr * min_lr_ratio` on the last step:

* `cosine`:   cosine decay from the peak to the minimum over the rest of the run.
* `wsd`:      warmup, stable at the peak, linear decay over the last `decay_steps`
              (Hägele et al., 2024, "Scaling laws and compute-optimal training beyond fixed
              training durations").
* `infinite`: warmup, cosine cool-down to `lr * constant_lr_ratio` over `cooldown_steps`,
              constant, then a linear decay over the last `decay_steps` (Ibrahim et al., 2024,
              "Simple and scalable strategies to continually pre-train large language models").
              The constant phase can be extended by later runs; only the final decay ends it.

Being a function of the step alone, the schedule needs no state in checkpoints.
"""

from __future__ import annotations

import math

from curate.trainer.config import TrainConfig


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based) of a run of `config.steps` steps."""
    peak, total = config.lr, config.steps
    low = peak * config.min_lr_ratio
    if step < config.warmup_steps:
        return peak * (step + 1) / config.warmup_steps
    if config.schedule == "cosine":
        progress = min(1.0, (step - config.warmup_steps) / max(1, total - 1 - config.warmup_steps))
        return low + (peak - low) * 0.5 * (1 + math.cos(math.pi * progress))
    decay_start = total - config.final_decay_steps
    if config.schedule == "wsd":
        level = peak
    else:  # infinite
        level = peak * config.constant_lr_ratio
        into_cooldown = step - config.warmup_steps
        if into_cooldown < config.cooldown_steps and step < decay_start:
            progress = (into_cooldown + 1) / config.cooldown_steps
            return level + (peak - level) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < decay_start:
        return level
    progress = (step - decay_start + 1) / config.final_decay_steps
    return level + (low - level) * min(1.0, progress)
