"""SSD chunked scan vs the sequential recurrence, and the mixer's step mode vs its parallel path."""

from __future__ import annotations

import pytest
import torch

from fin_ia_models.world_model.config import ExoClockConfig, Mamba2Config
from fin_ia_models.world_model.mamba2 import Mamba2Mixer
from fin_ia_models.world_model.ssd import ssd_chunked, ssd_sequential_ref





def _inputs(b, l, h, p, g, n, dtype=torch.float32, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, l, h, p, generator=gen, dtype=dtype)
    dt = torch.rand(b, l, h, generator=gen, dtype=dtype) * 0.5 + 0.01
    A = -(torch.rand(h, generator=gen, dtype=dtype) * 4 + 0.1)
    B = torch.randn(b, l, g, n, generator=gen, dtype=dtype)
    C = torch.randn(b, l, g, n, generator=gen, dtype=dtype)
    s0 = torch.randn(b, h, p, n, generator=gen, dtype=dtype)
    return x, dt, A, B, C, s0


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 64])
@pytest.mark.parametrize("length", [1, 16, 50, 130])
@pytest.mark.parametrize("with_state", [False, True])
def test_chunked_matches_sequential_fp32(chunk_size, length, with_state):
    x, dt, A, B, C, s0 = _inputs(2, length, 4, 8, 2, 5)
    init = s0 if with_state else None
    y, s = ssd_chunked(x, dt, A, B, C, chunk_size, initial_state=init)
    y_ref, s_ref = ssd_sequential_ref(x, dt, A, B, C, initial_state=init)
    assert y.shape == y_ref.shape == (2, length, 4, 8)
    torch.testing.assert_close(y, y_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s, s_ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_size", [8, 32])
def test_chunked_matches_sequential_fp64(chunk_size):
    x, dt, A, B, C, s0 = _inputs(1, 77, 4, 4, 1, 3, dtype=torch.float64)
    y, s = ssd_chunked(x, dt, A, B, C, chunk_size, initial_state=s0)
    y_ref, s_ref = ssd_sequential_ref(x, dt, A, B, C, initial_state=s0)
    torch.testing.assert_close(y, y_ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s, s_ref, rtol=1e-10, atol=1e-10)


def test_block_size_does_not_change_result_and_state_chains():
    x, dt, A, B, C, _ = _inputs(2, 200, 4, 8, 1, 6)
    y1, s1 = ssd_chunked(x, dt, A, B, C, 16, chunks_per_block=1)
    y2, s2 = ssd_chunked(x, dt, A, B, C, 16, chunks_per_block=100)
    torch.testing.assert_close(y1, y2, rtol=1e-5, atol=1e-5)
    # splitting the sequence and passing the final state as the next initial state gives the same output
    ya, sa = ssd_chunked(x[:, :90], dt[:, :90], A, B[:, :90], C[:, :90], 16)
    yb, sb = ssd_chunked(x[:, 90:], dt[:, 90:], A, B[:, 90:], C[:, 90:], 16, initial_state=sa)
    torch.testing.assert_close(torch.cat([ya, yb], 1), y1, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sb, s1, rtol=1e-5, atol=1e-5)


def test_chunked_gradients_match_sequential():
    x, dt, A, B, C, _ = _inputs(1, 40, 2, 4, 1, 3, dtype=torch.float64)
    for t in (x, dt, B, C):
        t.requires_grad_(True)
    y, _ = ssd_chunked(x, dt, A, B, C, 16)
    g1 = torch.autograd.grad(y.sin().sum(), (x, dt, B, C))
    y_ref, _ = ssd_sequential_ref(x, dt, A, B, C)
    g2 = torch.autograd.grad(y_ref.sin().sum(), (x, dt, B, C))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_bad_shapes_are_rejected():
    x, dt, A, B, C, _ = _inputs(1, 10, 4, 2, 3, 2)  # 4 heads, 3 groups
    with pytest.raises(ValueError, match="multiple of groups"):
        ssd_chunked(x, dt, A, B, C, 4)
    x, dt, A, B, C, _ = _inputs(1, 10, 4, 2, 2, 2)
    with pytest.raises(ValueError, match="dt must be"):
        ssd_chunked(x, dt[:, :5], A, B, C, 4)
    with pytest.raises(ValueError, match="initial_state"):
        ssd_chunked(x, dt, A, B, C, 4, initial_state=torch.zeros(1, 4, 2, 3))


@pytest.mark.parametrize("exo_on", [False, True])
@pytest.mark.parametrize("length", [1, 3, 29])
def test_mixer_step_equals_parallel(exo_on, length):
    torch.manual_seed(0)
    cfg = Mamba2Config(d_model=32, headdim=16, ngroups=2, d_state=8, chunk_size=8, exo=ExoClockConfig(enabled=exo_on))
    mixer = Mamba2Mixer(cfg)
    u = torch.randn(2, length, 32)
    exo = torch.randn(2, length, 2) if exo_on else None
    with torch.no_grad():
        y, final = mixer(u, exo, return_state=True)
        state = mixer.init_state(2)
        steps = []
        for t in range(length):
            y_t, state = mixer.step(u[:, t], state, None if exo is None else exo[:, t])
            steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state.ssm, final.ssm, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state.conv, final.conv, rtol=1e-6, atol=1e-6)
    # the state from the parallel path continues correctly in step mode
    u_next = torch.randn(2, 32)
    exo_next = torch.randn(2, 2) if exo_on else None
    with torch.no_grad():
        exo_all = None if exo is None else torch.cat([exo, exo_next[:, None]], 1)
        full = mixer(torch.cat([u, u_next[:, None]], 1), exo_all)
        y_next, _ = mixer.step(u_next, final, exo_next)
    torch.testing.assert_close(y_next, full[:, -1], rtol=1e-5, atol=1e-5)


def test_mixer_dt_respects_limits():
    cfg = Mamba2Config(d_model=16, headdim=8, dt_limit=(0.01, 0.05))
    mixer = Mamba2Mixer(cfg)
    dt = mixer._dt(torch.randn(3, 5, cfg.nheads) * 10, None)
    assert dt.min() >= 0.01 and dt.max() <= 0.05
    init = torch.nn.functional.softplus(mixer.dt_bias)
    assert init.min() >= cfg.dt_min * 0.999 and init.max() <= cfg.dt_max * 1.001


def test_config_rejects_bad_heads():
    with pytest.raises(ValueError, match="headdim must divide"):
        Mamba2Config(d_model=10, headdim=3)
    with pytest.raises(ValueError, match="ngroups must divide"):
        Mamba2Config(d_model=32, headdim=16, ngroups=3)




# --- parity per dtype: the fast paths under the precisions the profiles train in -------------------------------------
def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


@pytest.mark.parametrize("chunk_size", [8, 16, 64])
def test_chunked_matches_reference_in_bf16(chunk_size):
    """bf16 inputs (what bf16-mixed autocast feeds the scan on GPU): the chunked scan stays within bf16 rounding of
    the fp64 reference on the same (bf16-rounded) inputs, at every chunk size (the log-decay cumsum runs in fp32;
    in bf16 its error grew to 3e-2 at chunk 64); fp32 stays orders of magnitude closer."""
    x, dt, A, B, C, s0 = _inputs(2, 130, 4, 8, 2, 5)
    bf = [t.bfloat16() for t in (x, dt, A, B, C, s0)]
    y, s = ssd_chunked(*bf[:5], chunk_size, initial_state=bf[5])
    assert y.dtype == torch.bfloat16
    ref = [t.double() for t in bf]
    y_ref, s_ref = ssd_sequential_ref(*ref[:5], initial_state=ref[5])
    assert _rel_err(y, y_ref) < 1e-2 and _rel_err(s, s_ref) < 1e-2  # bf16: 8 mantissa bits, ~4e-3 per rounding
    y32, _ = ssd_chunked(*[t.float() for t in bf[:5]], chunk_size, initial_state=bf[5].float())
    assert _rel_err(y32, y_ref) < 1e-5


def test_mixer_under_cpu_bf16_autocast_matches_fp32():
    """The whole mixer (conv, SSD, gated norm) under bf16 autocast, as Lightning's bf16-mixed runs it."""
    torch.manual_seed(0)
    cfg = Mamba2Config(d_model=32, headdim=16, d_state=8, chunk_size=16, exo=ExoClockConfig(enabled=True))
    mixer = Mamba2Mixer(cfg)
    u, exo = torch.randn(2, 70, 32), torch.randn(2, 70, 2)
    with torch.no_grad():
        y32 = mixer(u, exo)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            ybf = mixer(u, exo)
    assert _rel_err(ybf.float(), y32) < 5e-2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_kernel_matches_pure_pytorch_on_cuda(dtype):
    """mamba-ssm's fused scan (chosen automatically on CUDA) against this package's pure-PyTorch path, in fp32 and
    under bf16 autocast (the full profile's precision)."""
    pytest.importorskip("mamba_ssm", reason="mamba_ssm (gpu extra) not installed")
    from dataclasses import replace

    torch.manual_seed(0)
    cfg = Mamba2Config(d_model=64, headdim=32, chunk_size=32)
    mixer = Mamba2Mixer(cfg).cuda()
    plain = Mamba2Mixer(replace(cfg, use_fused_kernel=False)).cuda()
    plain.load_state_dict(mixer.state_dict())
    u = torch.randn(2, 100, 64, device="cuda")
    with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype != torch.float32):
        fused, reference = mixer(u), plain(u)
    assert _rel_err(fused.float(), reference.float()) < (1e-3 if dtype == torch.float32 else 5e-2)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_compile_matches_eager_on_cuda():
    """The full profile compiles the encoders (``JEPAConfig.compile``): compiled and eager agree."""
    from fin_ia_models.world_model.config import JEPAConfig
    from fin_ia_models.world_model.jepa import ContextEncoder

    torch.manual_seed(0)
    config = JEPAConfig(vocab_size=64, mixer=Mamba2Config(d_model=64, headdim=32, chunk_size=32))
    encoder = ContextEncoder(config).cuda().eval()
    compiled = torch.compile(encoder)
    tokens = torch.randint(0, 64, (2, 96), device="cuda")
    with torch.no_grad():
        torch.testing.assert_close(compiled(tokens), encoder(tokens), rtol=1e-3, atol=1e-3)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert _rel_err(compiled(tokens).float(), encoder(tokens).float()) < 5e-2
