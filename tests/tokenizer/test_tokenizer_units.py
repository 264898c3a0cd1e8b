"""Pure-function tests of the tokenizer parts: RevIN, FSQ, symlog, EMA VQ update, soft-DTW, features, config."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fin_ia_models.tokenizer.config import TokenizerConfig, profile_config
from fin_ia_models.tokenizer.features import FEATURE_NAMES, candle_features, make_patches
from fin_ia_models.tokenizer.fsq import FSQ, symexp, symlog
from fin_ia_models.tokenizer.revin import RevIN
from fin_ia_models.tokenizer.soft_dtw import soft_dtw, soft_dtw_divergence, soft_dtw_ref
from fin_ia_models.tokenizer.spherical_vq import SphericalVQ

HOUR = 3_600_000




def candles(n: int, seed: int = 0, start_ms: int = 1_700_000_000_000 // HOUR * HOUR) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.005, n))
    frame = pd.DataFrame({"timestamp": start_ms + HOUR * np.arange(n, dtype=np.int64), "open": open_, "high": high,
                          "low": low, "close": close, "volume": rng.lognormal(3, 1, n)})
    frame.attrs.update(symbol="TEST/USDT", timeframe="1h")
    return frame


# --- RevIN -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-5), (torch.float64, 1e-9)])
def test_revin_round_trip_is_exact(dtype, tol):
    torch.manual_seed(0)
    x = (torch.randn(8, 16, 5) * torch.tensor([0.01, 1.0, 30.0, 500.0, 2.0]) + 7.0).to(dtype)
    revin = RevIN(5).to(dtype)
    with torch.no_grad():
        revin.weight.copy_(torch.tensor([0.5, 2.0, -1.5, 1.0, 3.0]))
        revin.bias.copy_(torch.tensor([0.1, -0.2, 0.3, 0.0, 1.0]))
    y, stats = revin.normalize(x)
    assert torch.allclose(revin.denormalize(y, stats), x, rtol=tol, atol=tol * x.abs().max().item())
    # and the normalization really normalizes (affine undone): zero mean, unit std per patch and channel
    raw = (y - revin.bias) / revin.weight
    assert torch.allclose(raw.mean(dim=1), torch.zeros(8, 5, dtype=dtype), atol=1e-4)


# --- FSQ and symlog --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("levels", [(8, 8, 4, 4), (4, 4, 4, 4, 4), (8, 5, 5, 5), (3, 2)])
def test_fsq_indices_codes_round_trip_and_codebook_size(levels):
    fsq = FSQ(levels, dim=8)
    assert fsq.codebook_size == math.prod(levels)
    indices = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(indices)  # (K, len(levels))
    assert codes.abs().max() <= 1.0
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    assert len({tuple(c.tolist()) for c in codes}) == fsq.codebook_size  # all codes distinct


@pytest.mark.parametrize("levels", [(8, 8, 4, 4), (5, 3)])
def test_fsq_quantize_reaches_exactly_the_grid(levels):
    fsq = FSQ(levels, dim=4)
    z = torch.linspace(-50, 50, 20001)[:, None].repeat(1, len(levels))  # (N, K) sweeps every channel
    codes = fsq.quantize(z)
    for k, level in enumerate(levels):
        assert len(torch.unique(codes[:, k])) == level  # even levels too, thanks to the half-step offset
    assert torch.equal(fsq.indices_to_codes(fsq.codes_to_indices(codes)), codes)
    # straight-through: gradient flows through the rounding
    z.requires_grad_(True)
    fsq.quantize(z).sum().backward()
    assert z.grad.abs().sum() > 0


def test_symlog_symexp_are_inverse():
    x = torch.cat([torch.linspace(-1e4, 1e4, 1001), torch.randn(1000, dtype=torch.float64).float() * 5,
                   torch.tensor([0.0])]).double()
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-12, atol=1e-12)
    assert torch.allclose(symlog(symexp(symlog(x))), symlog(x), rtol=1e-12, atol=1e-12)
    assert symlog(torch.tensor(-(math.e - 1))).item() == pytest.approx(-1.0)


def test_config_rejects_bad_combinations():
    with pytest.raises(ValueError, match="prod"):
        TokenizerConfig(quantizer="fsq", fsq_levels=(4, 4, 4), codebook_size=1024)
    with pytest.raises(ValueError, match="unknown quantizer"):
        TokenizerConfig(quantizer="rvq")
    with pytest.raises(ValueError, match="receptive field"):
        TokenizerConfig(n_layers=2, kernel_size=2)
    assert {profile_config(p, "fsq").codebook_size for p in ("demo", "cpu", "full")} == {1024}
    with pytest.raises(ValueError, match="profile"):
        profile_config("huge")


# --- spherical VQ ----------------------------------------------------------------------------------------------------
def test_ema_update_hand_computed():
    vq = SphericalVQ(codebook_size=2, dim=2, decay=0.5, eps=0.1, dead_code_steps=10, buffer_size=4)
    with torch.no_grad():
        vq.codebook.copy_(torch.eye(2))
        vq.ema_sum.copy_(torch.eye(2))
        vq.ema_count.fill_(1.0)
    z = torch.tensor([[1.0, 0.0], [0.8, 0.6]])  # both closer (cosine) to code 0 = (1, 0)
    indices = vq.nearest(z)
    assert indices.tolist() == [0, 0]
    vq.ema_update(z, indices)
    # counts [2, 0], sums [[1.8, 0.6], [0, 0]]; ema = 0.5 * old + 0.5 * new
    assert torch.allclose(vq.ema_count, torch.tensor([1.5, 0.5]))
    assert torch.allclose(vq.ema_sum, torch.tensor([[1.4, 0.3], [0.0, 0.5]]))
    # Laplace: (c + eps) / (N + K eps) * N = [1.6, 0.6] / 2.2 * 2; the sphere projection removes the scale
    mean0 = torch.tensor([1.4, 0.3]) / (1.6 / 2.2 * 2)
    assert torch.allclose(vq.codebook[0], mean0 / mean0.norm())
    assert torch.allclose(vq.codebook[0], torch.tensor([1.4, 0.3]) / math.sqrt(2.05))
    assert torch.allclose(vq.codebook[1], torch.tensor([0.0, 1.0]))
    assert vq.steps_unused.tolist() == [0, 1]


def test_dead_codes_are_revived_from_the_buffer():
    torch.manual_seed(0)
    vq = SphericalVQ(codebook_size=8, dim=3, dead_code_steps=2, buffer_size=16)
    vq.train()
    z = torch.nn.functional.normalize(torch.tensor([[1.0, 0.2, 0.0]]).repeat(4, 1), dim=-1)
    for _ in range(3):
        vq(z)
    # all but one code went unused for >= 2 steps and were re-seeded from buffered latents (all equal to z)
    assert int(vq.revived_total) >= 7
    reseeded = torch.isclose(vq.codebook, z[:1].expand(8, 3), atol=1e-6).all(dim=1)
    assert int(reseeded.sum()) >= 7  # the one code in use only drifts towards z by EMA, the others ARE z
    vq.eval()
    before = int(vq.revived_total)
    vq(torch.randn(4, 3))
    assert int(vq.revived_total) == before  # no update, no revival in eval mode


# --- soft-DTW --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("gamma", [0.01, 0.1, 1.0, 10.0])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-9), (torch.float32, 1e-4)])
def test_soft_dtw_matches_direct_recursion(gamma, dtype, tol):
    torch.manual_seed(1)
    x, y = torch.randn(3, 7, 2, dtype=torch.float64), torch.randn(3, 5, 2, dtype=torch.float64)
    fast = soft_dtw(x.to(dtype), y.to(dtype), gamma)
    for b in range(3):
        ref = soft_dtw_ref(x[b].tolist(), y[b].tolist(), gamma)
        assert fast[b].item() == pytest.approx(ref, rel=tol, abs=tol)


@pytest.mark.parametrize("gamma", [0.1, 1.0])
def test_soft_dtw_gradient_matches_finite_differences(gamma):
    torch.manual_seed(2)
    x = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    y = torch.randn(2, 4, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: soft_dtw(a, b, gamma), (x, y), eps=1e-6, atol=1e-6)
    y2 = torch.randn(2, 6, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: soft_dtw_divergence(a, b, gamma), (x, y2), eps=1e-6, atol=1e-6)


def test_soft_dtw_divergence_is_zero_only_at_equality():
    x = torch.randn(4, 16, 5)
    assert torch.allclose(soft_dtw_divergence(x, x, 0.1), torch.zeros(4), atol=1e-4)
    assert (soft_dtw_divergence(x, x + 0.5 * torch.randn_like(x), 0.1) > 0.1).all()
    with pytest.raises(ValueError, match="gamma"):
        soft_dtw(x, x, 0.0)


# --- features and patches --------------------------------------------------------------------------------------------
def test_features_are_the_documented_log_returns():
    frame = candles(60)
    feats, valid = candle_features(frame, volume_window=24, return_scale=100.0)
    assert feats.shape == (60, len(FEATURE_NAMES))
    assert not valid[:23].any() and valid[23:].all()
    t = 40
    assert feats[t, 3] == pytest.approx(100 * math.log(frame.close[t] / frame.close[t - 1]))
    assert feats[t, 1] == pytest.approx(100 * math.log(frame.high[t] / frame.close[t - 1]))
    assert feats[t, 4] == pytest.approx(math.log1p(frame.volume[t] / frame.volume[t - 23:t + 1].mean()))


def test_patches_never_span_a_gap_and_sit_on_the_absolute_grid():
    frame = candles(400)
    gapped = frame.drop(index=range(200, 203)).reset_index(drop=True)  # a 3-hour maintenance hole
    gapped.attrs = dict(frame.attrs)
    gap_start, gap_end = frame.timestamp[200], frame.timestamp[203]
    for stride in (1, 16):
        patches = make_patches(gapped, patch_len=16, stride=stride, volume_window=24)
        first = patches.end_timestamp - 15 * HOUR
        # no patch contains the hole; none after it until the volume window refilled
        assert not ((first < gap_start) & (patches.end_timestamp >= gap_end)).any()
        assert not ((patches.end_timestamp >= gap_end) & (first < gap_end + 23 * HOUR)).any()
        assert ((patches.end_timestamp // HOUR + 1) % stride == 0).all()
    dense = make_patches(gapped, 16, 1, 24)
    # every patch equals the candle features it claims to cover
    feats, _ = candle_features(gapped, 24)
    row = int(np.flatnonzero(gapped.timestamp.to_numpy() == dense.end_timestamp[5])[0])
    assert np.allclose(dense.values[5], feats[row - 15:row + 1].astype(np.float32))


def test_patch_alignment_does_not_depend_on_where_the_series_starts():
    frame = candles(300)
    shifted = frame.iloc[5:].reset_index(drop=True)
    shifted.attrs = dict(frame.attrs)
    a, b = make_patches(frame, 16), make_patches(shifted, 16)
    common = np.intersect1d(a.end_timestamp, b.end_timestamp)
    assert len(common) >= len(b) - 2
    assert np.array_equal(a.values[np.isin(a.end_timestamp, common)], b.values[np.isin(b.end_timestamp, common)])


def test_bad_frames_are_rejected():
    frame = candles(50)
    with pytest.raises(ValueError, match="increasing"):
        candle_features(frame.iloc[::-1].reset_index(drop=True))
    broken = frame.copy()
    broken.loc[3, "close"] = -1.0
    with pytest.raises(ValueError, match="> 0"):
        candle_features(broken)


# --- metrics ---------------------------------------------------------------------------------------------------------
def test_code_usage_hand_computed():
    from fin_ia_models.tokenizer.metrics import code_usage

    usage = code_usage(np.array([0, 0, 1, 1, 2, 2, 3, 3]), codebook_size=8)
    assert usage["utilization"] == 0.5 and usage["codes_used"] == 4
    assert usage["perplexity"] == pytest.approx(4.0)
    assert code_usage(np.zeros(10, dtype=np.int64), 8)["perplexity"] == pytest.approx(1.0)
    assert usage["uniform_expected_utilization"] == pytest.approx(1 - (7 / 8) ** 8)
    with pytest.raises(ValueError, match="token ids"):
        code_usage(np.array([8]), codebook_size=8)
