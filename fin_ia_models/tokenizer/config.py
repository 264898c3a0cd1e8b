"""Typed configuration of the OHLCV tokenizer, with the ``demo`` (CPU minutes) and ``full`` (H100) profiles.

Same code for both profiles; only the numbers differ.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from fin_ia_models.config import check_profile
from fin_ia_models.tokenizer.features import FEATURE_NAMES
from fin_ia_models.training.schedule import LRSchedule
from fin_ia_models.utils.config_io import ConfigDict

QUANTIZERS = ("vq", "fsq")


@dataclass(frozen=True)
class TokenizerConfig(ConfigDict):
    """Everything that shapes the tokenizer: features, network, quantizer, losses and the training loop."""

    # --- quantizer -------------------------------------------------------------------------------------------------
    quantizer: str = "fsq"  # "fsq": v6 SymLog + finite scalar quantization (the pipeline's); "vq": v1 spherical VQ-VAE
    codebook_size: int = 1024  # number of tokens; for FSQ it must equal prod(fsq_levels)
    # [8, 8, 4, 4] = 1024 codes. Mentzer et al. recommend levels >= 5 per channel where possible; with an exact power
    # of two we keep two fine channels (8) and two coarse ones (4) rather than five coarse [4]*5 channels.
    fsq_levels: tuple[int, ...] = (8, 8, 4, 4)
    ema_decay: float = 0.99  # EMA decay of the VQ codebook statistics (van den Oord et al. 2017, appendix)
    ema_eps: float = 1e-5  # Laplace smoothing of the EMA cluster counts, keeps unused codes from dividing by zero
    dead_code_steps: int = 100  # a VQ code unused for this many training steps is re-seeded from recent encoder outputs
    revival_buffer_size: int = 4096  # ring buffer of recent (normalized) encoder outputs used to re-seed dead codes

    # --- features and patches ---------------------------------------------------------------------------------------
    patch_len: int = 16  # candles per patch; one patch = one token
    volume_window: int = 24  # trailing window (candles, incl. the current one) of the volume mean volume is scaled by
    return_scale: float = 100.0  # log returns in percent, so patch variances sit far above RevIN's eps (1e-5)

    # --- network ----------------------------------------------------------------------------------------------------
    hidden_dim: int = 64  # channels of the dilated conv stack
    n_layers: int = 4  # conv blocks; dilations 1, 2, 4, ..., 2**(n_layers-1) (receptive field must cover patch_len)
    kernel_size: int = 3  # causal conv kernel size
    latent_dim: int = 16  # encoder output size; the VQ code dimension; FSQ projects it to len(fsq_levels) channels
    revin_eps: float = 1e-5  # RevIN variance epsilon (Kim et al. 2022)

    # --- losses -----------------------------------------------------------------------------------------------------
    huber_weight: float = 1.0  # weight of the Huber reconstruction loss (on RevIN-normalized patches)
    huber_delta: float = 1.0  # Huber transition point, in RevIN-normalized units (~ one patch standard deviation)
    sdtw_weight: float = 0.05  # weight of the soft-DTW divergence between reconstruction and input
    sdtw_gamma: float = 0.1  # soft-DTW smoothing; -> 0 recovers hard DTW, larger is smoother
    commitment_weight: float = 0.25  # beta of the VQ commitment loss (van den Oord et al. 2017); unused by FSQ

    # --- training ---------------------------------------------------------------------------------------------------
    lr: float = 2e-3  # AdamW peak learning rate (see ``schedule``)
    weight_decay: float = 1e-4  # AdamW weight decay
    # warm-up over the first 10 % of steps (at most 100), then cosine decay to 10 % of lr
    schedule: LRSchedule = field(default_factory=lambda: LRSchedule(warmup_fraction=0.1, warmup_min_steps=0,
                                                                     warmup_max_steps=100, floor=0.1))
    grad_clip: float = 1.0  # gradient-norm clip: one outlier batch (a flash crash) cannot wreck the codebook
    batch_size: int = 256  # patches per step
    epochs: int = 8  # passes over the training patches
    train_stride: int = 2  # candles between consecutive TRAINING patch ends (1 = every offset; tokens use patch_len)
    val_fraction: float = 0.1  # last share (in time) of each series held out for metrics when no eval data is given
    compile: bool = False  # torch.compile the autoencoder (CUDA only; ignored on CPU)
    max_steps_per_epoch: int | None = None  # cap on optimizer steps per epoch (tests, smoke runs); None = full epoch

    def __post_init__(self) -> None:
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"unknown quantizer {self.quantizer!r}: expected one of {', '.join(QUANTIZERS)}")
        if self.patch_len < 2:
            raise ValueError(f"patch_len must be >= 2, got {self.patch_len}")
        if any(level < 2 for level in self.fsq_levels) or not self.fsq_levels:
            raise ValueError(f"fsq_levels must be non-empty with every level >= 2, got {self.fsq_levels}")
        if self.quantizer == "fsq" and math.prod(self.fsq_levels) != self.codebook_size:
            raise ValueError(
                f"codebook_size must equal prod(fsq_levels) for fsq: {self.codebook_size} != "
                f"prod({list(self.fsq_levels)}) = {math.prod(self.fsq_levels)}"
            )
        receptive = 1 + (self.kernel_size - 1) * (2**self.n_layers - 1)
        if receptive < self.patch_len:
            raise ValueError(
                f"receptive field {receptive} of {self.n_layers} layers with kernel {self.kernel_size} is shorter than "
                f"patch_len {self.patch_len}: the last position would not see the whole patch"
            )
        if not 0.0 < self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in (0, 1), got {self.ema_decay}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        for name in ("codebook_size", "hidden_dim", "latent_dim", "batch_size", "epochs", "train_stride",
                     "dead_code_steps", "revival_buffer_size", "volume_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.sdtw_gamma <= 0:
            raise ValueError(f"sdtw_gamma must be > 0, got {self.sdtw_gamma}")
        if self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0, got {self.grad_clip}")

    @property
    def n_features(self) -> int:
        """Features per candle (see ``features.FEATURE_NAMES``)."""
        return len(FEATURE_NAMES)

    def with_overrides(self, **changes) -> "TokenizerConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


# Sizes per profile (fin_ia_models.config.PROFILES); every other field keeps its TokenizerConfig default.
PROFILE_SIZES: dict[str, dict] = {
    # CPU: a few minutes on one core over years of hourly candles (~41k training patches at stride 2, 6 passes)
    "cpu": dict(hidden_dim=64, n_layers=4, epochs=6, train_stride=2),
    # make demo: the same network over the four-month demo window (~4k patches), so more passes over it
    "demo": dict(hidden_dim=64, n_layers=4, epochs=40, train_stride=2),
    # H100: wider network, every patch offset, more epochs, torch.compile
    "full": dict(hidden_dim=256, n_layers=5, latent_dim=32, epochs=60, train_stride=1, batch_size=1024, lr=1e-3,
                 compile=True, dead_code_steps=200, revival_buffer_size=16384),
}


def profile_config(profile: str, quantizer: str | None = None, **overrides) -> TokenizerConfig:
    """The ``profile``'s tokenizer config; ``quantizer`` None keeps the default (``TokenizerConfig.quantizer``)."""
    values = {**PROFILE_SIZES[check_profile(profile)], **overrides}
    if quantizer is not None:
        values["quantizer"] = quantizer
    return TokenizerConfig(**values)
