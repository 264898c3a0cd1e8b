"""Multiverse building blocks against hand-computed values and plain references: training scores, targets, context
features, decoding, the stored summary frame, configs and checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fin_ia_models.evaluation.forecast_scores import crps_ensemble, energy_score
from fin_ia_models.multiverse.config import MultiverseConfig, profile_config
from fin_ia_models.multiverse.context import RET_CLOSE, build_context, patch_scale_stats, token_scale
from fin_ia_models.multiverse.decode import CodeShapeTable, decode_futures, decode_futures_ref
from fin_ia_models.multiverse.losses import crps_fair, energy_score_fair
from fin_ia_models.multiverse.model import MultiverseModel
from fin_ia_models.multiverse.targets import future_targets, future_targets_ref
from fin_ia_models.multiverse.trajectories import Trajectories, futures_from_frame, summary_frame
from fin_ia_models.tokenizer.features import make_patches
from fin_ia_models.training.checkpoint import checkpoint_bytes, load_checkpoint_bytes
from tests.multiverse.conftest import tiny_config

HOUR = 3_600_000


def test_fair_scores_match_the_evaluation_estimators_and_a_hand_value():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 6, 7)), rng.normal(size=(5, 7))
    es = energy_score_fair(torch.as_tensor(x), torch.as_tensor(y)).numpy()
    np.testing.assert_allclose(es, energy_score(x, y, fair=True), rtol=1e-10)
    crps = crps_fair(torch.as_tensor(x), torch.as_tensor(y)).numpy()  # (5, 7)
    for d in range(7):
        np.testing.assert_allclose(crps[:, d], crps_ensemble(x[:, :, d], y[:, d], fair=True), rtol=1e-10)
    # members {0, 2}, outcome 1: E|X - y| = 1, ½·Σ_{i≠j}|x_i - x_j| / (m(m-1)) = ½·4/2 = 1 → 0
    assert float(crps_fair(torch.tensor([[[0.0], [2.0]]]), torch.tensor([[1.0]]))) == 0.0
    with pytest.raises(ValueError, match="K >= 2"):
        energy_score_fair(torch.zeros(2, 1, 3), torch.zeros(2, 3))


def test_fair_energy_score_has_finite_gradients_with_identical_samples():
    x = torch.zeros(2, 4, 3, requires_grad=True)
    energy_score_fair(x, torch.ones(2, 3)).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_patch_scale_is_the_tokenizers_revin_statistics(upstream):
    candles, tokenizer, _, tokens, _ = upstream
    c = tokenizer.config
    patches = make_patches(candles, c.patch_len, c.patch_len, c.volume_window, c.return_scale)
    _, (mean, std) = tokenizer.revin.normalize(torch.as_tensor(patches.values))  # (n, 1, C) each
    stats = patch_scale_stats(patches.values, c.revin_eps)
    np.testing.assert_allclose(stats[:, 0], np.log(std[:, 0, RET_CLOSE].double().numpy()), rtol=1e-5)
    np.testing.assert_allclose(stats[:, 1], (mean / std)[:, 0, RET_CLOSE].double().numpy(), rtol=1e-4, atol=1e-6)
    # hand value: returns of +1 %, -1 % alternating → μ = 0, σ = sqrt(1 + eps) in percent units
    values = np.zeros((1, 4, 5))
    values[0, :, RET_CLOSE] = [1.0, -1.0, 1.0, -1.0]
    np.testing.assert_allclose(patch_scale_stats(values, 1e-5)[0], [0.5 * np.log(1 + 1e-5), 0.0])
    with pytest.raises(ValueError, match="no complete 16-candle patch"):
        token_scale(candles.iloc[:400], tokens["end_timestamp"].to_numpy(), c)


def test_targets_match_the_loop_reference_and_skip_gaps(upstream):
    candles, tokenizer, _, tokens, embeddings = upstream
    config = tiny_config(tokenizer)
    context = build_context(tokens, embeddings, candles, config)
    gappy = context.__class__(np.delete(context.end_timestamp, [30, 31]), np.delete(context.features, [30, 31], 0),
                              np.delete(context.usable, [30, 31]), np.delete(context.latent, [30, 31], 0),
                              np.delete(context.scale, [30, 31], 0))
    for ctx in (context, gappy):
        y, valid = future_targets(ctx, 3, 16 * HOUR)
        y_ref, valid_ref = future_targets_ref(ctx, 3, 16 * HOUR)
        np.testing.assert_array_equal(valid, valid_ref)
        np.testing.assert_allclose(y[valid], y_ref[valid], rtol=1e-6)
        assert np.isnan(y[~valid]).all()
    _, valid = future_targets(gappy, 3, 16 * HOUR)
    assert not valid[27:30].any() and valid[30] and valid[26]  # rows whose next 3 tokens cross the gap
    y, _ = future_targets(context, 2, 16 * HOUR)
    np.testing.assert_allclose(y[5, 1, -2:], context.scale[7])  # step 2 of row 5 = token 7's patch scale


def test_context_features_are_causal(upstream):
    """Rewrite every candle after a cut: the context rows of tokens ending before it are bit-identical."""
    from tests.multiverse.conftest import frames_for

    candles, tokenizer, jepa, tokens, embeddings = upstream
    config = tiny_config(tokenizer)
    before = build_context(tokens, embeddings, candles, config)
    cut = int(candles["timestamp"].iloc[len(candles) // 2])
    changed = candles.copy()
    later = changed["timestamp"] >= cut
    changed.loc[later, ["open", "high", "low", "close"]] *= np.exp(np.linspace(0, 0.3, later.sum()))[:, None]
    after = build_context(*frames_for(changed, tokenizer, jepa), changed, config)
    past = before.end_timestamp < cut
    assert past.sum() > 20 and (~past).sum() > 20
    np.testing.assert_array_equal(before.features[past], after.features[: past.sum()])
    assert not np.allclose(before.features[~past][5:], after.features[past.sum():][5:], equal_nan=True)
    assert not before.usable[: config.context_tokens - 1].any() and before.usable[config.context_tokens - 1:].all()


def test_context_refuses_bad_inputs(upstream):
    candles, tokenizer, _, tokens, embeddings = upstream
    config = tiny_config(tokenizer)
    with pytest.raises(ValueError, match="do not cover the token sequence"):
        build_context(tokens, embeddings.iloc[1:], candles, config)
    nan = embeddings.copy()
    nan.loc[7, "emb_3"] = np.nan
    with pytest.raises(ValueError, match=r"emb_\* columns holds 1 NaN/inf values, the first at end_timestamp"):
        build_context(tokens, nan, candles, config)
    with pytest.raises(ValueError, match="context too short: 10 tokens, the multiverse needs at least 16"):
        build_context(tokens.iloc[:10], embeddings.iloc[:10], candles, config)
    with pytest.raises(ValueError, match="has 8 latent_\\* columns, the multiverse was built for 4"):
        build_context(tokens, embeddings, candles, config.with_overrides(
            tokenizer=config.tokenizer.with_overrides(latent_dim=4)))


def test_decode_matches_the_revin_reference_and_has_the_predicted_moments(upstream):
    _, tokenizer, _, tokens, _ = upstream
    rng = np.random.default_rng(0)
    latents = tokens.filter(like="latent_").to_numpy(np.float32)[:12]
    scale = np.c_[rng.normal(-0.5, 0.3, 12), rng.normal(0, 0.3, 12)]
    ids, returns = decode_futures(tokenizer, torch.as_tensor(latents), torch.as_tensor(scale))
    ids_ref, returns_ref = decode_futures_ref(tokenizer, latents, scale)
    np.testing.assert_array_equal(ids, ids_ref)
    np.testing.assert_array_equal(ids, tokens["token"].to_numpy()[:12])  # the tokenizer's own quantizer
    np.testing.assert_allclose(returns, returns_ref, rtol=1e-4, atol=1e-7)  # fp32 decoder, batch vs one
    pct = returns * tokenizer.config.return_scale  # back to the tokenizer's percent units
    sigma = np.exp(scale[:, 0])
    np.testing.assert_allclose(pct.mean(axis=1), scale[:, 1] * sigma, rtol=1e-9, atol=1e-12)  # μ = m·σ
    np.testing.assert_allclose(pct.std(axis=1), sigma, rtol=1e-6)


@pytest.mark.parametrize("quantizer", ["fsq", "vq"])
def test_code_shape_table_decodes_like_the_decoder(quantizer):
    """The live path's table lookup (all K codes decoded once) against ``decode_futures`` (the decoder per future):
    the same ids, the same returns up to the fp32 decoder run at another batch size."""
    from fin_ia_models.tokenizer.config import TokenizerConfig
    from fin_ia_models.tokenizer.model import TokenizerModel

    torch.manual_seed(0)
    tokenizer = TokenizerModel(TokenizerConfig(quantizer=quantizer, hidden_dim=16, latent_dim=8)).eval()
    rng = np.random.default_rng(1)
    latents = torch.as_tensor(rng.normal(size=(300, 8)), dtype=torch.float32)
    scale = torch.as_tensor(np.c_[rng.normal(-0.5, 0.3, 300), rng.normal(0, 0.3, 300)])
    table = CodeShapeTable(tokenizer)
    assert table.shapes.shape == (tokenizer.config.codebook_size, tokenizer.config.patch_len)
    ids = table.ids(latents)
    returns = table.returns(ids, scale.numpy())
    want_ids, want = decode_futures(tokenizer, latents, scale)
    np.testing.assert_array_equal(ids, want_ids)
    assert len(np.unique(ids)) > 20  # many codes are looked up, not one
    np.testing.assert_allclose(returns, want, rtol=1e-4, atol=1e-7)  # VQ: the code q vs straight-through z + (q − z)


def test_summary_frame_against_hand_quantiles_and_round_trip():
    rng = np.random.default_rng(3)
    b, n, h, l = 2, 5, 2, 4
    returns = rng.normal(0, 0.01, (b, n, h * l))
    traj = Trajectories(np.array([10, 20]), rng.integers(0, 9, (b, n, h)), np.zeros((b, n, h, 3), np.float32),
                        np.zeros((b, n, h, 2), np.float32), returns, l)
    frame = summary_frame(traj, (4, 6))
    ret6 = returns[:, :, :6].sum(axis=2)
    rv4 = np.sqrt((returns[:, :, :4] ** 2).sum(axis=2))
    np.testing.assert_allclose(frame["ret_6c_mean"], ret6.mean(axis=1))
    np.testing.assert_allclose(frame["ret_6c_q95"], np.quantile(ret6, 0.95, axis=1))
    np.testing.assert_allclose(frame["rv_4c_std"], rv4.std(axis=1, ddof=1))
    np.testing.assert_allclose(frame["rv_4c_q05"], np.quantile(rv4, 0.05, axis=1))
    ids, steps = futures_from_frame(frame)
    np.testing.assert_array_equal(ids, traj.token_ids)
    np.testing.assert_allclose(steps, returns.reshape(b, n, h, l).sum(axis=3), rtol=1e-6)


def test_config_rejects_bad_values_and_round_trips():
    with pytest.raises(ValueError, match="unknown predictor 'gan'"):
        MultiverseConfig(predictor="gan")
    with pytest.raises(ValueError, match="horizon must be >= 1, got 0"):
        MultiverseConfig(horizon=0)
    with pytest.raises(ValueError, match="n_train_samples must be >= 2"):
        MultiverseConfig(n_train_samples=1)
    with pytest.raises(ValueError, match="eval horizon 24 candles exceeds horizon 1 tokens"):
        MultiverseConfig(horizon=1)
    for profile in ("demo", "cpu", "full"):
        config = profile_config(profile, predictor="stochastic")
        assert type(config).from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.parametrize("predictor", ["stochastic", "flow"])
def test_checkpoint_round_trip_gives_the_same_futures(upstream, predictor):
    candles, tokenizer, _, tokens, embeddings = upstream
    config = tiny_config(tokenizer, predictor=predictor)
    torch.manual_seed(0)
    model = MultiverseModel(config)
    model.load_tokenizer(tokenizer)
    context = build_context(tokens, embeddings, candles, config)
    rows = np.flatnonzero(context.usable)[:3]
    again = load_checkpoint_bytes(checkpoint_bytes(model, "multiverse"), "test", "multiverse")
    first = model.sample(context.end_timestamp[rows], context.features[rows], 4, 3, seed=5)
    second = again.sample(context.end_timestamp[rows], context.features[rows], 4, 3, seed=5)
    np.testing.assert_array_equal(first.candle_returns, second.candle_returns)
    np.testing.assert_array_equal(first.token_ids, second.token_ids)


def test_report_overrides_parse_json_values_and_refuse_bare_keys():
    from fin_ia_models.multiverse.report import overrides

    assert overrides(["coupling=independent", "scale_windows=[4,16,64]", "epochs=3", "lr=0.002"]) == {
        "coupling": "independent", "scale_windows": (4, 16, 64), "epochs": 3, "lr": 0.002}
    with pytest.raises(ValueError, match="--set needs key=value, got 'epochs'"):
        overrides(["epochs"])
