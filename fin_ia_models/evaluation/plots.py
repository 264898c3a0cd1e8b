"""PNG plots for materialization metadata and reports (matplotlib, headless Agg backend)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    _figure().close(fig)
    return buffer.getvalue()


def loss_curve_png(history: Sequence[dict], keys: Sequence[str], title: str, xlabel: str = "epoch") -> bytes:
    """One line per ``key`` present in the history rows (log scale when all values are positive)."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for key in keys:
        values = [row[key] for row in history if key in row]
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=key)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    if all(row.get(k, 1) > 0 for row in history for k in keys):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def code_usage_png(counts: np.ndarray, title: str) -> bytes:
    """Codebook usage: count per code id, sorted descending, plus the share of codes never used."""
    plt = _figure()
    counts = np.asarray(counts)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ordered = np.sort(counts)[::-1]
    ax.bar(np.arange(len(ordered)), ordered, width=1.0, color="tab:blue")
    unused = int((counts == 0).sum())
    ax.set_title(f"{title}\n{len(counts) - unused}/{len(counts)} codes used ({unused} unused)", fontsize=10)
    ax.set_xlabel("code (sorted by frequency)")
    ax.set_ylabel("patches")
    return _png(fig)


def markdown_image(png: bytes, alt: str) -> str:
    """Inline PNG as markdown (Dagster's UI renders it in the metadata panel)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
