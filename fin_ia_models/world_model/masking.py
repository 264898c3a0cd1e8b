"""Block masking along time for Fin-JEPA (I-JEPA's multi-block target masking, Assran et al. 2023, in 1-D).

Each sequence gets ``n_blocks`` contiguous target blocks (they may overlap); the context is every other position.
The context encoder sees a learned mask token (and a neutral exo-clock) at target positions, never their content.
"""

from __future__ import annotations

import torch

from fin_ia_models.world_model.config import MaskingConfig


def sample_block_mask(
    batch: int, seq_len: int, config: MaskingConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """(batch, seq_len) bool, True = target position. Blocks start at or after ``min_context`` and fit in the window."""
    lo, hi = config.block_ratio
    min_len = max(1, round(lo * seq_len))
    max_len = max(min_len, round(hi * seq_len))
    room = seq_len - config.min_context - max_len  # start positions available to the longest block
    if room < 1:
        raise ValueError(
            f"seq_len {seq_len} too short for blocks of up to {max_len} after min_context {config.min_context}"
        )
    lengths = torch.randint(min_len, max_len + 1, (batch, config.n_blocks), generator=generator)  # (b, k)
    starts = config.min_context + torch.randint(0, room + 1, (batch, config.n_blocks), generator=generator)  # (b, k)
    pos = torch.arange(seq_len)  # (l,)
    inside = (pos >= starts[..., None]) & (pos < (starts + lengths)[..., None])  # (b, k, l)
    return inside.any(dim=1)  # (b, l)
