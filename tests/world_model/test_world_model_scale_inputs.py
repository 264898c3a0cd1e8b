"""Issue 12: the scale inputs (exo z-scores + each patch's RevIN statistics) enter the token embedding. They are
hand-checked, causal end to end (perturbing later candles leaves earlier embeddings unchanged), unit-free (volume
×1000 changes nothing, in the probes' raw baseline too), and the streaming step matches the parallel forward."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, Mamba2Config
from fin_ia_models.world_model.embed import embed_sequence
from fin_ia_models.world_model.exo_signals import exo_from_candles
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.probes import probe_targets, raw_features
from fin_ia_models.world_model.sequences import exo_columns
from fin_ia_models.world_model.streaming import StreamingEncoder

HOUR = 3_600_000
PATCH = 16


def _candles(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sigma = 0.005 * np.exp(np.cumsum(rng.normal(0, 0.05, n)))  # wandering volatility: the scale varies
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1, n) * sigma))
    frame = pd.DataFrame({"timestamp": np.arange(n, dtype=np.int64) * HOUR, "open": close, "high": close * 1.01,
                          "low": close * 0.99, "close": close, "volume": rng.uniform(1, 10, n) * (1 + 50 * sigma)})
    frame.attrs["timeframe"] = "1h"
    return frame


def _config(**kw) -> JEPAConfig:
    mixer = Mamba2Config(d_model=32, headdim=16, d_state=8, chunk_size=16, exo=ExoClockConfig(enabled=True))
    return JEPAConfig(vocab_size=32, mixer=mixer, n_layers=1, seq_len=32, scale_inputs=True, **kw)


def _tokens(candles: pd.DataFrame) -> pd.DataFrame:
    ends = np.arange(PATCH - 1, len(candles), PATCH, dtype=np.int64) * HOUR
    return pd.DataFrame({"end_timestamp": ends, "token": (np.arange(len(ends)) * 7) % 32})


def test_scale_columns_hand_computed():
    candles = _candles(2000)
    ends = _tokens(candles)["end_timestamp"].to_numpy()
    exo = exo_from_candles(candles, ends, PATCH, "1h")
    close, vol = candles["close"].to_numpy(), candles["volume"].to_numpy()
    k = 100
    e = int(ends[k] // HOUR)
    r = np.diff(np.log(close[e - PATCH: e + 1]))  # the patch's 16 returns (the first uses the prior close)
    assert exo["scale_ret"].iloc[k] == pytest.approx(np.log(100 * r.std()), rel=1e-5)
    trailing = vol[e - 719: e + 1].mean()  # 720 candles ending at the patch's last candle
    assert exo["scale_volume"].iloc[k] == pytest.approx(np.log(vol[e - PATCH + 1: e + 1].mean() / trailing), rel=1e-5)
    assert exo_columns(_config()) == ("exo_vol", "exo_volume", "scale_ret", "scale_volume")


def test_unit_free_under_volume_times_1000():
    candles = _candles(2000)
    scaled = candles.copy()
    scaled["volume"] *= 1000.0
    scaled.attrs = dict(candles.attrs)
    ends = _tokens(candles)["end_timestamp"].to_numpy()
    a, b = exo_from_candles(candles, ends, PATCH, "1h"), exo_from_candles(scaled, ends, PATCH, "1h")
    for col in ("exo_vol", "exo_volume", "scale_ret", "scale_volume"):
        np.testing.assert_allclose(a[col], b[col], atol=1e-5, err_msg=col)
    assert a["scale_volume"].abs().max() > 0.1  # not trivially equal: the volume input does vary
    np.testing.assert_allclose(raw_features(candles, ends), raw_features(scaled, ends), atol=1e-9, equal_nan=True)
    pd.testing.assert_frame_equal(probe_targets(candles, ends, "1h"), probe_targets(scaled, ends, "1h"))
    # and so the embedding of a model reading them is the same too
    torch.manual_seed(0)
    model = FinJEPA(_config(scale_hidden=16)).eval()
    tokens = _tokens(candles)
    np.testing.assert_allclose(embed_sequence(model, tokens, a).filter(like="emb_").to_numpy(),
                               embed_sequence(model, tokens, b).filter(like="emb_").to_numpy(), atol=1e-4)


@pytest.mark.parametrize("hidden", [0, 16])
def test_scale_inputs_are_causal_end_to_end(hidden):
    torch.manual_seed(0)
    model = FinJEPA(_config(scale_hidden=hidden)).eval()
    with torch.no_grad():  # make the scale path strong enough that a change would show
        for p in model.context_encoder.scale_proj.parameters():
            p.mul_(50.0)
    candles = _candles(2000)
    tokens = _tokens(candles)
    ends = tokens["end_timestamp"].to_numpy()
    cut = 80  # perturb every candle after token 80's last candle
    shocked = candles.copy()
    shocked.loc[int(ends[cut] // HOUR) + 1:, ["close", "volume"]] *= np.linspace(1.5, 4.0, len(candles) -
                                                                               int(ends[cut] // HOUR) - 1)[:, None]
    shocked.attrs = dict(candles.attrs)
    emb = embed_sequence(model, tokens, exo_from_candles(candles, ends, PATCH, "1h")).filter(like="emb_").to_numpy()
    emb2 = embed_sequence(model, tokens, exo_from_candles(shocked, ends, PATCH, "1h")).filter(like="emb_").to_numpy()
    np.testing.assert_array_equal(emb[: cut + 1], emb2[: cut + 1])
    assert np.abs(emb[cut + 1:] - emb2[cut + 1:]).max() > 1e-3  # the scale inputs do reach the embedding


def test_scale_inputs_are_needed_and_the_streaming_step_matches_forward():
    torch.manual_seed(0)
    model = FinJEPA(_config(scale_hidden=16)).eval()
    candles = _candles(1200)
    tokens = _tokens(candles)
    exo = exo_from_candles(candles, tokens["end_timestamp"].to_numpy(), PATCH, "1h")
    tok = torch.as_tensor(tokens["token"].to_numpy()[None].copy())
    ex = torch.as_tensor(exo[list(exo_columns(model.config))].to_numpy()[None].copy())
    with pytest.raises(ValueError, match="scale_inputs"):
        model.context_encoder(tok, None, ex[..., :2])
    with torch.no_grad():
        full = model.context_encoder(tok, None, ex)[0]
        states = model.context_encoder.stack.init_state(1)
        steps = []
        for t in range(tok.shape[1]):
            y, states = model.context_encoder.step(tok[:, t], states, None, ex[:, t])
            steps.append(y[0])
    torch.testing.assert_close(torch.stack(steps), full, atol=2e-4, rtol=1e-3)
    stream = StreamingEncoder(model.context_encoder, backend="numpy")
    out = np.stack([stream.step(int(t), None, e) for t, e in zip(tok[0], ex[0].numpy())])
    np.testing.assert_allclose(out, full.numpy(), atol=2e-4, rtol=1e-3)


def test_scale_target_learns_from_the_masked_scale_without_seeing_it():
    """``scale_target_weight``: the predictor regresses each masked token's scale columns. The loss changes with a
    target's scale, but no prediction can read it (the context encoder sees the mask token there, the predictor a
    zeroed exo row): the predicted scales are identical whatever the masked tokens' scale is."""
    from fin_ia_models.world_model.masking import sample_block_mask

    with pytest.raises(ValueError, match="needs scale_inputs=True"):
        JEPAConfig(vocab_size=32, scale_target_weight=1.0)
    torch.manual_seed(0)
    model = FinJEPA(_config(scale_target_weight=1.0, scale_hidden=16))
    b, length = 4, 32
    tokens = torch.randint(0, 32, (b, length))
    exo = torch.randn(b, length, 4)
    mask = sample_block_mask(b, length, model.config.masking, torch.Generator().manual_seed(1))
    out = model.loss(tokens, mask, None, exo)
    assert out["scale_target"] > 0 and torch.isfinite(out["loss"])
    changed = exo.clone()
    changed[mask] = changed[mask][:, [0, 1, 2, 3]] + torch.tensor([0.0, 0.0, 3.0, -2.0])  # the targets' scale only
    with torch.no_grad():
        seen = [model.predictor.scale_head(model.predictor.hidden(model.context_encoder(tokens, None, e, mask), mask,
                                                                  e)) for e in (exo, changed)]
    torch.testing.assert_close(seen[0], seen[1], rtol=0, atol=0)
    assert model.loss(tokens, mask, None, changed)["scale_target"] > out["scale_target"]  # what it is scored on moved
    out["loss"].backward()
    assert model.predictor.scale_head.weight.grad.abs().sum() > 0
    assert model.context_encoder.scale_proj[0].weight.grad.abs().sum() > 0  # the encoder learns from it too
    off = FinJEPA(_config())
    assert off.predictor.scale_head is None and "scale_target" not in off.loss(tokens, mask, None, exo)


def test_targets_without_layer_norm_keep_their_magnitude():
    """``target_layer_norm=False``: the same weights compare the prediction with the raw EMA targets instead."""
    from fin_ia_models.world_model.masking import sample_block_mask

    torch.manual_seed(0)
    tokens, exo = torch.randint(0, 32, (2, 32)), torch.randn(2, 32, 4)
    normed = FinJEPA(_config())
    raw = FinJEPA(_config(target_layer_norm=False))
    raw.load_state_dict(normed.state_dict())
    mask = sample_block_mask(2, 32, normed.config.masking, torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = normed.target_encoder(tokens, None, exo)[mask]
        pred = normed.predictor(normed.context_encoder(tokens, None, exo, mask), mask, exo)[mask]
        want = {True: torch.nn.functional.smooth_l1_loss(pred, torch.nn.functional.layer_norm(target, (32,))),
                False: torch.nn.functional.smooth_l1_loss(pred, target)}
        for norm, model in ((True, normed), (False, raw)):
            torch.testing.assert_close(model.loss(tokens, mask, None, exo)["jepa"], want[norm])
    assert not torch.isclose(want[True], want[False])
