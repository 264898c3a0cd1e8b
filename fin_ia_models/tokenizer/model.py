"""The tokenizer autoencoder: RevIN → causal dilated conv encoder → quantizer (spherical VQ or SymLog+FSQ) →
decoder → RevIN inverse, and its loss (Huber reconstruction + soft-DTW divergence + commitment).

VQ-VAE: van den Oord et al. 2017; FSQ: Mentzer et al. 2023; RevIN: Kim et al. 2022; soft-DTW: Cuturi & Blondel 2017.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.encoder import CausalEncoder, ConvDecoder
from fin_ia_models.tokenizer.fsq import FSQ
from fin_ia_models.tokenizer.revin import RevIN
from fin_ia_models.tokenizer.soft_dtw import soft_dtw_divergence
from fin_ia_models.tokenizer.spherical_vq import SphericalVQ


@dataclass
class TokenizerOutput:
    """Everything one forward pass produces."""

    indices: torch.Tensor  # (B,) int64 token ids
    latent: torch.Tensor  # (B, D) continuous encoder output (before the quantizer)
    recon_norm: torch.Tensor  # (B, L, C) reconstruction in RevIN-normalized units
    target_norm: torch.Tensor  # (B, L, C) the input in RevIN-normalized units
    recon: torch.Tensor  # (B, L, C) reconstruction in original feature units (RevIN inverse applied)
    aux_loss: torch.Tensor  # () quantizer loss (VQ commitment; 0 for FSQ)


class TokenizerModel(nn.Module):
    """Patch (B, L, C) → token (B,) and reconstruction (B, L, C)."""

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.revin = RevIN(c.n_features, eps=c.revin_eps)
        self.encoder = CausalEncoder(c.n_features, c.hidden_dim, c.latent_dim, c.n_layers, c.kernel_size)
        self.decoder = ConvDecoder(c.n_features, c.hidden_dim, c.latent_dim, c.n_layers, c.kernel_size, c.patch_len)
        if c.quantizer == "vq":
            self.quantizer: nn.Module = SphericalVQ(
                c.codebook_size, c.latent_dim, decay=c.ema_decay, eps=c.ema_eps, dead_code_steps=c.dead_code_steps,
                buffer_size=c.revival_buffer_size, commitment_weight=c.commitment_weight,
            )
        else:
            self.quantizer = FSQ(c.fsq_levels, c.latent_dim)

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def forward(self, x: torch.Tensor) -> TokenizerOutput:
        if x.ndim != 3 or x.shape[1:] != (self.config.patch_len, self.config.n_features):
            raise ValueError(
                f"expected patches of shape (B, {self.config.patch_len}, {self.config.n_features}), got {tuple(x.shape)}"
            )
        x_norm, stats = self.revin.normalize(x)  # (B, L, C)
        latent = self.encoder(x_norm)  # (B, D)
        quantized, indices, aux = self.quantizer(latent)  # (B, D), (B,), ()
        recon_norm = self.decoder(quantized)  # (B, L, C)
        recon = self.revin.denormalize(recon_norm.float(), stats)  # (B, L, C) original units
        return TokenizerOutput(indices, latent, recon_norm, x_norm, recon, aux)

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Patches (B, L, C) → (token ids (B,), continuous latent (B, D)); no codebook update."""
        was_training = self.training
        self.eval()
        try:
            x_norm, _ = self.revin.normalize(x)
            latent = self.encoder(x_norm)
            _, indices, _ = self.quantizer(latent)
        finally:
            self.train(was_training)
        return indices, latent

    def loss(self, out: TokenizerOutput) -> dict[str, torch.Tensor]:
        """Weighted total and its parts; reconstruction terms compare in RevIN-normalized units."""
        c = self.config
        recon = out.recon_norm.float()
        huber = F.huber_loss(recon, out.target_norm.float(), delta=c.huber_delta)
        sdtw = soft_dtw_divergence(recon, out.target_norm.float(), c.sdtw_gamma).mean() / c.patch_len
        total = c.huber_weight * huber + c.sdtw_weight * sdtw + out.aux_loss
        return {"loss": total, "huber": huber.detach(), "sdtw": sdtw.detach(), "commit": out.aux_loss.detach()}
