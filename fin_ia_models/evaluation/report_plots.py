"""PNG plots of the evaluation reports (headless matplotlib via ``plots._figure``; bytes ready for
``plots.markdown_image``).

- equity curve and drawdown of several strategies on one chart,
- PIT histogram with the uniform density line (a calibrated forecast is flat at 1; Gneiting, Balabdaoui & Raftery
  2007, "Probabilistic forecasts, calibration and sharpness", section 3),
- coverage of central intervals per model against the nominal levels,
- fan chart: quantile bands of sampled values over time with the realized series drawn over them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fin_ia_models.evaluation.plots import _figure, _png


def _dates(timestamps: np.ndarray) -> np.ndarray:
    return np.asarray(timestamps, np.int64).astype("datetime64[ms]")


def equity_drawdown_png(timestamps: np.ndarray, returns_by_strategy: Mapping[str, np.ndarray],
                        title: str = "equity and drawdown") -> bytes:
    """Top: equity (start 1) of each strategy's per-candle net simple returns (T,); bottom: drawdown from the peak."""
    if not returns_by_strategy:
        raise ValueError("no strategy to plot")
    dates = _dates(timestamps)
    plt = _figure()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.8), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    for name, returns in returns_by_strategy.items():
        returns = np.asarray(returns, np.float64)
        if returns.shape != dates.shape or not np.isfinite(returns).all():
            raise ValueError(f"{name}: returns must be finite with shape {dates.shape}, got {returns.shape}")
        equity = np.cumprod(1.0 + returns)
        drawdown = equity / np.maximum.accumulate(np.r_[1.0, equity])[1:] - 1.0
        top.plot(dates, equity, lw=1, label=name)
        bottom.plot(dates, 100 * drawdown, lw=1)
    top.set_ylabel("equity")
    top.set_title(title, fontsize=10)
    top.grid(alpha=0.3)
    top.legend(fontsize=7, ncol=2)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    return _png(fig)


def pit_histogram_png(pit_by_model: Mapping[str, np.ndarray], n_bins: int = 10, title: str = "PIT histogram") -> bytes:
    """Density histogram of each model's PIT values with the Uniform(0, 1) line at 1."""
    if not pit_by_model:
        raise ValueError("no PIT values to plot")
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    for name, pit in pit_by_model.items():
        pit = np.asarray(pit, np.float64)
        if pit.size == 0 or not np.isfinite(pit).all():
            raise ValueError(f"{name}: PIT values must be non-empty and finite")
        ax.hist(pit, bins=edges, density=True, histtype="step", lw=1.5, label=f"{name} (n={pit.size})")
    ax.axhline(1.0, color="black", ls="--", lw=1, label="uniform")
    ax.set_xlabel("PIT")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _png(fig)


def coverage_png(coverage_by_model: Mapping[str, Mapping[float, float]], title: str = "interval coverage") -> bytes:
    """Grouped bars: empirical coverage of each model at each nominal level, dashed lines at the nominal levels."""
    if not coverage_by_model:
        raise ValueError("no coverage to plot")
    levels = sorted({float(level) for cov in coverage_by_model.values() for level in cov})
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / len(coverage_by_model)
    x = np.arange(len(levels))
    for i, (name, cov) in enumerate(coverage_by_model.items()):
        ax.bar(x + i * width - 0.4 + width / 2, [cov.get(level, np.nan) for level in levels], width, label=name)
    for j, level in enumerate(levels):
        ax.hlines(level, j - 0.45, j + 0.45, colors="black", linestyles="--", lw=1)
    ax.set_xticks(x, [f"{round(100 * level)} %" for level in levels])
    ax.set_ylim(0, 1)
    ax.set_ylabel("empirical coverage")
    ax.set_title(f"{title} (dashed: nominal)", fontsize=10)
    ax.legend(fontsize=7)
    return _png(fig)


def fan_chart_png(timestamps: np.ndarray, samples: np.ndarray, realized: np.ndarray,
                  levels: Sequence[float] = (0.5, 0.9), title: str = "fan chart", ylabel: str = "") -> bytes:
    """Central quantile bands of ``samples`` (n, m) at each of n times, the median, and ``realized`` (n,) on top.

    Use it for one origin's paths (times = the H future candles, samples = cumulative returns or prices of the m
    paths, transposed) or for a rolling view (times = origins, samples = each origin's m forecasts of the target)."""
    samples = np.asarray(samples, np.float64)
    realized = np.asarray(realized, np.float64)
    dates = _dates(timestamps)
    if samples.ndim != 2 or samples.shape[0] != len(dates) or realized.shape != dates.shape:
        raise ValueError(f"fan chart needs samples (n, m) and realized (n,) for n = {len(dates)} times, got "
                         f"{samples.shape} and {realized.shape}")
    if not np.isfinite(samples).all():
        raise ValueError("samples contain non-finite values")
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    for level in sorted(levels, reverse=True):  # widest band first, narrower ones drawn over it
        if not 0.0 < level < 1.0:
            raise ValueError(f"band level must be in (0, 1), got {level}")
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=1)
        ax.fill_between(dates, lo, hi, alpha=0.25, color="tab:blue", lw=0, label=f"{round(100 * level)} % band")
    ax.plot(dates, np.median(samples, axis=1), color="tab:blue", lw=1, label="median")
    ax.plot(dates, realized, color="black", lw=1.2, label="realized")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.autofmt_xdate()
    return _png(fig)
