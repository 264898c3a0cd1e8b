"""``AgentData`` from the stage frames: alignment, token returns from the candles by hand, a gap never bridged,
past returns oldest first, and causality (perturbing the future leaves every earlier row unchanged)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fin_ia_models.agents.assemble import agent_data_from_frames, summary_columns

HOUR = 3_600_000
TOKEN = 16 * HOUR
START = 1_704_067_200_000  # 2024-01-01


def frames(n_tokens: int = 12, gap_after: int | None = None, seed: int = 0):
    """Candles of ``n_tokens`` 16-candle patches (optionally two patches missing after token ``gap_after``), an
    embeddings frame for every token and a trajectories frame for tokens 2.. (the first two have no context)."""
    rng = np.random.default_rng(seed)
    patches = [i + (2 if gap_after is not None and i > gap_after else 0) for i in range(n_tokens)]
    stamps = np.concatenate([START + p * TOKEN + np.arange(16) * HOUR for p in patches])
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(stamps))))
    candles = pd.DataFrame({"timestamp": stamps, "open": close, "high": close, "low": close, "close": close,
                            "volume": 1.0})
    candles.attrs.update(symbol="BTC/USDT", timeframe="1h")
    ends = np.array([START + p * TOKEN + 15 * HOUR for p in patches], np.int64)
    emb = pd.DataFrame(rng.normal(size=(n_tokens, 3)).astype(np.float32), columns=["emb_0", "emb_1", "emb_2"])
    emb.insert(0, "end_timestamp", ends)
    rows = ends[2:]
    traj = pd.DataFrame({"end_timestamp": rows})
    for h in (16, 24):
        for stat in ("mean", "std", "q05", "q50", "q95"):
            traj[f"ret_{h}c_{stat}"] = rng.normal(size=len(rows))
            traj[f"rv_{h}c_{stat}"] = rng.uniform(size=len(rows))
    traj["n_futures"], traj["horizon"] = 4, 3
    traj["future_token"] = list(rng.integers(0, 9, (len(rows), 12)).astype(np.int32))
    traj["future_step_ret"] = list(rng.normal(0, 0.01, (len(rows), 12)).astype(np.float32))
    return emb, traj, candles


def test_rows_labels_and_past_returns_by_hand():
    emb, traj, candles = frames()
    data = agent_data_from_frames(emb, traj, candles, "BTC/USDT", n_past=3)
    closes = candles["close"].to_numpy()[15::16]  # (12,) close of each token's last candle
    log_ret = np.diff(np.log(closes))  # return into token 1..11
    assert len(data) == 10 and data.end_timestamp.tolist() == traj["end_timestamp"].tolist()
    assert data.mv_summary_names == tuple(summary_columns(traj)) == tuple(
        f"{t}_{h}c_{s}" for h in (16, 24) for t, s in (("ret", "mean"), ("ret", "std"), ("ret", "q05"),
                                                        ("rv", "mean")))
    np.testing.assert_allclose(data.next_return[:-1], log_ret[2:])  # row i is token i + 2
    assert np.isnan(data.next_return[-1]) and not data.tradable[-1] and data.tradable[:-1].all()
    np.testing.assert_allclose(data.past_returns[0], [0.0, *log_ret[:2]], rtol=1e-6)  # nothing before token 0
    np.testing.assert_allclose(data.past_returns[5], log_ret[4:7], rtol=1e-6)  # token 7: returns into 5, 6, 7
    np.testing.assert_array_equal(data.embedding, emb[["emb_0", "emb_1", "emb_2"]].to_numpy()[2:])
    assert data.mv_futures.shape == (10, 4, 3)


def test_a_gap_is_never_bridged():
    emb, traj, candles = frames(gap_after=5)
    data = agent_data_from_frames(emb, traj, candles, "BTC/USDT", token_hours=16, n_past=2)
    i = 3  # row of token 5, the last before the gap
    assert not data.tradable[i] and np.isnan(data.next_return[i]) and data.tradable[i - 1] and data.tradable[i + 1]
    assert data.past_returns[i + 1, -1] == 0.0  # the step into the token after the gap is not a return


def test_perturbing_the_future_leaves_earlier_rows_unchanged():
    emb, traj, candles = frames(seed=1)
    base = agent_data_from_frames(emb, traj, candles, "BTC/USDT")
    t = 5  # row t = token t + 2, whose last candle opens at end_timestamp[t]
    cut = base.end_timestamp[t]
    candles2, emb2, traj2 = candles.copy(), emb.copy(), traj.copy()
    candles2.loc[candles2["timestamp"] > cut, "close"] *= 1.5
    emb2.loc[emb2["end_timestamp"] > cut, "emb_0"] += 10.0
    later = traj2["end_timestamp"] > cut
    traj2.loc[later, "ret_16c_mean"] -= 1.0
    traj2["future_step_ret"] = [r * (5 if late else 1) for r, late in zip(traj2["future_step_ret"], later)]
    changed = agent_data_from_frames(emb2, traj2, candles2, "BTC/USDT")
    for name in ("embedding", "mv_summary", "past_returns", "mv_futures"):
        np.testing.assert_array_equal(getattr(changed, name)[:t + 1], getattr(base, name)[:t + 1])
        assert not np.array_equal(getattr(changed, name)[t + 1:], getattr(base, name)[t + 1:]), name
    np.testing.assert_array_equal(changed.next_return[:t], base.next_return[:t])  # the label of t looks at t + 1


def test_inputs_that_do_not_line_up_are_named():
    emb, traj, candles = frames()
    with pytest.raises(ValueError, match="trajectories rows have no embedding"):
        agent_data_from_frames(emb.iloc[:-3], traj, candles, "BTC/USDT")
    with pytest.raises(ValueError, match="no candle opens at token end"):
        agent_data_from_frames(emb, traj, candles.iloc[:-20], "BTC/USDT")
    with pytest.raises(ValueError, match="no ret_<h>c_mean column"):
        agent_data_from_frames(emb, traj.drop(columns=[c for c in traj if c.startswith("ret_")]), candles, "X")
