"""Configs of Strate II: the Mamba-2 mixer, the exo-clock and the Fin-JEPA world model, with demo/full profiles.

Mamba-2: Dao & Gu 2024 (arXiv:2405.21060); defaults follow the reference ``mamba_ssm.modules.mamba2.Mamba2``.
JEPA: Assran et al. 2023, "Self-Supervised Learning from Images with a Joint-Embedding Predictive Architecture".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from fin_ia_models.config import check_profile
from fin_ia_models.training.schedule import LRSchedule
from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class ExoClockConfig(ConfigDict):
    """How exogenous market activity speeds up the SSM clock (see ``exo_clock.py`` for the exact formula)."""

    enabled: bool = False  # False = v1 behaviour: dt ignores the exogenous signals entirely (no extra parameters)
    n_signals: int = 2  # exogenous signals per token: (z of log realized vol, z of log volume)
    weight_init: float = 0.5  # initial per-head sensitivity softplus(w) to each signal; > 0 so shocks speed the clock
    z_clip: float = 4.0  # |z| is clipped here so one extreme candle cannot blow dt up by more than exp(w·z_clip)

    def __post_init__(self) -> None:
        if self.n_signals < 1:
            raise ValueError(f"exo n_signals must be >= 1, got {self.n_signals}")
        if self.weight_init <= 0:
            raise ValueError(f"exo weight_init must be > 0 (monotone clock), got {self.weight_init}")
        if self.z_clip <= 0:
            raise ValueError(f"exo z_clip must be > 0, got {self.z_clip}")


@dataclass(frozen=True)
class Mamba2Config(ConfigDict):
    """One Mamba-2 mixer (SSD layer)."""

    d_model: int = 64  # residual stream width
    d_state: int = 16  # N: SSM state size per head (Mamba-2 uses 64-128 at scale; 16 suffices for 1-D market streams)
    d_conv: int = 4  # depthwise causal conv kernel width, as in Mamba
    expand: int = 2  # d_inner = expand · d_model, as in Mamba
    headdim: int = 32  # P: channels per head; nheads = d_inner / headdim
    ngroups: int = 1  # groups sharing B/C (like GQA for keys/queries); nheads % ngroups == 0
    chunk_size: int = 64  # SSD chunk length: intra-chunk quadratic, inter-chunk linear recurrence
    dt_min: float = 0.001  # softplus(dt_bias) is initialised log-uniform in [dt_min, dt_max] (Mamba's init)
    dt_max: float = 0.1  # upper end of that init range
    dt_init_floor: float = 1e-4  # smallest initial dt, guards the inverse softplus
    dt_limit: tuple[float, float] = (0.0, math.inf)  # hard clamp on dt after softplus (and after the exo-clock)
    A_init_range: tuple[float, float] = (1.0, 16.0)  # -A = exp(A_log) drawn uniformly here (Mamba-2's init)
    use_fused_kernel: bool = True  # use mamba-ssm's fused scan when on CUDA and importable; never required
    exo: ExoClockConfig = field(default_factory=ExoClockConfig)  # exo-clock switch and parameters

    @property
    def d_inner(self) -> int:
        return self.expand * self.d_model

    @property
    def nheads(self) -> int:
        return self.d_inner // self.headdim

    def __post_init__(self) -> None:
        if self.d_inner % self.headdim != 0:
            raise ValueError(f"headdim must divide d_inner: {self.d_inner} % {self.headdim} != 0")
        if self.nheads % self.ngroups != 0:
            raise ValueError(f"ngroups must divide nheads: {self.nheads} % {self.ngroups} != 0")
        if not 0 < self.dt_min <= self.dt_max:
            raise ValueError(f"need 0 < dt_min <= dt_max, got {self.dt_min}, {self.dt_max}")
        if not 0 <= self.dt_limit[0] < self.dt_limit[1]:
            raise ValueError(f"need 0 <= dt_limit[0] < dt_limit[1], got {self.dt_limit}")
        if self.d_conv < 1 or self.chunk_size < 1:
            raise ValueError(f"d_conv and chunk_size must be >= 1, got {self.d_conv}, {self.chunk_size}")


@dataclass(frozen=True)
class MaskingConfig(ConfigDict):
    """I-JEPA style block masking along time."""

    n_blocks: int = 4  # contiguous target blocks per sequence
    block_ratio: tuple[float, float] = (0.05, 0.10)  # each block's length as a fraction of the sequence, uniform
    min_context: int = 8  # the first min_context positions are never targets, so every target has some past


@dataclass(frozen=True)
class JEPAConfig(ConfigDict):
    """Fin-JEPA: token (+ latent) embedding, Mamba-2 encoder, EMA target encoder, causal predictor, VICReg."""

    vocab_size: int = 512  # number of Strate I token ids (codebook size)
    n_latent: int = 0  # width of Strate I's continuous latent (latent_* columns); 0 = tokens only
    n_layers: int = 2  # Mamba-2 blocks in the encoder
    # v7 ("C1", issue 12): the exo z-scores and each patch's RevIN scale statistics (exo_signals.SCALE_COLUMNS) enter
    # the token embedding through a linear map, not only the clock dt: RevIN strips the volatility level from the
    # tokens, and next-day volatility is mostly today's level
    scale_inputs: bool = False
    scale_hidden: int = 0  # 0: the scale inputs enter through one linear map; > 0: through a GELU MLP this wide
    # > 0: the predictor also regresses every masked token's scale inputs (scale_ret, scale_volume; smooth L1, this
    # weight): the context must then carry the coming patches' scale, which the representation targets alone let the
    # encoder discard (docs/RESULTS.md, Strate II). Self-supervised: the same causal input columns. Needs scale_inputs
    scale_target_weight: float = 0.0
    target_layer_norm: bool = True  # layer-norm the EMA targets (I-JEPA); False keeps their per-token magnitude
    predictor_layers: int = 1  # Mamba-2 blocks in the (causal) predictor
    mixer: Mamba2Config = field(default_factory=Mamba2Config)  # every encoder/predictor block uses this
    masking: MaskingConfig = field(default_factory=MaskingConfig)  # target blocks
    seq_len: int = 256  # training window length in tokens
    ema_start: float = 0.996  # target-encoder momentum at step 0 (I-JEPA)
    ema_end: float = 1.0  # momentum at the last step (linear schedule from ema_start, as I-JEPA; see ema_momentum)
    vicreg_sim: float = 25.0  # VICReg invariance weight (Bardes et al. 2022 default)
    vicreg_std: float = 25.0  # VICReg variance weight
    vicreg_cov: float = 1.0  # VICReg covariance weight
    vicreg_weight: float = 0.01  # scale of the whole VICReg term next to the smooth-L1 JEPA loss
    lr: float = 1e-3  # AdamW peak learning rate
    weight_decay: float = 0.05  # AdamW weight decay
    schedule: LRSchedule = field(default_factory=LRSchedule)  # warm-up over 5 % of steps, cosine to 10 % of lr
    grad_clip: float = 1.0  # gradient-norm clip: EMA targets drift slowly, one outlier batch must not jolt them
    batch_size: int = 16  # windows per step
    max_steps: int = 200  # optimizer steps
    windows_per_epoch: int = 512  # random windows drawn per epoch (Lightning epoch length)
    compile: bool = False  # torch.compile the encoders (CUDA only; ignored on CPU)

    def __post_init__(self) -> None:
        if self.vocab_size < 2 or self.n_layers < 1 or self.predictor_layers < 1 or self.n_latent < 0:
            raise ValueError(
                f"bad sizes: vocab_size={self.vocab_size}, n_layers={self.n_layers}, "
                f"predictor_layers={self.predictor_layers}, n_latent={self.n_latent}"
            )
        if self.scale_target_weight < 0 or (self.scale_target_weight > 0 and not self.scale_inputs):
            raise ValueError(f"scale_target_weight must be >= 0 and needs scale_inputs=True, got "
                             f"{self.scale_target_weight} with scale_inputs={self.scale_inputs}")
        if not 0 < self.ema_start <= self.ema_end <= 1.0:
            raise ValueError(f"need 0 < ema_start <= ema_end <= 1, got {self.ema_start}, {self.ema_end}")
        if self.seq_len <= self.masking.min_context + 1:
            raise ValueError(
                f"seq_len {self.seq_len} must exceed masking.min_context + 1 = {self.masking.min_context + 1}"
            )
        lo, hi = self.masking.block_ratio
        if not 0 < lo <= hi < 1 or self.masking.n_blocks < 1 or self.masking.n_blocks * hi >= 0.9:
            raise ValueError(
                f"bad masking: n_blocks={self.masking.n_blocks}, block_ratio={self.masking.block_ratio} "
                "(need 0 < lo <= hi < 1 and n_blocks·hi < 0.9)"
            )


def jepa_profile(profile: str, **overrides) -> JEPAConfig:
    """``demo``: a few CPU minutes inside ``make demo``; ``full``: H100 scale. ``overrides`` replace fields."""
    check_profile(profile)
    if profile in ("demo", "cpu"):
        # seq_len 64: the demo's four months of hourly candles give ~180 tokens per symbol (patch_len 16); the same
        # small encoder is what the CPU reports train over the full history. One block, scale inputs through a GELU
        # MLP, the masked-scale target at weight 100, 100 steps: chosen on the validation window (docs/RESULTS.md,
        # Strate II: two blocks, a linear scale map, no scale target, weights 1–1000 and 50–400 steps scored lower
        # or equal there)
        base = JEPAConfig(
            mixer=Mamba2Config(d_model=64, d_state=16, headdim=32, chunk_size=32, exo=ExoClockConfig(enabled=True)),
            n_layers=1, seq_len=64, batch_size=16, max_steps=100, scale_inputs=True, scale_hidden=64,
            scale_target_weight=100.0,
        )
    else:
        base = JEPAConfig(
            mixer=Mamba2Config(d_model=256, d_state=64, headdim=64, ngroups=1, chunk_size=128,
                               exo=ExoClockConfig(enabled=True)),
            n_layers=6, predictor_layers=2, seq_len=1024, scale_inputs=True, scale_hidden=256, batch_size=64,
            scale_target_weight=100.0,  # the cpu profile's choice; its steps were not validated at this size
            max_steps=20_000,
            windows_per_epoch=16_384, lr=5e-4, compile=True,
        )
    return replace(base, **overrides)
