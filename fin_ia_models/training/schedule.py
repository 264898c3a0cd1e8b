"""The one learning-rate schedule of every stage: linear warm-up, then cosine decay to a floor (Loshchilov & Hutter
2017, "SGDR", without restarts; warm-up as in Goyal et al. 2017). Its constants are config fields, not literals."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class LRSchedule(ConfigDict):
    """Warm-up length and floor of the schedule; the peak learning rate stays the stage config's ``lr``."""

    warmup_fraction: float = 0.05  # share of all optimizer steps spent warming up linearly from lr/warmup to lr
    warmup_min_steps: int = 1  # at least this many warm-up steps (0 allows none on very short runs)
    warmup_max_steps: int | None = None  # at most this many (long runs need no longer warm-up); None = no cap
    floor: float = 0.1  # final learning rate as a share of the peak (the cosine ends here, not at 0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.warmup_min_steps < 0 or (self.warmup_max_steps is not None
                                         and self.warmup_max_steps < self.warmup_min_steps):
            raise ValueError(f"need 0 <= warmup_min_steps <= warmup_max_steps, got {self.warmup_min_steps}, "
                             f"{self.warmup_max_steps}")
        if not 0.0 <= self.floor <= 1.0:
            raise ValueError(f"floor must be in [0, 1], got {self.floor}")

    def warmup_steps(self, total_steps: int) -> int:
        # the 1e-9 keeps floor(n * 0.1) == n // 10 against binary rounding of the fraction
        steps = math.floor(total_steps * self.warmup_fraction + 1e-9)
        steps = max(self.warmup_min_steps, steps)
        return steps if self.warmup_max_steps is None else min(self.warmup_max_steps, steps)

    def factor(self, step: int, total_steps: int) -> float:
        """Multiplier of the peak learning rate at optimizer step ``step`` (0-based) of ``total_steps``."""
        total = max(1, total_steps)
        warmup = self.warmup_steps(total)
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return self.floor + (1.0 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))


def adamw_with_schedule(params, lr: float, weight_decay: float, total_steps: int, schedule: LRSchedule) -> dict:
    """AdamW plus ``schedule`` stepped every optimizer step, in the form ``LightningModule.configure_optimizers``
    returns."""
    import torch

    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule.factor(step, total_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
