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
    return ids, shape_of_codes(tokenizer, quantized)


def shape_of_codes(tokenizer, quantized: torch.Tensor) -> torch.Tensor:
    """Quantized latents (M, D) → standardized close-return shape (M, L) float64 (the decoder, RevIN affine undone,
    re-standardized; module docstring)."""
    y = tokenizer.decoder(quantized)[:, :, RET_CLOSE].double()  # (M, L) RevIN-normalized, with affine
    revin = tokenizer.revin
    z = y
    if revin.affine:
        z = (y - revin.bias[RET_CLOSE].double()) / (revin.weight[RET_CLOSE].double() + revin.eps**2)
    centred = z - z.mean(dim=1, keepdim=True)
    std = centred.pow(2).mean(dim=1, keepdim=True).sqrt()  # population std, as RevIN's
    return centred / std.clamp_min(SHAPE_STD_FLOOR)


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


class CodeShapeTable:
    """``decode_futures`` by table lookup: a future's decoded shape depends on its token id alone (the decoder reads
    the quantized code, nothing else), so the shapes of all K codes are decoded once and a decode becomes quantize →
    gather → ``candle_returns``. For the live path, where the decoder on N × H patches per decision was most of a
    token step's latency. Equal to ``decode_futures`` up to float32 rounding of the decoder run at another batch size
    (and, for VQ, of the straight-through code ``z + (q − z)`` vs the code ``q`` itself); a test checks it. Build it
    again whenever the tokenizer's weights change (the live path's models are frozen)."""

    @torch.no_grad()
    def __init__(self, tokenizer) -> None:
        self.quantizer = tokenizer.quantizer
        self.return_scale = tokenizer.config.return_scale
        codes = torch.arange(tokenizer.config.codebook_size)
        self.shapes = shape_of_codes(tokenizer, tokenizer.quantizer.decode_indices(codes)).numpy()  # (K, L) float64

    @torch.no_grad()
    def ids(self, latents: torch.Tensor) -> np.ndarray:
        """Future latents (M, D) → their token ids (M,) int64 (the tokenizer's quantizer; the ONNX graph has its own)."""
        return self.quantizer(latents.float())[1].numpy().astype(np.int64)

    def returns(self, ids: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Token ids (M,) and predicted RevIN statistics (M, 2) = (log σ, μ/σ) → per-candle log returns (M, L)
        float64: ``candle_returns`` on the looked-up shapes, in numpy (a few small arrays per live decision)."""
        sigma = np.exp(np.asarray(scale[:, 0], np.float64))[:, None]
        mu = np.asarray(scale[:, 1], np.float64)[:, None] * sigma
        return (mu + sigma * self.shapes[ids]) / self.return_scale


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
