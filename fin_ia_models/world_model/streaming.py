"""Low-latency streaming inference of a trained context encoder: one token in, one embedding out, in numpy.

Same recurrence as ``ContextEncoder.step`` (Mamba-2 step: conv state + SSM state, Dao & Gu 2024), with the torch
weights exported once into float64/float32 numpy arrays and the per-token work folded into as few numpy calls as
possible (RMSNorm weights folded into the next projection, conv done as a dot over a rolling buffer). A torch eager
step costs ~40 dispatched ops per layer; at batch 1 and d_model 64 that dispatch overhead, not arithmetic, is the
latency. ``ContextEncoder.step`` / ``forward`` stay the reference; a parity test checks this against them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import erf, expit

from fin_ia_models.world_model.jepa import ContextEncoder
from fin_ia_models.world_model.streaming_numba import build_kernel

log = logging.getLogger("fin_ia.world_model")


@dataclass
class _Layer:
    w_in: np.ndarray  # (d_in_proj, d_model), pre-norm weight folded in
    eps: float  # pre-norm epsilon
    split: tuple[int, int, int, int]  # offsets: z end, x end, B end, C end (then dt)
    conv_w: np.ndarray  # (d_conv, conv_dim)
    conv_b: np.ndarray  # (conv_dim,)
    dt_bias: np.ndarray  # (h,)
    dt_lo: float
    dt_hi: float
    exo_w: np.ndarray | None  # (k, h) = softplus(w) or None
    z_clip: float
    A: np.ndarray  # (h,)
    D: np.ndarray  # (h, 1)
    heads: tuple[int, int, int, int]  # h, p, g, n
    ngroups_norm: int
    norm_eps: float
    w_out: np.ndarray  # (d_model, d_inner), gated-norm weight folded in
    conv: np.ndarray  # state (d_conv, conv_dim), oldest first
    ssm: np.ndarray  # state (h, p, n)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy().astype(np.float32)


class StreamingEncoder:
    """Batch-1 streaming twin of a ``ContextEncoder`` (fp32). ``step(token) -> (d_model,)``.

    ``backend``: "numpy", "numba" (one compiled call per token, ``streaming_numba.py``; needs the optional numba
    package) or "auto" (numba when importable, else numpy; the choice is logged).
    """

    def __init__(self, encoder: ContextEncoder, backend: str = "auto") -> None:
        if backend not in ("auto", "numpy", "numba"):
            raise ValueError(f"unknown streaming backend {backend!r}: expected auto, numpy or numba")
        cfg = encoder.config
        m = cfg.mixer
        self.embed = _np(encoder.embed.weight)
        self.latent_w = None if encoder.latent_proj is None else _np(encoder.latent_proj.weight)
        self.latent_b = None if encoder.latent_proj is None else _np(encoder.latent_proj.bias)
        # scale inputs (config.scale_inputs): one linear map or Linear-GELU-Linear, as (weight, bias) pairs
        proj = encoder.scale_proj
        linears = [] if proj is None else [proj] if isinstance(proj, torch.nn.Linear) else [proj[0], proj[2]]
        self.scale = [(_np(lin.weight), _np(lin.bias)) for lin in linears]
        self.n_signals = m.exo.n_signals if m.exo.enabled else 0
        self.final_w = _np(encoder.stack.final_norm.weight)
        self.final_eps = encoder.stack.final_norm.eps or float(torch.finfo(torch.float32).eps)
        self.layers: list[_Layer] = []
        for norm, mx in zip(encoder.stack.norms, encoder.stack.mixers):
            gn = m.ngroups * m.d_state
            split = (m.d_inner, 2 * m.d_inner, 2 * m.d_inner + gn, 2 * m.d_inner + 2 * gn)
            exo_w = None if mx.exo_clock is None else _np(mx.exo_clock.sensitivity())
            self.layers.append(_Layer(
                w_in=_np(mx.in_proj.weight * norm.weight[None, :]),
                eps=norm.eps or float(torch.finfo(torch.float32).eps), split=split,
                conv_w=np.ascontiguousarray(_np(mx.conv1d.weight.squeeze(1)).T), conv_b=_np(mx.conv1d.bias),
                dt_bias=_np(mx.dt_bias), dt_lo=m.dt_limit[0], dt_hi=m.dt_limit[1], exo_w=exo_w,
                z_clip=m.exo.z_clip, A=_np(-torch.exp(mx.A_log)), D=_np(mx.D)[:, None],
                heads=(m.nheads, m.headdim, m.ngroups, m.d_state), ngroups_norm=m.ngroups, norm_eps=mx.norm.eps,
                w_out=_np(mx.out_proj.weight * mx.norm.weight[None, :]),
                conv=np.zeros((m.d_conv, mx.conv_dim), np.float32),
                ssm=np.zeros((m.nheads, m.headdim, m.d_state), np.float32),
            ))

        self.backend = self._pick_backend(backend)
        if self.backend == "numba":
            self._pack()

    @staticmethod
    def _pick_backend(backend: str) -> str:
        if backend == "numpy":
            return "numpy"
        try:
            build_kernel()
        except ImportError as err:
            if backend == "numba":
                raise
            log.info("streaming step: numpy backend (numba not importable: %s)", err)
            return "numpy"
        log.info("streaming step: numba backend")
        return "numba"

    def _pack(self) -> None:
        """Stack the per-layer arrays on a layer axis for the numba kernel; states become views into the stack."""
        def stack(name: str) -> np.ndarray:
            return np.ascontiguousarray(np.stack([getattr(ly, name) for ly in self.layers]))

        first = self.layers[0]
        k = first.exo_w.shape[0] if first.exo_w is not None else 1
        self._packed = {
            "w_in": stack("w_in"), "pre_eps": np.array([ly.eps for ly in self.layers]),
            "conv": stack("conv"), "conv_w": stack("conv_w"), "conv_b": stack("conv_b"),
            "dt_bias": stack("dt_bias"), "A": stack("A"), "D": np.stack([ly.D[:, 0] for ly in self.layers]),
            "ssm": stack("ssm"), "w_out": stack("w_out"), "norm_eps": np.array([ly.norm_eps for ly in self.layers]),
            "exo_w": stack("exo_w") if first.exo_w is not None else np.zeros((len(self.layers), k, first.heads[0]),
                                                                                np.float32),
        }
        for i, ly in enumerate(self.layers):  # one copy of the state: reset() and the numpy path see the kernel's
            ly.conv, ly.ssm = self._packed["conv"][i], self._packed["ssm"][i]
        self._no_exo = np.zeros(k, np.float32)

    def reset(self) -> None:
        for layer in self.layers:
            layer.conv[:] = 0.0
            layer.ssm[:] = 0.0

    def step(self, token: int, latent: np.ndarray | None = None, exo: np.ndarray | None = None) -> np.ndarray:
        """One token (and its latent (n_latent,) / exo (k,) when the model uses them) → embedding (d_model,)."""
        h = self.embed[token]
        if self.latent_w is not None:
            h = h + self.latent_w @ latent + self.latent_b
        first = self.layers[0]
        if (first.exo_w is not None or self.scale) and exo is None:
            raise ValueError("this encoder reads exo inputs: pass exo (k,) = z-scores [+ scale columns]")
        if self.scale:
            x = np.asarray(exo, np.float32)
            for i, (w, b) in enumerate(self.scale):
                x = w @ x + b
                if i + 1 < len(self.scale):  # exact GELU, as torch's default
                    x = (0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))).astype(np.float32)
            h = h + x
        if exo is not None:
            exo = np.asarray(exo, np.float32)[: self.n_signals]  # the clock reads the first n_signals columns
        if self.backend == "numba":
            w = self._packed
            nh, p, g, n = first.heads
            return build_kernel()(
                np.array(h, np.float32), w["w_in"], w["pre_eps"], w["conv"], w["conv_w"], w["conv_b"],
                w["dt_bias"], w["A"], w["D"], w["ssm"], w["w_out"], w["norm_eps"], self.final_w, self.final_eps,
                nh, p, g, n, first.ngroups_norm, self._no_exo if exo is None else np.asarray(exo, np.float32),
                w["exo_w"], first.exo_w is not None, first.z_clip, first.dt_lo, first.dt_hi,
            )
        for ly in self.layers:
            h = h + self._mixer(ly, h, exo)
        return h * (self.final_w * (1.0 / math.sqrt(float(h @ h) / h.shape[0] + self.final_eps)))

    @staticmethod
    def _mixer(ly: _Layer, h: np.ndarray, exo: np.ndarray | None) -> np.ndarray:
        nh, p, g, n = ly.heads
        v = ly.w_in @ h  # pre-norm weight folded into w_in; the 1/rms scalar is applied below
        v *= 1.0 / math.sqrt(float(h @ h) / h.shape[0] + ly.eps)
        e0, e1, e2, e3 = ly.split
        conv = ly.conv  # (d_conv, conv_dim), oldest first
        conv[:-1] = conv[1:]
        conv[-1] = v[e0:e3]
        xbc = (conv * ly.conv_w).sum(axis=0)
        xbc += ly.conv_b
        xbc *= expit(xbc)  # SiLU
        x = xbc[: e1 - e0].reshape(nh, p)
        dt = np.logaddexp(0.0, v[e3:] + ly.dt_bias)  # softplus, (h,)
        if ly.exo_w is not None:
            dt *= np.exp(np.clip(exo, -ly.z_clip, ly.z_clip) @ ly.exo_w)
        if ly.dt_lo > 0.0 or math.isfinite(ly.dt_hi):
            dt = np.clip(dt, ly.dt_lo, ly.dt_hi)
        ssm = ly.ssm  # (h, p, n)
        ssm *= np.exp(dt * ly.A)[:, None, None]
        if g == 1:
            ssm += (dt[:, None] * x)[:, :, None] * xbc[e1 - e0 : e2 - e0]
            y = ssm.reshape(nh * p, n) @ xbc[e2 - e0 : e3 - e0]  # (h·p,)
        else:
            r = nh // g
            B = np.repeat(xbc[e1 - e0 : e2 - e0].reshape(g, n), r, axis=0)  # (h, n)
            C = np.repeat(xbc[e2 - e0 : e3 - e0].reshape(g, n), r, axis=0)  # (h, n)
            ssm += (dt[:, None] * x)[:, :, None] * B[:, None, :]
            y = np.einsum("hpn,hn->hp", ssm, C).reshape(-1)
        z = v[:e0]
        y += (ly.D * x).reshape(-1)
        y *= z * expit(z)  # gate: y · SiLU(z)
        if ly.ngroups_norm == 1:
            y *= 1.0 / math.sqrt(float(y @ y) / y.shape[0] + ly.norm_eps)
        else:
            yg = y.reshape(ly.ngroups_norm, -1)
            y = (yg / np.sqrt((yg * yg).mean(axis=1, keepdims=True) + ly.norm_eps)).reshape(-1)
        return ly.w_out @ y
