"""The multiverse's plots (PNG bytes, ``evaluation.report_plots``): interval coverage and PIT histograms of the
multiverse against the baselines, and a fan chart of one week: the price band implied by the futures sampled at each
token, the realized price drawn over it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import format_ms, timeframe_ms
from fin_ia_models.evaluation.report_plots import coverage_png, fan_chart_png, pit_histogram_png
from fin_ia_models.multiverse.evaluate import MODEL, Evaluation, WindowForecasts

WEEK_MS = 7 * 86_400_000


def calibration_png(evaluation: Evaluation, horizon: int, title: str) -> bytes:
    """Coverage of the central 50 % and 90 % intervals of the h-candle return and realized vol, every model."""
    coverage = {}
    for (symbol, model, h), scores in evaluation.scores.items():
        if symbol == "all" and h == horizon:
            for target in ("ret", "rv"):
                coverage[f"{model} {target}"] = {0.5: scores[f"coverage_{target}_50"],
                                                 0.9: scores[f"coverage_{target}_90"]}
    return coverage_png(coverage, title)


def pit_png(evaluation: Evaluation, horizon: int, title: str) -> bytes:
    """PIT histograms of the h-candle return and realized vol: the multiverse and GARCH-t."""
    pits = {f"{model} {target}": values[target] for (model, h), values in evaluation.pit.items()
            if h == horizon and model in (MODEL, "garch_t") for target in ("ret", "rv")}
    return pit_histogram_png(pits, title=title)


def fan_week_png(forecasts: WindowForecasts, candles: pd.DataFrame, start_ms: int, symbol: str) -> bytes:
    """Fan chart of the week starting at the first scored origin at or after ``start_ms``: for every hour, the band
    of prices the futures sampled at the latest origin give (close at the origin × exp(cumulative sampled returns)),
    and the realized close."""
    tf = timeframe_ms(candles.attrs["timeframe"])
    ts = forecasts.end_timestamp
    chosen = np.flatnonzero((ts >= start_ms) & (ts < start_ms + WEEK_MS))
    if len(chosen) == 0:
        chosen = np.flatnonzero(ts >= ts[0])[: max(1, WEEK_MS // (forecasts.trajectories.patch_len * tf))]
    closes = candles.set_index("timestamp")["close"]
    paths = forecasts.paths[MODEL]  # (n, m, Hmax)
    times, bands, realized = [], [], []
    for j, row in enumerate(chosen):
        nxt = ts[chosen[j + 1]] if j + 1 < len(chosen) else ts[row] + paths.shape[2] * tf
        steps = int(min(paths.shape[2], max(1, (nxt - ts[row]) // tf)))
        base = float(closes.loc[ts[row]])
        prices = base * np.exp(np.cumsum(paths[row, :, :steps], axis=1))  # (m, steps)
        stamps = ts[row] + tf * np.arange(1, steps + 1)
        times.append(stamps)
        bands.append(prices.T)
        realized.append(base * np.exp(np.cumsum(forecasts.realized[row, :steps])))
    title = (f"{symbol}: futures sampled at each token, week from {format_ms(int(ts[chosen[0]]))} "
             "(bands 50 / 90 %, realized close in black)")
    return fan_chart_png(np.concatenate(times), np.concatenate(bands), np.concatenate(realized), title=title,
                         ylabel="price")
