"""Observation normalisation of the agents, fitted on the training window only.

An observation at step t is concat(embedding_t, mv_summary_t, past_returns_t, [position held]). The first three
parts are z-scored per feature with the mean and standard deviation of the TRAINING rows (never validation or test:
their statistics would leak the future into every observation) and clipped to ±``obs_clip``; the position is
already in [−1, 1] and passes unchanged. A feature constant over the training rows (std < 1e-8) is only centred.
The statistics are a fixed part of the trained agent, so the live path and the backtest normalise identically.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fin_ia_models.agents.data import AgentData

MIN_STD = 1e-8  # below this a training feature counts as constant: centred, not scaled


@dataclass(frozen=True)
class ObsNormalizer:
    """Per-feature z-scoring of concat(embedding, mv_summary, past_returns), then a clip to ±clip."""

    mean: np.ndarray  # (F,) float32, F = D + K + R
    std: np.ndarray  # (F,) float32, 1 where the training feature was constant
    dims: tuple[int, int, int]  # (D, K, R) the widths the statistics belong to
    clip: float  # clip of the normalised values

    def __post_init__(self) -> None:
        width = sum(self.dims)
        if self.mean.shape != (width,) or self.std.shape != (width,):
            raise ValueError(f"mean/std must have shape ({width},) for dims {self.dims}, got {self.mean.shape}, "
                             f"{self.std.shape}")
        if not (self.std > 0).all() or not self.clip > 0:
            raise ValueError(f"std must be > 0 and clip > 0, got min std {self.std.min()}, clip {self.clip}")

    @classmethod
    def fit(cls, train: list[AgentData], clip: float) -> ObsNormalizer:
        """Statistics of all rows of the training windows ``train`` (which must share their widths)."""
        if not train:
            raise ValueError("ObsNormalizer.fit needs at least one training window")
        check_same_dims(train)
        features = np.concatenate([d.features() for d in train]).astype(np.float64)  # (sum T, F)
        std = features.std(axis=0)
        std = np.where(std < MIN_STD, 1.0, std)
        return cls(features.mean(axis=0).astype(np.float32), std.astype(np.float32), train[0].dims, float(clip))

    @property
    def obs_dim(self) -> int:
        """Width of an observation: the features plus the position."""
        return sum(self.dims) + 1

    def check(self, dims: tuple[int, int, int], what: str = "data") -> None:
        """ValueError naming the widths if ``dims`` (D, K, R) differ from the ones the agent was trained on."""
        names = ("embedding", "mv_summary", "past_returns")
        for name, got, want in zip(names, dims, self.dims):
            if got != want:
                raise ValueError(f"{what}: {name} width {got} differs from the {want} the agent was trained on "
                                 f"(observation width {sum(dims) + 1} vs {self.obs_dim})")

    def transform(self, features: np.ndarray) -> np.ndarray:
        """(..., F) raw features → (..., F) float32 normalised and clipped."""
        if features.shape[-1] != self.mean.shape[0]:
            raise ValueError(f"features of width {features.shape[-1]} differ from the {self.mean.shape[0]} the "
                             "normaliser was fitted on")
        out = (features.astype(np.float32, copy=False) - self.mean) / self.std
        return np.clip(out, -self.clip, self.clip, out=out)

    def observations(self, data: AgentData) -> np.ndarray:
        """(T, F + 1) float32 observation table of ``data`` with a zero position column (filled in per step)."""
        self.check(data.dims, data.symbol or "data")
        table = np.zeros((len(data), self.obs_dim), dtype=np.float32)
        table[:, :-1] = self.transform(data.features())
        return table

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "dims": list(self.dims), "clip": self.clip}

    @classmethod
    def from_dict(cls, values: dict) -> ObsNormalizer:
        return cls(np.asarray(values["mean"], np.float32), np.asarray(values["std"], np.float32),
                   tuple(int(v) for v in values["dims"]), float(values["clip"]))


def check_same_dims(datas: list[AgentData]) -> tuple[int, int, int]:
    """The common (D, K, R) of ``datas``; a ValueError naming the first window that differs."""
    dims = datas[0].dims
    for i, data in enumerate(datas):
        if data.dims != dims:
            raise ValueError(f"window {i} ({data.symbol or 'unnamed'}) has widths (D, K, R) = {data.dims}, window 0 "
                             f"has {dims}: all windows of one agent must share them")
    return dims
