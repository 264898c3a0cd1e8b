"""Tiny CPU trainings of both predictors through the real pipeline of arrays (candles → tokens → embeddings →
context → targets): the loss goes down, the futures' spread follows the data's volatility regime, same seed → same
weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin_ia_models.multiverse.context import build_context
from fin_ia_models.multiverse.targets import future_targets
from fin_ia_models.multiverse.train import train_multiverse
from tests.multiverse.conftest import frames_for, small_jepa, small_tokenizer, tiny_config, vol_regime_candles

HOUR = 3_600_000
LOW, HIGH = 0.002, 0.012  # hourly volatility of the two regimes (6×)


@pytest.fixture(scope="module")
def regimes():
    """Context and targets of a market that alternates between a calm and a wild regime every 20 tokens."""
    candles = vol_regime_candles(16 * 240, seed=4, vols=(LOW, HIGH))
    tokenizer = small_tokenizer()
    tokens, embeddings = frames_for(candles, tokenizer, small_jepa(tokenizer))
    config = tiny_config(tokenizer, hidden_dim=32, epochs=25, batch_size=32, lr=3e-3)
    context = build_context(tokens, embeddings, candles, config)
    targets, valid = future_targets(context, config.horizon, 16 * HOUR)
    rows = context.usable & valid
    return tokenizer, config, context, context.features[rows], targets[rows], candles


def _regime_origins(context, candles, n: int = 8) -> dict[str, np.ndarray]:
    """Usable rows whose last 16 tokens and next 3 lie inside one calm / one wild regime block of 320 candles."""
    first = int(candles["timestamp"].iloc[0])
    candle = (context.end_timestamp - first) // HOUR  # index of each token's last candle
    inside = (candle % 320 >= 16 * 16 - 1) & (candle % 320 < 320 - 48)
    wild = (candle // 320) % 2 == 1  # blocks alternate LOW, HIGH, LOW, ...
    return {"calm": np.flatnonzero(context.usable & inside & ~wild)[:n],
            "wild": np.flatnonzero(context.usable & inside & wild)[:n]}


@pytest.mark.parametrize("predictor", ["stochastic", "flow"])
def test_training_lowers_the_loss_and_the_spread_follows_volatility(regimes, predictor):
    tokenizer, config, context, features, targets, candles = regimes
    config = config.with_overrides(predictor=predictor)
    result = train_multiverse(features, targets, config, 0, tokenizer, prefer_cuda=False)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < 0.8 * losses[0], losses
    rows = _regime_origins(context, candles)
    assert len(rows["calm"]) >= 4 and len(rows["wild"]) >= 4
    spread = {}
    for regime, r in rows.items():
        traj = result.model.sample(context.end_timestamp[r], context.features[r], 32, 3, seed=0)
        ret, rv = traj.horizon_targets(16)  # (n, N)
        spread[regime] = (float(np.median(ret.std(axis=1))), float(np.median(rv)))
    # the calm regime's futures are several times narrower and calmer than the wild regime's (true ratio: 6×)
    assert spread["wild"][0] > 2.5 * spread["calm"][0], spread
    assert spread["wild"][1] > 2.5 * spread["calm"][1], spread
    assert spread["calm"][1] == pytest.approx(4 * LOW, rel=0.5)  # 16-candle realized vol: sqrt(16)·σ_hourly
    assert spread["wild"][1] == pytest.approx(4 * HIGH, rel=0.5)


def test_same_seed_gives_the_same_weights(regimes):
    tokenizer, config, _, features, targets, _ = regimes
    config = config.with_overrides(predictor="flow", epochs=2)  # OT coupling draws from numpy's RNG too
    first = train_multiverse(features, targets, config, 3, tokenizer, prefer_cuda=False).model.state_dict()
    second = train_multiverse(features, targets, config, 3, tokenizer, prefer_cuda=False).model.state_dict()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def test_training_refuses_bad_arrays(regimes):
    tokenizer, config, _, features, targets, _ = regimes
    with pytest.raises(ValueError, match="need features"):
        train_multiverse(features[:, 1:], targets, config, 0, tokenizer)
    bad = targets.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="training targets hold 1 NaN/inf values"):
        train_multiverse(features, bad, config, 0, tokenizer)


@pytest.mark.parametrize("predictor", ["stochastic", "flow"])
def test_preempted_training_resumes_to_the_same_weights(regimes, predictor, tmp_path, monkeypatch):
    """SIGTERM in the middle of an epoch: the step finishes, a checkpoint is written, ``TrainingPreempted`` is raised;
    the same call again resumes there and ends with the weights of an uninterrupted run (torch and numpy RNG states
    restored: the K samples of v1 and the OT plan sampling of v6 draw from them)."""
    import os
    import signal

    from fin_ia_models.multiverse.model import MultiverseModel
    from fin_ia_models.utils.preemption import TrainingPreempted

    tokenizer, config, _, features, targets, _ = regimes
    config = config.with_overrides(predictor=predictor, epochs=2)
    plain = train_multiverse(features, targets, config, 1, tokenizer, prefer_cuda=False).model.state_dict()
    calls, loss = [0], MultiverseModel.loss

    def loss_then_sigterm(self, *args):
        calls[0] += 1
        if calls[0] == 5:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives during step 5: it must still finish and be saved
        return loss(self, *args)

    monkeypatch.setattr(MultiverseModel, "loss", loss_then_sigterm)
    with pytest.raises(TrainingPreempted):
        train_multiverse(features, targets, config, 1, tokenizer, checkpoint_dir=tmp_path, prefer_cuda=False)
    monkeypatch.setattr(MultiverseModel, "loss", loss)
    resumed = train_multiverse(features, targets, config, 1, tokenizer, checkpoint_dir=tmp_path, prefer_cuda=False)
    assert resumed.info["steps"] > 5
    for key, value in plain.items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
