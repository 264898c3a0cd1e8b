"""Each report plot returns a decodable PNG; bad shapes are named errors."""

from __future__ import annotations

import io

import numpy as np
import pytest

from fin_ia_models.evaluation.plots import markdown_image
from fin_ia_models.evaluation.report_plots import coverage_png, equity_drawdown_png, fan_chart_png, pit_histogram_png

HOUR = 3_600_000
T0 = 1_704_067_200_000
STAMPS = T0 + HOUR * np.arange(168)


def decoded(png: bytes) -> np.ndarray:
    import matplotlib.image

    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_plots_are_valid_pngs():
    rng = np.random.default_rng(0)
    returns = {"buy_and_hold": rng.normal(0, 0.01, 168), "flat": np.zeros(168)}
    decoded(equity_drawdown_png(STAMPS, returns))
    decoded(pit_histogram_png({"garch_t": rng.uniform(size=500), "bootstrap": rng.beta(2, 2, 500)}))
    decoded(coverage_png({"garch_t": {0.5: 0.48, 0.9: 0.91}, "random_walk": {0.5: 0.55, 0.9: 0.86}}))
    paths = np.cumsum(rng.normal(0, 0.01, (168, 64)), axis=0)
    image = decoded(fan_chart_png(STAMPS, paths, np.cumsum(rng.normal(0, 0.01, 168)), title="one week"))
    assert image[..., :3].std() > 0.05  # something was drawn
    assert markdown_image(coverage_png({"m": {0.9: 0.9}}), "coverage").startswith("![coverage](data:image/png;base64,")


def test_bad_plot_inputs_are_named():
    with pytest.raises(ValueError, match="flat: returns must be finite with shape"):
        equity_drawdown_png(STAMPS, {"flat": np.zeros(10)})
    with pytest.raises(ValueError, match="no strategy"):
        equity_drawdown_png(STAMPS, {})
    with pytest.raises(ValueError, match="fan chart needs"):
        fan_chart_png(STAMPS, np.zeros((10, 5)), np.zeros(10))
    with pytest.raises(ValueError, match="non-empty and finite"):
        pit_histogram_png({"m": np.array([np.nan])})
