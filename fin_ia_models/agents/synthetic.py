"""Synthetic ``AgentData`` with a planted, learnable signal, for tests and smoke runs of the agents.

Per-step log returns follow r_{t+1} = vol·(s·z_t + √(1 − s²)·ε_t) with z, ε i.i.d. N(0, 1) and s =
``signal_strength``: channel 0 of the embedding at t is z_t, so it predicts the next return (correlation s) while
channels 1..D−1 are persistent AR(1) noise. The "multiverse" knows the true conditional law of the next step:
mv_summary = (mean, std, 5 % quantile of the next return, realized vol) and mv_futures draw the first step from
N(vol·s·z_t, vol²(1 − s²)), later steps from N(0, vol²) (z_{t+1..} is not known at t). Everything at row t uses
z_{≤t} and returns up to t only.
"""

from __future__ import annotations

import numpy as np

from fin_ia_models.agents.data import AgentData

SUMMARY_NAMES = ("mean", "std", "q05", "vol")
Z_05 = -1.6448536269514722  # 5 % quantile of the standard normal
TOKEN_MS = 16 * 3_600_000  # one token = 16 hourly candles


def synthetic_agent_data(T: int = 512, D: int = 8, N: int = 32, H: int = 3, seed: int = 0,
                         signal_strength: float = 0.5, R: int = 8, vol: float = 0.01, n_gaps: int = 0,
                         start_ms: int = 1_672_531_200_000, symbol: str = "SYN/USDT") -> AgentData:
    """T token steps of one synthetic symbol (see the module docstring); ``n_gaps`` steps t → t+1 span a candle gap
    (not tradable, NaN label, a 2-token jump in ``end_timestamp``, and a 0 in the past returns after it)."""
    if not 0.0 <= signal_strength <= 1.0:
        raise ValueError(f"signal_strength must be in [0, 1], got {signal_strength}")
    if min(T, D, N, H, R) < 1 or T < 2:
        raise ValueError(f"need T >= 2 and D, N, H, R >= 1, got T={T} D={D} N={N} H={H} R={R}")
    if not 0 <= n_gaps < T // 2:
        raise ValueError(f"n_gaps must be in [0, T // 2 = {T // 2}), got {n_gaps}")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal(T)  # (T,) the planted signal
    noise_scale = np.sqrt(1.0 - signal_strength**2)
    next_return = vol * (signal_strength * z + noise_scale * rng.standard_normal(T))  # (T,) r_{t+1}

    embedding = np.empty((T, D), dtype=np.float64)
    embedding[:, 0] = z
    if D > 1:  # persistent distractors, like slow-moving latent factors
        eps = rng.standard_normal((T, D - 1))
        embedding[0, 1:] = eps[0]
        for t in range(1, T):
            embedding[t, 1:] = 0.9 * embedding[t - 1, 1:] + np.sqrt(1 - 0.81) * eps[t]

    gaps = np.sort(rng.choice(np.arange(1, T - 1), size=n_gaps, replace=False)) if n_gaps else np.array([], int)
    tradable = np.ones(T, dtype=bool)
    tradable[gaps] = False
    steps = np.full(T - 1, TOKEN_MS, dtype=np.int64)
    steps[gaps] += 2 * TOKEN_MS  # the candles of two tokens are missing after each gap step
    end_timestamp = start_ms + np.concatenate([[0], np.cumsum(steps)])

    # past_returns[t] = returns realized up to t: r_t = next_return[t-1], a 0 where the step into it was a gap
    realized = np.where(tradable, next_return, 0.0)
    history = np.concatenate([vol * rng.standard_normal(R), realized[:-1]])  # (R + T - 1,) r_{t-R+1..t}
    past_returns = np.lib.stride_tricks.sliding_window_view(history, R)  # (T, R)
    next_return = np.where(tradable, next_return, np.nan)

    mean = vol * signal_strength * z
    std = np.full(T, vol * noise_scale)
    summary = np.stack([mean, std, mean + Z_05 * std, np.full(T, vol)], axis=1)  # (T, 4)
    futures = vol * rng.standard_normal((T, N, H))  # (T, N, H)
    futures[:, :, 0] = mean[:, None] + std[:, None] * rng.standard_normal((T, N))
    return AgentData(end_timestamp=end_timestamp, embedding=embedding, mv_summary=summary,
                     past_returns=past_returns, next_return=next_return, tradable=tradable, mv_futures=futures,
                     mv_summary_names=SUMMARY_NAMES, symbol=symbol)
