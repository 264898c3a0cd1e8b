"""``ModelStack``: the four models a decision needs, checked to belong together, and their registered versions.

The multiverse records the tokenizer and Fin-JEPA versions it was trained on (``config.tokenizer_version`` /
``jepa_version``) and carries a frozen copy of the tokenizer; the agent's observation widths (D, K, R) must be the
embedding width, the multiverse summary width and the past-return window the live rows are built with. Any mismatch
is refused here, once, instead of producing silently wrong rows on every candle.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fin_ia_models.live.rows import SUMMARY_NAMES, summary_horizons


@dataclass
class ModelStack:
    """Tokenizer, Fin-JEPA, multiverse and agent of one lineage, with the sampling settings of the batch path."""

    tokenizer: object  # TokenizerModel
    jepa: object  # FinJEPA (its context encoder is stepped)
    multiverse: object  # MultiverseModel
    agent: object  # any decide.TradingAgent (CVaRPlannerAgent, PPOAgent, ...)
    seed: int = 0  # multiverse sampling seed: the one ``multiverse_trajectories`` used (the pipeline seed)
    n_futures: int | None = None  # futures per decision; None: the multiverse's n_eval_futures (as the batch path)
    versions: dict[str, str] = field(default_factory=dict)  # role (agent, multiverse, jepa, tokenizer) → name/version

    def __post_init__(self) -> None:
        mv = self.multiverse.config
        if self.tokenizer.config != mv.tokenizer:
            raise ValueError("the tokenizer's config differs from the one the multiverse was trained with: pass the "
                             f"tokenizer {mv.tokenizer_version!r}")
        jc = self.jepa.config
        if jc.vocab_size != self.tokenizer.codebook_size:
            raise ValueError(f"Fin-JEPA vocabulary {jc.vocab_size} != tokenizer codebook "
                             f"{self.tokenizer.codebook_size}")
        if jc.mixer.d_model != mv.emb_dim:
            raise ValueError(f"Fin-JEPA width {jc.mixer.d_model} != the multiverse's emb_dim {mv.emb_dim}")
        if jc.n_latent not in (0, mv.latent_dim):
            raise ValueError(f"Fin-JEPA n_latent {jc.n_latent} != tokenizer latent_dim {mv.latent_dim}")
        if self.n_futures is None:
            self.n_futures = int(mv.n_eval_futures)
        if self.planner_horizon > mv.horizon:
            raise ValueError(f"the agent plans {self.planner_horizon} steps, the multiverse samples {mv.horizon}")
        dims = self.agent.normalizer.dims
        self.agent.normalizer.check((mv.emb_dim, len(SUMMARY_NAMES) * len(summary_horizons(mv)), dims[2]),
                                    "live rows")

    @property
    def patch_len(self) -> int:
        return int(self.tokenizer.config.patch_len)

    @property
    def n_past(self) -> int:
        """R: past token returns per row, the agent's training width."""
        return int(self.agent.normalizer.dims[2])

    @property
    def planner_horizon(self) -> int:
        spec = getattr(self.agent, "config", None)
        planner = getattr(spec, "planner", None)
        return int(planner.mppi.horizon) if planner is not None else 1

    @property
    def cost_rate(self) -> float:
        """Cost per unit of |Δposition| the agent was trained with (for paper PnL)."""
        env = getattr(self.agent, "env_config", None)  # PPOAgent (trained in this process)
        if env is None:  # registered agents: PPOPolicy (spec.env) or CVaRPlannerAgent (spec.planner.env)
            spec = self.agent.config
            env = spec.env if hasattr(spec, "env") else spec.planner.env
        return float(env.cost_rate)

    def label(self) -> str:
        return self.versions.get("agent", type(self.agent).__name__)
