"""``TrainingResult``: what every stage's ``fit_*`` entry point returns, so the orchestrator only wires.

It knows what MLflow needs: ``params()`` (the flattened config and seed), ``metrics`` (final scalars, one name = one
meaning: a name logged per step in ``history`` is never reused for a different final value), ``datasets`` (what was
consumed, with content digests) and an input/output example for the model signature.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fin_ia_models.tracking.datasets import DatasetRef
from fin_ia_models.tracking.runs import flatten


@dataclass
class TrainingResult:
    model: Any  # the trained model, on CPU, in eval mode
    config: Any  # the stage's config dataclass (flattened into params)
    seed: int
    history: list[dict[str, float]]  # one row per epoch or logged step (metric name → value, plus "step"/"epoch")
    metrics: dict[str, float]  # final scalars (held-out scores, throughput); names never collide with history keys
    datasets: list[DatasetRef] = field(default_factory=list)  # consumed data, for lineage
    device: str = "cpu"  # where it trained
    wall_time_s: float = 0.0  # training wall time of this call
    input_example: np.ndarray | None = None  # a small model input, for the MLflow signature
    output_example: np.ndarray | None = None  # the model's output on it
    info: dict[str, Any] = field(default_factory=dict)  # stage-specific facts shown as metadata (counts, windows)
    plots: dict[str, bytes] = field(default_factory=dict)  # name → PNG (loss curve, usage histogram, ...)
    checkpoint_path: Path | None = None  # the standalone checkpoint written by the entry point, if any

    def params(self, **extra: Any) -> dict[str, str]:
        """Flat MLflow params: every config field, the seed, and ``extra`` (profile, split bounds, ...)."""
        return {**flatten(self.config), "seed": str(self.seed), **{k: str(v) for k, v in extra.items()}}

    def __post_init__(self) -> None:
        clash = sorted({k for row in self.history for k in row} & set(self.metrics))
        if clash:
            raise ValueError(f"final metric names {clash} are also per-step history names: give the final value "
                             "its own name (one metric name = one meaning in MLflow)")
