"""Fin-JEPA: VICReg, EMA schedule, masking, causality, collapse monitors, a tiny training run, checkpoint, embed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fin_ia_models.world_model.collapse import collapse_stats, effective_rank
from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, Mamba2Config, MaskingConfig, jepa_profile
from fin_ia_models.world_model.embed import embed_sequence
from fin_ia_models.world_model.jepa import FinJEPA, ema_momentum
from fin_ia_models.world_model.masking import sample_block_mask
from fin_ia_models.world_model.train import load_jepa, train_jepa
from fin_ia_models.world_model.vicreg import vicreg_loss




TINY = JEPAConfig(
    vocab_size=32, mixer=Mamba2Config(d_model=32, headdim=16, d_state=8, chunk_size=16), n_layers=1, seq_len=64,
    batch_size=8, max_steps=30, lr=3e-3, masking=MaskingConfig(n_blocks=2, block_ratio=(0.1, 0.2), min_context=4),
)


def _tokens(n: int, seed: int, exo: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    toks = [0]
    for _ in range(n - 1):  # a Markov chain: the next token is predictable from the last one
        toks.append((toks[-1] * 3 + int(rng.integers(0, 3))) % 32)
    frame = pd.DataFrame({"end_timestamp": np.arange(n, dtype=np.int64) * 57_600_000, "token": np.array(toks)})
    if exo:
        frame["exo_vol"] = rng.normal(size=n).astype(np.float32)
        frame["exo_volume"] = rng.normal(size=n).astype(np.float32)
    return frame


def test_vicreg_hand_computed():
    a = torch.tensor([[0.0, 0.0], [2.0, 2.0]])  # std sqrt(2) > 1 per dim; cov [[2, 2], [2, 2]]
    b = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # collapsed: std sqrt(1e-4) = 0.01
    t = vicreg_loss(a, b)
    assert t.invariance.item() == pytest.approx(1.0)  # mean of (1, 1, 1, 1)
    assert t.variance.item() == pytest.approx((0.0 + 0.99) / 2)
    assert t.covariance.item() == pytest.approx((2 * 2.0**2 / 2 + 0.0) / 2)  # off-diag² sum / d, branch average
    assert t.total.item() == pytest.approx(25 * 1.0 + 25 * 0.495 + 1 * 2.0)


def test_ema_momentum_schedule_and_update():
    assert ema_momentum(0, 100) == pytest.approx(0.996)
    assert ema_momentum(50, 100) == pytest.approx(0.998)
    assert ema_momentum(100, 100) == pytest.approx(1.0)
    assert ema_momentum(500, 100) == pytest.approx(1.0)
    model = FinJEPA(TINY)
    with torch.no_grad():
        model.context_encoder.embed.weight.add_(1.0)
    before = model.target_encoder.embed.weight.clone()
    model.ema_update(0.75)
    expected = 0.75 * before + 0.25 * model.context_encoder.embed.weight
    torch.testing.assert_close(model.target_encoder.embed.weight, expected)
    assert not any(p.requires_grad for p in model.target_encoder.parameters())


def test_block_mask_shape_and_ratios():
    cfg = MaskingConfig(n_blocks=3, block_ratio=(0.1, 0.1), min_context=10)
    mask = sample_block_mask(50, 100, cfg, torch.Generator().manual_seed(0))
    assert mask.shape == (50, 100) and mask.dtype == torch.bool
    assert not mask[:, :10].any()  # min_context is never a target
    counts = mask.sum(1)
    assert (counts >= 10).all() and (counts <= 30).all()  # 3 blocks of 10, possibly overlapping
    runs = (mask[:, 1:] & ~mask[:, :-1]).sum(1) + mask[:, 0]
    assert (runs >= 1).all() and (runs <= 3).all()
    with pytest.raises(ValueError, match="too short"):
        sample_block_mask(1, 11, cfg)


@pytest.mark.parametrize("exo_on", [False, True])
def test_context_encoder_is_causal(exo_on):
    torch.manual_seed(0)
    cfg = JEPAConfig(vocab_size=32, n_latent=3, mixer=Mamba2Config(d_model=32, headdim=16, chunk_size=8,
                     exo=ExoClockConfig(enabled=exo_on)), n_layers=2, seq_len=64)
    enc = FinJEPA(cfg).context_encoder.eval()
    tokens, lat, exo = torch.randint(0, 32, (2, 40)), torch.randn(2, 40, 3), torch.randn(2, 40, 2)
    t2, lat2, exo2 = tokens.clone(), lat.clone(), exo.clone()
    t2[:, 25:] = torch.randint(0, 32, (2, 15))
    lat2[:, 25:] += 5.0
    exo2[:, 25:] += 3.0
    with torch.no_grad():
        e1 = enc(tokens, lat, exo if exo_on else None)
        e2 = enc(t2, lat2, exo2 if exo_on else None)
    torch.testing.assert_close(e1[:, :25], e2[:, :25], rtol=0, atol=0)
    assert not torch.allclose(e1[:, 25:], e2[:, 25:])


def test_embed_sequence_is_causal_and_shaped():
    torch.manual_seed(0)
    model = FinJEPA(TINY)
    frame = _tokens(90, 0)
    emb = embed_sequence(model, frame)
    assert list(emb.columns) == ["end_timestamp"] + [f"emb_{i}" for i in range(32)]
    assert (emb["end_timestamp"].to_numpy() == frame["end_timestamp"].to_numpy()).all()
    changed = frame.copy()
    changed.loc[60:, "token"] = (changed.loc[60:, "token"] + 7) % 32
    emb2 = embed_sequence(model, changed)
    pd.testing.assert_frame_equal(emb.iloc[:60], emb2.iloc[:60])
    assert not np.allclose(emb.iloc[60:, 1:], emb2.iloc[60:, 1:])
    with pytest.raises(ValueError, match="tokens must lie"):
        embed_sequence(model, frame.assign(token=frame["token"] + 100))


def test_collapse_monitors():
    iso = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    assert effective_rank(iso) > 7.5
    assert effective_rank(iso[:, :1] * torch.ones(1, 8)) == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.ones(10, 8)) == 1.0
    stats = collapse_stats(torch.cat([iso[:, :7], torch.zeros(2000, 1)], 1))
    assert stats.std_min == 0.0 and stats.dim == 8 and 6.5 < stats.effective_rank < 7.0 + 1e-6


def test_tiny_training_lowers_loss_without_collapse_and_is_reproducible(tmp_path):
    seqs = {"AAA": _tokens(400, 1, exo=True), "BBB": _tokens(300, 2, exo=True)}
    cfg = TINY.__class__(**{**TINY.__dict__, "mixer": Mamba2Config(d_model=32, headdim=16, d_state=8, chunk_size=16,
                                                                   exo=ExoClockConfig(enabled=True))})
    r = train_jepa(seqs, cfg, seed=3, output_dir=tmp_path / "a")
    losses = [h["loss"] for h in r.history]
    assert len(losses) == cfg.max_steps
    assert np.mean(losses[-5:]) < 0.9 * np.mean(losses[:3])
    final = {k.removeprefix("final_collapse_"): v for k, v in r.metrics.items() if k.startswith("final_collapse_")}
    assert final["std_min"] > 0.1 and final["effective_rank"] > 0.3 * final["dim"]
    assert r.history[-1]["ema_momentum"] == pytest.approx(1.0)
    # same seed → same weights; the checkpoint reloads to the same embeddings
    r2 = train_jepa(seqs, cfg, seed=3, output_dir=tmp_path / "b")
    for (k, a), b in zip(r.model.state_dict().items(), r2.model.state_dict().values()):
        assert torch.equal(a, b), k
    reloaded = load_jepa(r.checkpoint_path)
    pd.testing.assert_frame_equal(embed_sequence(reloaded, seqs["AAA"]), embed_sequence(r.model, seqs["AAA"]))


def test_train_rejects_short_sequences_and_missing_exo(tmp_path):
    with pytest.raises(ValueError, match="seq_len"):
        train_jepa({"X": _tokens(20, 0)}, TINY, seed=0, output_dir=tmp_path)
    exo_cfg = JEPAConfig(**{**TINY.__dict__, "mixer": Mamba2Config(d_model=32, headdim=16,
                                                                  exo=ExoClockConfig(enabled=True))})
    with pytest.raises(ValueError, match="exo-clock is enabled"):
        train_jepa({"X": _tokens(100, 0)}, exo_cfg, seed=0, output_dir=tmp_path)


def test_profiles():
    demo, full = jepa_profile("demo"), jepa_profile("full")
    assert demo.mixer.d_model < full.mixer.d_model and full.mixer.exo.enabled
    assert jepa_profile("demo", max_steps=5).max_steps == 5
    with pytest.raises(ValueError, match="unknown profile"):
        jepa_profile("huge")


def test_exo_from_columns_or_separate_frame():
    from fin_ia_models.world_model.sequences import sequence_arrays

    cfg = JEPAConfig(**{**TINY.__dict__, "mixer": Mamba2Config(d_model=32, headdim=16,
                                                              exo=ExoClockConfig(enabled=True))})
    with_cols = _tokens(30, 0, exo=True)
    from_cols = sequence_arrays(with_cols, cfg)
    separate = with_cols[["end_timestamp", "exo_vol", "exo_volume"]].iloc[::-1]  # order does not matter
    from_frame = sequence_arrays(with_cols.drop(columns=["exo_vol", "exo_volume"]), cfg, separate)
    np.testing.assert_array_equal(from_cols.exo, from_frame.exo)
    assert from_cols.exo.shape == (30, 2)
    with pytest.raises(ValueError, match="does not cover"):
        sequence_arrays(with_cols.drop(columns=["exo_vol", "exo_volume"]), cfg, separate.iloc[1:])
    assert sequence_arrays(with_cols, TINY).exo is None  # clock off: exo columns are ignored
