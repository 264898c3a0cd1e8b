"""SSD (state space duality) scan of Mamba-2 in pure PyTorch: chunked parallel form, sequential reference, one step.

Dao & Gu 2024, "Transformers are SSMs: Generalized Models and Efficient Algorithms Through Structured State Space
Duality" (arXiv:2405.21060), section 6 ("the SSD algorithm"). The recurrence, per head h with scalar ``A_h < 0``::

    h_t = exp(Δ_t·A) · h_{t-1} + Δ_t · x_t ⊗ B_t        # state (P, N)
    y_t = C_t · h_t                                       # (P,)  (the D·x_t skip is added by the mixer)

``ssd_chunked`` splits the sequence into chunks of ``chunk_size``: inside a chunk it uses the quadratic, decay-masked
"attention" form (batched matmuls); between chunks it passes the state with a LINEAR recurrence over chunks (a loop
of ``n_chunks`` cheap elementwise updates), not the (n_chunks × n_chunks) segment-sum of the minimal reference in the
paper / Hugging Face transformers, so its cost is linear in L. ``ssd_sequential_ref`` is the plain token-by-token
recurrence kept beside it for parity tests; ``ssd_step`` is one token of it for incremental inference.

Shapes: b batch, l length, h heads, p head dim, g groups of B/C (h % g == 0), n state size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_shapes(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor, C: torch.Tensor) -> int:
    if x.dim() != 4:
        raise ValueError(f"x must be (batch, length, heads, head_dim), got shape {tuple(x.shape)}")
    b, l, h, _ = x.shape
    if dt.shape != (b, l, h):
        raise ValueError(f"dt must be {(b, l, h)}, got {tuple(dt.shape)}")
    if A.shape != (h,):
        raise ValueError(f"A must be ({h},), got {tuple(A.shape)}")
    if B.dim() != 4 or B.shape[:2] != (b, l) or B.shape != C.shape:
        raise ValueError(
            f"B and C must be (batch, length, groups, state) matching x, got {tuple(B.shape)}, {tuple(C.shape)}"
        )
    g = B.shape[2]
    if h % g != 0:
        raise ValueError(f"heads must be a multiple of groups: {h} % {g} != 0")
    return g


def ssd_chunked(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    initial_state: torch.Tensor | None = None,
    chunks_per_block: int = 4,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked SSD scan. x (b, l, h, p), dt (b, l, h) already positive, A (h,), B/C (b, l, g, n),
    initial_state (b, h, p, n) or None → (y (b, l, h, p), final_state (b, h, p, n)). y has x's dtype; the final
    state is kept in at least fp32 (like mamba_ssm's), so bf16 inputs return an fp32 state.

    Any L works: the sequence is padded internally with Δ=0 (no decay, no input, so the final state is exact) and
    the output cropped back. The sequence is processed ``chunks_per_block`` chunks at a time, carrying the state
    from block to block: this bounds the (…, q, q) intermediates to a cache-sized working set, so wall time stays
    linear in L on CPU instead of degrading once the intermediates spill out of cache. The result does not depend
    on ``chunks_per_block`` (up to fp rounding).
    """
    g = _check_shapes(x, dt, A, B, C)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if chunks_per_block < 1:
        raise ValueError(f"chunks_per_block must be >= 1, got {chunks_per_block}")
    b, l, h, p = x.shape
    if initial_state is not None and initial_state.shape != (b, h, p, B.shape[-1]):
        raise ValueError(f"initial_state must be {(b, h, p, B.shape[-1])}, got {tuple(initial_state.shape)}")
    if l < 1:
        raise ValueError("ssd_chunked needs a sequence of length >= 1")
    block = chunk_size * chunks_per_block
    n_chunks = -(-l // chunk_size)
    # Each block writes its (chunk-major) result straight into this buffer: no per-block reshape copy, no final cat.
    out = x.new_empty(b, n_chunks * chunk_size, h, p)  # (b, l_pad, h, p)
    state = initial_state
    for start in range(0, l, block):
        sl = slice(start, start + block)
        y, state = _ssd_block(x[:, sl], dt[:, sl], A, B[:, sl], C[:, sl], chunk_size, state, g)  # (b, g, r, c, q, p)
        c = y.shape[3]
        dst = out[:, start : start + c * chunk_size].unflatten(1, (c, chunk_size)).unflatten(3, (g, h // g))
        dst.copy_(y.permute(0, 3, 4, 1, 2, 5))  # (b, c, q, g, r, p)
    return out[:, :l], state


def _ssd_block(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    chunk_size: int,
    initial_state: torch.Tensor | None,
    g: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The SSD algorithm on one block of chunks (the last one padded) → (y (b, g, r, c, q, p), state (b, h, p, n))."""
    b, l, h, p = x.shape
    n = B.shape[-1]
    r = h // g  # heads per group
    q = chunk_size
    pad = (q - l % q) % q
    if pad:
        x = F.pad(x, (0, 0, 0, 0, 0, pad))
        dt = F.pad(dt, (0, 0, 0, pad))
        B = F.pad(B, (0, 0, 0, 0, 0, pad))
        C = F.pad(C, (0, 0, 0, 0, 0, pad))
    c = (l + pad) // q  # number of chunks

    # Head-major chunked layouts so every contraction below is one batched matmul.
    xd = (x * dt.unsqueeze(-1)).view(b, c, q, g, r, p).permute(0, 3, 4, 1, 2, 5)  # (b, g, r, c, q, p)
    # Log-decays, their cumsum, the decay factors and the carried state in at least fp32, as mamba_ssm's kernels keep
    # dA_cumsum: in bf16 the differences a_cs[l] - a_cs[s] of a long chunk lose their significant digits (the error
    # grew 5x from chunk 8 to 64 when they were bf16). fp32/fp64 inputs compute exactly as before.
    acc = torch.promote_types(x.dtype, torch.float32)
    a = (dt.to(acc) * A.to(acc)).view(b, c, q, g, r).permute(0, 3, 4, 1, 2)  # (b, g, r, c, q): log-decay per step
    a_cs = torch.cumsum(a, dim=-1)  # (b, g, r, c, q)
    Bc = B.view(b, c, q, g, n).permute(0, 3, 1, 2, 4).unsqueeze(2)  # (b, g, 1, c, q, n)
    Cc = C.view(b, c, q, g, n).permute(0, 3, 1, 2, 4).unsqueeze(2)  # (b, g, 1, c, q, n)

    # 1. Intra-chunk (diagonal blocks): y_l = Σ_{s<=l} (C_l·B_s) exp(a_cs[l] - a_cs[s]) xd_s.
    # The difference is masked to -inf above the diagonal BEFORE exp, so exp never sees a positive exponent.
    causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
    seg = (a_cs.unsqueeze(-1) - a_cs.unsqueeze(-2)).masked_fill(~causal, float("-inf"))  # (b, g, r, c, q, q)
    cb = Cc @ Bc.transpose(-1, -2)  # (b, g, 1, c, q, q): shared by the r heads of a group
    y = (cb * torch.exp(seg).to(x.dtype)) @ xd  # (b, g, r, c, q, p)

    # 2. State contributed by each chunk alone, at its end: Σ_s exp(a_cs[-1] - a_cs[s]) xd_s ⊗ B_s.
    decay_to_end = torch.exp(a_cs[..., -1:] - a_cs).to(x.dtype)  # (b, g, r, c, q)
    chunk_states = (xd * decay_to_end.unsqueeze(-1)).transpose(-1, -2) @ Bc  # (b, g, r, c, p, n)

    # 3. Inter-chunk recurrence, linear in the number of chunks: S_k = exp(A_sum_{k-1}) S_{k-1} + chunk_state_{k-1}.
    chunk_decay = torch.exp(a_cs[..., -1])  # (b, g, r, c)
    if initial_state is None:
        state = x.new_zeros(b, g, r, p, n, dtype=acc)
    else:
        state = initial_state.to(acc).reshape(b, g, r, p, n)
    starts = []
    for k in range(c):
        starts.append(state)
        state = chunk_decay[..., k, None, None] * state + chunk_states[..., k, :, :]
    start_states = torch.stack(starts, dim=3).to(x.dtype)  # (b, g, r, c, p, n): state entering each chunk

    # 4. Contribution of the entering state to each position: exp(a_cs[l]) C_l · S_k.
    y = y + (Cc @ start_states.transpose(-1, -2)) * torch.exp(a_cs).to(x.dtype).unsqueeze(-1)  # (b, g, r, c, q, p)

    return y, state.reshape(b, h, p, n)  # y stays (b, g, r, c, q, p): ssd_chunked lays it out; state in acc


def ssd_step(
    x_t: torch.Tensor,
    dt_t: torch.Tensor,
    A: torch.Tensor,
    B_t: torch.Tensor,
    C_t: torch.Tensor,
    state: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One token of the recurrence. x_t (b, h, p), dt_t (b, h), A (h,), B_t/C_t (b, g, n), state (b, h, p, n)
    → (y_t (b, h, p), new state (b, h, p, n)). O(1) in the sequence length."""
    b, h, p = x_t.shape
    g, n = B_t.shape[1], B_t.shape[2]
    r = h // g
    Bh = B_t.repeat_interleave(r, dim=1) if r > 1 else B_t  # (b, h, n)
    Ch = C_t.repeat_interleave(r, dim=1) if r > 1 else C_t  # (b, h, n)
    decay = torch.exp(dt_t * A)  # (b, h)
    state = decay[..., None, None] * state + (dt_t.unsqueeze(-1) * x_t).unsqueeze(-1) * Bh.unsqueeze(-2)  # (b, h, p, n)
    y_t = (state @ Ch.unsqueeze(-1)).squeeze(-1)  # (b, h, p)
    return y_t, state


def ssd_sequential_ref(
    x: torch.Tensor,
    dt: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain token-by-token recurrence (the definition); same shapes as ``ssd_chunked``. Slow: for tests and
    benchmarks only."""
    _check_shapes(x, dt, A, B, C)
    b, l, h, p = x.shape
    n = B.shape[-1]
    state = x.new_zeros(b, h, p, n) if initial_state is None else initial_state.to(x.dtype)
    ys = []
    for t in range(l):
        y_t, state = ssd_step(x[:, t], dt[:, t], A, B[:, t], C[:, t], state)
        ys.append(y_t)
    return torch.stack(ys, dim=1), state  # (b, l, h, p), (b, h, p, n)
