"""Future latents → Strate I token ids and candle returns, through the tokenizer's own quantizer and decoder.

For each future token: its continuous latent goes through the tokenizer's quantizer (FSQ rounding or nearest VQ code;
the token id) and decoder, which gives the patch's SHAPE in RevIN-normalized units (Kim et al. 2022). The RevIN
affine is undone for the close-return channel (``(y − b) / w``), and the shape is re-standardized to zero mean and unit
variance over the patch: a RevIN-normalized patch has exactly those moments by construction, while a decoder
reconstruction is shrunk towards its mean (the tokenizer's reconstructions are smoother than the data), which would
bias every future's volatility low. The predicted RevIN statistics of that future patch (log σ, m = μ/σ) then give
its per-candle close returns::

    r_i = (μ + σ·ẑ_i) / return_scale,   μ = m·σ            (log returns; i = 1..patch_len)

so the patch's return is patch_len·μ / return_scale and its realized volatility sqrt(patch_len·(μ² + σ²)) /
return_scale exactly, while the decoded shape places the moves inside the patch (what a 24 h horizon that ends
mid-token, and the path's energy score, see).
"""

from __future__ import annotations

import numpy as np
import torch

from fin_ia_models.multiverse.context import RET_CLOSE

SHAPE_STD_FLOOR = 1e-3  # a decoded shape flatter than this (normalized units) is not re-scaled: it stays ~flat


def decoded_shape(tokenizer, latents: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """latents (M, D) → (token ids (M,) int64, standardized close-return shape (M, L))."""
    quantized, ids, _ = tokenizer.quantizer(latents)  # (M, D), (M,)
    y = tokenizer.decoder(quantized)[:, :, RET_CLOSE].double()  # (M, L) RevIN-normalized, with affine
    revin = tokenizer.revin
    z = y
    if revin.affine:
        z = (y - revin.bias[RET_CLOSE].double()) / (revin.weight[RET_CLOSE].double() + revin.eps**2)
    centred = z - z.mean(dim=1, keepdim=True)
    std = centred.pow(2).mean(dim=1, keepdim=True).sqrt()  # population std, as RevIN's
    return ids, centred / std.clamp_min(SHAPE_STD_FLOOR)


def candle_returns(shape: torch.Tensor, scale: torch.Tensor, return_scale: float) -> torch.Tensor:
    """shape (M, L) standardized, scale (M, 2) = (log σ, μ/σ) → per-candle log returns (M, L) (float64)."""
    sigma = torch.exp(scale[:, 0].double())[:, None]  # (M, 1)
    mu = scale[:, 1].double()[:, None] * sigma
    return (mu + sigma * shape) / return_scale


@torch.no_grad()
def decode_futures(tokenizer, latents: torch.Tensor, scale: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """latents (M, D), scale (M, 2) → (token ids (M,) int64, per-candle log returns (M, L) float64)."""
    ids, shape = decoded_shape(tokenizer, latents.float())
    returns = candle_returns(shape, scale, tokenizer.config.return_scale)
    return ids.cpu().numpy().astype(np.int64), returns.cpu().numpy()


def decode_futures_ref(tokenizer, latents: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One future at a time with the tokenizer's full RevIN inverse (``RevIN.denormalize``) and numpy moments:
    the reference for ``decode_futures``."""
    ids, out = [], []
    for latent, (log_std, m) in zip(np.asarray(latents, np.float32), np.asarray(scale, np.float64)):
        with torch.no_grad():
            quantized, idx, _ = tokenizer.quantizer(torch.as_tensor(latent)[None])
            y = tokenizer.decoder(quantized)  # (1, L, C)
            c = y.shape[-1]
            unit = (torch.zeros(1, 1, c), torch.ones(1, 1, c))  # the affine inverse alone: mean 0, std 1
            z = tokenizer.revin.denormalize(y.double(), (unit[0].double(), unit[1].double()))[0, :, RET_CLOSE]
        z = z.numpy()
        std = max(float(np.std(z)), SHAPE_STD_FLOOR)
        sigma = float(np.exp(log_std))
        out.append((m * sigma + sigma * (z - z.mean()) / std) / tokenizer.config.return_scale)
        ids.append(int(idx[0]))
    return np.array(ids, np.int64), np.array(out)
