"""Typed configuration of Strate III, the multiverse (v1 stochastic predictor, v6 OT-CFM flow predictor), with the
``demo`` / ``cpu`` / ``full`` sizes in one table.

The config also pins what the multiverse was trained on: the frozen tokenizer it decodes with (its whole config; the
weights travel in the checkpoint), and the registered versions of the tokenizer and Fin-JEPA whose latents and
embeddings it reads (``tokenizer_version``, ``jepa_version``). Inputs made by other versions are refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from fin_ia_models.config import check_profile
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.training.schedule import LRSchedule
from fin_ia_models.utils.config_io import ConfigDict

PREDICTORS = ("stochastic", "flow")  # v1: noise-conditioned autoregressive predictor; v6: OT-CFM flow
# flow training pairs: minibatch exact OT (Tong et al. 2023), OT with a condition term in the cost, or I-CFM
COUPLINGS = ("ot", "ot_conditional", "independent")
SOLVERS = ("euler", "midpoint", "rk4", "dopri5")  # torchdiffeq methods the flow may sample with
N_SCALE_TARGETS = 2  # per future token: log std and standardized mean of its close returns (RevIN statistics)


@dataclass(frozen=True)
class MultiverseConfig(ConfigDict):
    """Everything that shapes a multiverse model: what it reads, the network, the loss and the training loop."""

    # --- what it was built on (checked at every use) ---------------------------------------------------------------
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)  # the frozen tokenizer it decodes with
    tokenizer_version: str = "unversioned"  # e.g. "fin-ia-tokenizer/3": the tokenizer that made the latents it reads
    jepa_version: str = "unversioned"  # e.g. "fin-ia-jepa/2": the Fin-JEPA that made the context embeddings
    emb_dim: int = 64  # width of the JEPA context embedding (emb_* columns)

    # --- context and targets -----------------------------------------------------------------------------------------
    # trailing windows (tokens) of the mean log patch volatility in the context: 4 tokens = 64 h covers the GARCH
    # half-life of hourly crypto volatility (a few days), 16 tokens ≈ 11 days its slower level
    scale_windows: tuple[int, ...] = (4, 16)
    horizon: int = 3  # future tokens per trajectory (training and stored futures; the CVaR planner plans 3 steps)
    target_clip: float = 8.0  # standardized outputs are clipped to ±this when rolled out: one wild draw fed back
    #                           into the recurrent state must not blow a trajectory up to exp(huge) volatility

    # --- predictor ---------------------------------------------------------------------------------------------------
    predictor: str = "flow"  # "flow" (v6 OT-CFM) or "stochastic" (v1 noise-conditioned predictor)
    hidden_dim: int = 128  # width of the context MLP, the recurrent state and the heads
    n_layers: int = 2  # hidden layers of each MLP (context encoder, stochastic head, velocity field)
    noise_dim: int = 16  # v1: size of the noise z ~ N(0, I) drawn per future and step
    n_train_samples: int = 16  # v1: futures K per context in the energy-score loss (K >= 2 for the fair estimator)
    crps_weight: float = 1.0  # v1: weight of the marginal CRPS of the scale targets next to the joint energy score
    # v6 pairing of noise and targets: "ot" = exact minibatch OT (torchcfm), "ot_conditional" = OT with a condition
    # term in the cost, "independent" = I-CFM; "independent" scored best on validation (docs/RESULTS.md, Strate III)
    coupling: str = "independent"
    coupling_condition_weight: float = 1.0  # v6 "ot_conditional": β of β·||state − state'||² in the OT cost
    flow_sigma: float = 0.0  # v6: width of the Gaussian probability path around the straight line (0 = OT-CFM's)
    solver: str = "euler"  # v6: torchdiffeq method used to sample (dopri5 is the accurate reference)
    solver_steps: int = 2  # v6: fixed steps of euler/midpoint/rk4 (ignored by dopri5)
    solver_rtol: float = 1e-5  # v6: dopri5 relative tolerance (absolute tolerance = rtol / 10)

    # --- evaluation --------------------------------------------------------------------------------------------------
    n_eval_futures: int = 100  # futures per origin when scoring (CRPS of 100 members: estimator noise << the gaps)
    eval_horizons: tuple[int, ...] = (16, 24)  # scored horizons in candles: 1 token of 16 h, and 24 h

    # --- training ----------------------------------------------------------------------------------------------------
    lr: float = 1e-3  # AdamW peak learning rate (see ``schedule``)
    weight_decay: float = 1e-4  # AdamW weight decay
    schedule: LRSchedule = field(default_factory=lambda: LRSchedule(warmup_fraction=0.05, floor=0.1))
    grad_clip: float = 1.0  # gradient-norm clip: one crash week must not wreck the state network
    batch_size: int = 128  # contexts per optimizer step
    epochs: int = 40  # passes over the training contexts
    max_steps_per_epoch: int | None = None  # cap on steps per epoch (tests, smoke runs); None = full epoch

    def __post_init__(self) -> None:
        if self.predictor not in PREDICTORS:
            raise ValueError(f"unknown predictor {self.predictor!r}: expected one of {', '.join(PREDICTORS)}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {self.coupling!r}: expected one of {', '.join(COUPLINGS)}")
        if self.solver not in SOLVERS:
            raise ValueError(f"unknown solver {self.solver!r}: expected one of {', '.join(SOLVERS)}")
        for name in ("emb_dim", "horizon", "hidden_dim", "n_layers", "noise_dim", "batch_size", "epochs",
                     "solver_steps", "n_eval_futures"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_train_samples < 2:
            raise ValueError(f"n_train_samples must be >= 2 (the fair energy score needs pairs), got "
                             f"{self.n_train_samples}")
        if not self.scale_windows or min(self.scale_windows) < 1:
            raise ValueError(f"scale_windows must be non-empty with every window >= 1, got {self.scale_windows}")
        if not self.eval_horizons or min(self.eval_horizons) < 1:
            raise ValueError(f"eval_horizons must be non-empty, every horizon >= 1 candle, got {self.eval_horizons}")
        longest = self.horizon * self.tokenizer.patch_len
        if max(self.eval_horizons) > longest:
            raise ValueError(f"eval horizon {max(self.eval_horizons)} candles exceeds horizon {self.horizon} tokens × "
                             f"patch_len {self.tokenizer.patch_len} = {longest} candles")
        for name in ("target_clip", "grad_clip", "lr", "solver_rtol"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if min(self.crps_weight, self.flow_sigma, self.weight_decay, self.coupling_condition_weight) < 0:
            raise ValueError(f"crps_weight, flow_sigma, weight_decay and coupling_condition_weight must be >= 0, got "
                             f"{self.crps_weight}, {self.flow_sigma}, {self.weight_decay}, "
                             f"{self.coupling_condition_weight}")

    @property
    def latent_dim(self) -> int:
        """Width of Strate I's continuous latent (the ``latent_*`` columns)."""
        return self.tokenizer.latent_dim

    @property
    def target_dim(self) -> int:
        """Per future token: its latent plus the two scale targets."""
        return self.latent_dim + N_SCALE_TARGETS

    @property
    def n_scale_features(self) -> int:
        """Scale features of the context: the patch's log std and standardized mean, then one mean per window."""
        return 2 + len(self.scale_windows)

    @property
    def context_dim(self) -> int:
        """Context features per token: JEPA embedding | Strate I latent | scale features."""
        return self.emb_dim + self.latent_dim + self.n_scale_features

    @property
    def context_tokens(self) -> int:
        """Tokens of history a context needs (the longest scale window): earlier tokens get no futures."""
        return max(self.scale_windows)

    def with_overrides(self, **changes) -> "MultiverseConfig":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)


# Sizes per profile (fin_ia_models.config.PROFILES); every other field keeps its MultiverseConfig default.
PROFILE_SIZES: dict[str, dict] = {
    # make demo: ~150 training contexts over the two-month demo window; a few hundred steps, well under a minute
    "demo": dict(hidden_dim=64, epochs=60, batch_size=32, n_eval_futures=64),
    # CPU reports: ~6.5k training contexts (BTC+ETH tokens before the validation window), ~2k steps on one core
    "cpu": dict(hidden_dim=128, epochs=40, batch_size=128),
    # H100: wider networks, more futures per context in the loss, more epochs
    "full": dict(hidden_dim=512, n_layers=3, noise_dim=32, n_train_samples=32, epochs=200, batch_size=512,
                 lr=5e-4, n_eval_futures=256),
}


def profile_config(profile: str, **overrides) -> MultiverseConfig:
    """The ``profile``'s multiverse config with ``overrides`` (e.g. the tokenizer config, versions, predictor)."""
    return MultiverseConfig(**{**PROFILE_SIZES[check_profile(profile)], **overrides})
