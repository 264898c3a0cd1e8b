"""``MultiverseModel.sample``: shapes, seeds, batch invariance, causality end to end (candles → tokens → JEPA
embeddings → context → futures), solver choice, and bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fin_ia_models.config import TimeSplit
from fin_ia_models.multiverse.context import build_context
from fin_ia_models.multiverse.model import MultiverseModel, row_noise
from fin_ia_models.multiverse.stage import check_versions, multiverse_trajectories
from tests.multiverse.conftest import frames_for, tiny_config

PREDICTORS = ["stochastic", "flow"]


def model_for(tokenizer, predictor: str, **overrides) -> MultiverseModel:
    torch.manual_seed(0)
    model = MultiverseModel(tiny_config(tokenizer, predictor=predictor, **overrides))
    model.load_tokenizer(tokenizer)
    return model.eval()


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_shapes_seeds_and_batch_invariance(upstream, predictor):
    candles, tokenizer, _, tokens, embeddings = upstream
    model = model_for(tokenizer, predictor)
    context = build_context(tokens, embeddings, candles, model.config)
    rows = np.flatnonzero(context.usable)[:6]
    ts, x = context.end_timestamp[rows], context.features[rows]
    traj = model.sample(ts, x, 5, 3, seed=7)
    assert traj.shape == (6, 5, 3) and traj.latents.shape == (6, 5, 3, 8) and traj.scale.shape == (6, 5, 3, 2)
    assert traj.candle_returns.shape == (6, 5, 48) and traj.step_returns().shape == (6, 5, 3)
    assert np.isfinite(traj.candle_returns).all() and ((traj.token_ids >= 0) & (traj.token_ids < 1024)).all()
    np.testing.assert_allclose(traj.step_returns().sum(axis=2), traj.candle_returns.sum(axis=2), rtol=1e-12)
    same = model.sample(ts, x, 5, 3, seed=7)
    np.testing.assert_array_equal(traj.candle_returns, same.candle_returns)  # same seed → same futures
    other = model.sample(ts, x, 5, 3, seed=8)
    assert not np.allclose(traj.candle_returns, other.candle_returns)
    # a row's futures do not depend on the other rows (up to fp32 rounding: BLAS blocks by batch size)
    alone = model.sample(ts[2:3], x[2:3], 5, 3, seed=7)
    np.testing.assert_allclose(alone.candle_returns[0], traj.candle_returns[2], rtol=1e-4, atol=1e-7)
    assert np.std(traj.horizon_targets(24)[0], axis=1).min() > 0  # futures diverge


def test_row_noise_depends_on_seed_and_timestamp_only():
    a = row_noise(3, np.array([5, 6, 7]), (2, 4))
    np.testing.assert_array_equal(a[1], row_noise(3, np.array([6]), (2, 4))[0])
    np.testing.assert_array_equal(a[0], np.random.default_rng([3, 5]).standard_normal((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="seed must be a non-negative int, got -1"):
        row_noise(-1, np.array([5]), (2,))


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_sampling_is_causal_end_to_end(upstream, predictor):
    """Rewrite every candle after a cut, rebuild tokens, embeddings and contexts with the same models: the futures
    sampled at tokens ending before the cut are bit-identical; later ones change."""
    candles, tokenizer, jepa, tokens, embeddings = upstream
    model = model_for(tokenizer, predictor)
    cut = int(candles["timestamp"].iloc[len(candles) * 2 // 3])
    changed = candles.copy()
    later = changed["timestamp"] >= cut
    rng = np.random.default_rng(9)
    changed.loc[later, ["open", "high", "low", "close"]] *= np.exp(np.cumsum(rng.normal(0, 0.03, later.sum())))[:, None]
    futures = []
    for frame, (tok, emb) in ((candles, (tokens, embeddings)), (changed, frames_for(changed, tokenizer, jepa))):
        context = build_context(tok, emb, frame, model.config)
        rows = np.flatnonzero(context.usable)
        futures.append(model.sample(context.end_timestamp[rows], context.features[rows], 4, 3, seed=1))
    before, after = futures
    past = before.end_timestamp < cut
    assert past.sum() > 20 and (~past).sum() > 10
    np.testing.assert_array_equal(before.candle_returns[past], after.candle_returns[past])
    np.testing.assert_array_equal(before.token_ids[past], after.token_ids[past])
    assert not np.allclose(before.candle_returns[~past], after.candle_returns[~past])


def test_flow_solver_choice(upstream):
    candles, tokenizer, _, tokens, embeddings = upstream
    model = model_for(tokenizer, "flow")
    context = build_context(tokens, embeddings, candles, model.config)
    rows = np.flatnonzero(context.usable)[:3]
    ts, x = context.end_timestamp[rows], context.features[rows]
    euler1 = model.sample(ts, x, 4, 2, seed=0, solver="euler", steps=1)
    euler8 = model.sample(ts, x, 4, 2, seed=0, solver="euler", steps=8)
    dopri = model.sample(ts, x, 4, 2, seed=0, solver="dopri5")
    assert not np.array_equal(euler1.scale, euler8.scale)
    # a finer Euler grid is closer to the accurate solve than one step
    assert np.abs(euler8.scale - dopri.scale).max() < np.abs(euler1.scale - dopri.scale).max()


@pytest.mark.parametrize("predictor", PREDICTORS)
def test_bad_inputs_are_refused_with_the_value(upstream, predictor):
    candles, tokenizer, _, tokens, embeddings = upstream
    model = model_for(tokenizer, predictor)
    context = build_context(tokens, embeddings, candles, model.config)
    ts, x = context.end_timestamp[20:22], context.features[20:22]
    with pytest.raises(ValueError, match="horizon must be an int >= 1, got 0"):
        model.sample(ts, x, 4, 0, seed=0)
    with pytest.raises(ValueError, match="n_futures must be an int >= 1, got 0"):
        model.sample(ts, x, 0, 2, seed=0)
    bad = x.copy()
    bad[1, 3] = np.inf
    with pytest.raises(ValueError, match=f"1 NaN/inf values, the first in the row ending at {ts[1]}"):
        model.sample(ts, bad, 4, 2, seed=0)
    with pytest.raises(ValueError, match=r"shape \(B, 28\), got \(2, 27\)"):
        model.sample(ts, x[:, :-1], 4, 2, seed=0)
    with pytest.raises(ValueError, match="at least one row"):
        model.sample(ts[:0], x[:0], 4, 2, seed=0)


def test_other_upstream_versions_are_refused(upstream):
    candles, tokenizer, _, tokens, embeddings = upstream
    model = model_for(tokenizer, "flow")
    check_versions(model.config, "tok/1", "jepa/1")
    with pytest.raises(ValueError, match="made by Fin-JEPA 'jepa/2', but this multiverse was trained on Fin-JEPA "
                                         "'jepa/1'"):
        check_versions(model.config, "tok/1", "jepa/2")
    with pytest.raises(ValueError, match="made by tokenizer 'tok/0'"):
        multiverse_trajectories(model, tokens, embeddings, candles, TimeSplit(), 0, symbol="TEST/USDT",
                                tokenizer_version="tok/0", jepa_version="jepa/1")
