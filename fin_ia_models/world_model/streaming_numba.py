"""Numba kernel for ``StreamingEncoder``: one whole encoder step (all layers, batch 1) in a single compiled call.

Same arithmetic as ``StreamingEncoder._mixer`` (the numpy path, itself checked against the torch encoder); scalar loops
that LLVM vectorises (fastmath: reductions may be reassociated, parity stays ~1e-6). ``numba`` is optional: this module
imports it lazily and ``StreamingEncoder`` falls back to numpy without it.
"""

from __future__ import annotations

import functools
import math

import numpy as np


@functools.cache
def build_kernel():
    """Compile (once per process) and return the step kernel; ImportError if numba is missing."""
    import numba

    return numba.njit(fastmath=True, cache=False)(_stream_step)


def _stream_step(
    h, w_in, pre_eps, conv, conv_w, conv_b, dt_bias, A, D, ssm, w_out, norm_eps, final_w, final_eps,
    nh, p, g, n, ngn, exo, exo_w, use_exo, z_clip, dt_lo, dt_hi,
):
    """h (d,) embedded token (updated in place); per-layer weights stacked on a leading layer axis:
    w_in (L, d_proj, d), conv/conv_w (L, d_conv, conv_dim), conv_b (L, conv_dim), dt_bias/A/D (L, h),
    ssm (L, h, p, n) and conv are the recurrent states (updated in place), w_out (L, d, d_inner),
    exo (k,), exo_w (L, k, h). Returns the final-normed embedding (d,)."""
    n_layers, d_proj, d = w_in.shape
    d_inner = nh * p
    conv_dim = d_inner + 2 * g * n
    d_conv = conv.shape[1]
    r = nh // g
    v = np.empty(d_proj, np.float32)
    xbc = np.empty(conv_dim, np.float32)
    y = np.empty(d_inner, np.float32)
    dt = np.empty(nh, np.float32)
    for ly in range(n_layers):
        ss = 0.0
        for i in range(d):
            ss += h[i] * h[i]
        inv = 1.0 / math.sqrt(ss / d + pre_eps[ly])
        for j in range(d_proj):
            acc = 0.0
            for i in range(d):
                acc += w_in[ly, j, i] * h[i]
            v[j] = acc * inv
        for c in range(conv_dim):
            acc = conv_b[ly, c]
            for k in range(d_conv - 1):
                conv[ly, k, c] = conv[ly, k + 1, c]
                acc += conv[ly, k, c] * conv_w[ly, k, c]
            conv[ly, d_conv - 1, c] = v[d_inner + c]
            acc += v[d_inner + c] * conv_w[ly, d_conv - 1, c]
            xbc[c] = acc / (1.0 + math.exp(-acc))
        for hh in range(nh):
            raw = v[d_inner + conv_dim + hh] + dt_bias[ly, hh]
            sp = raw if raw > 20.0 else math.log1p(math.exp(raw))
            if use_exo:
                s = 0.0
                for k in range(exo.shape[0]):
                    z = min(max(exo[k], -z_clip), z_clip)
                    s += exo_w[ly, k, hh] * z
                sp *= math.exp(s)
            dt[hh] = min(max(sp, dt_lo), dt_hi)
        for hh in range(nh):
            gi = hh // r
            decay = math.exp(dt[hh] * A[ly, hh])
            for pp in range(p):
                xv = xbc[hh * p + pp]
                dx = dt[hh] * xv
                acc = 0.0
                for nn in range(n):
                    s_ = ssm[ly, hh, pp, nn] * decay + dx * xbc[d_inner + gi * n + nn]
                    ssm[ly, hh, pp, nn] = s_
                    acc += s_ * xbc[d_inner + g * n + gi * n + nn]
                zz = v[hh * p + pp]
                y[hh * p + pp] = (acc + D[ly, hh] * xv) * (zz / (1.0 + math.exp(-zz)))
        gs = d_inner // ngn
        for gg in range(ngn):
            ss = 0.0
            for i in range(gg * gs, (gg + 1) * gs):
                ss += y[i] * y[i]
            inv = 1.0 / math.sqrt(ss / gs + norm_eps[ly])
            for i in range(gg * gs, (gg + 1) * gs):
                y[i] *= inv
        for j in range(d):
            acc = 0.0
            for i in range(d_inner):
                acc += w_out[ly, j, i] * y[i]
            h[j] += acc
    ss = 0.0
    for i in range(d):
        ss += h[i] * h[i]
    inv = 1.0 / math.sqrt(ss / d + final_eps)
    out = np.empty(d, np.float32)
    for i in range(d):
        out[i] = h[i] * inv * final_w[i]
    return out
