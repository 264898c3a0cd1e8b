"""The registered form of a trained PPO agent: SB3's policy network as a plain ``nn.Module`` (``PPOPolicy``) that the
fin-ia checkpoint format (safetensors + a JSON config, ``fin_ia_models.training.checkpoint``, kind ``ppo_policy``)
can store and rebuild without unpickling anything.

Why not SB3's zip: ``PPO.load`` reads its ``data`` section with cloudpickle, so a tampered zip in an artifact store
would run code on load. The zip stays for what it is good at — local, preemption-safe resume of training
(``PPOAgent.save``/``load``, ``sb3_preemption.py``) — and never leaves the training pod's disk.

What is kept: every tensor of SB3's ``ActorCriticPolicy`` under SB3's own names (``mlp_extractor.policy_net.*``,
``mlp_extractor.value_net.*``, ``action_net.*``, ``value_net.*``, ``log_std``), so ``load_state_dict(policy.
state_dict())`` is exact, plus the training window's normaliser statistics as buffers (``obs_mean``, ``obs_std``).
The JSON config (``PPOPolicySpec``) holds what rebuilds the module: widths, hidden sizes, activation, the env config.

Decisions equal the trained agent's exactly: the deterministic SB3 action is the Gaussian's mean, i.e.
``action_net(policy_net(obs))`` on the float32 observation (SB3's ``FlattenExtractor`` only flattens a (1, F + 1)
row), clipped to the action box [−1, 1]; this module runs the same torch ops on the same float32 inputs (tested:
``agent_positions`` equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from fin_ia_models.agents.config import EnvConfig
from fin_ia_models.agents.data import AgentRow
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.utils.config_io import ConfigDict

KIND = "ppo_policy"
ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "relu": nn.ReLU}  # SB3's default first


@dataclass(frozen=True)
class PPOPolicySpec(ConfigDict):
    """Everything a registered PPO policy is rebuilt from (the tensors carry the rest)."""

    dims: tuple[int, int, int]  # (D, K, R) widths of embedding, mv_summary, past_returns it was trained on
    net_arch: tuple[int, ...]  # hidden sizes of the policy and value MLPs (SB3 ``net_arch`` list form)
    activation: str  # "tanh" (SB3's default) or "relu"
    env: EnvConfig  # costs and observation clip of its training env (the backtest charges the same)
    seed: int = 0  # training seed (lineage only: decisions are deterministic)

    def __post_init__(self) -> None:
        if len(self.dims) != 3 or min(self.dims) < 1:
            raise ValueError(f"dims must be three positive widths (D, K, R), got {self.dims}")
        if not self.net_arch or min(self.net_arch) < 1:
            raise ValueError(f"net_arch must be non-empty positive widths, got {self.net_arch}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {self.activation!r}")


def _mlp(in_dim: int, widths: tuple[int, ...], activation: type[nn.Module]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width in widths:  # Linear, activation, ... — SB3's ``create_mlp`` layout, so the indices (0, 2, ...) match
        layers += [nn.Linear(in_dim, width), activation()]
        in_dim = width
    return nn.Sequential(*layers)


class PPOPolicy(nn.Module):
    """SB3's MLP actor-critic for a 1-d Box action, rebuilt from ``PPOPolicySpec`` (a ``decide.TradingAgent``)."""

    kind = KIND

    def __init__(self, config: PPOPolicySpec) -> None:
        super().__init__()
        self.config = config
        in_dim = sum(config.dims) + 1
        activation = ACTIVATIONS[config.activation]
        self.mlp_extractor = nn.Module()
        self.mlp_extractor.policy_net = _mlp(in_dim, config.net_arch, activation)
        self.mlp_extractor.value_net = _mlp(in_dim, config.net_arch, activation)
        self.action_net = nn.Linear(config.net_arch[-1], 1)
        self.value_net = nn.Linear(config.net_arch[-1], 1)
        self.log_std = nn.Parameter(torch.zeros(1))  # the exploration std of training; unused when deciding
        self.register_buffer("obs_mean", torch.zeros(in_dim - 1))
        self.register_buffer("obs_std", torch.ones(in_dim - 1))

    @property
    def normalizer(self) -> ObsNormalizer:
        return ObsNormalizer(self.obs_mean.numpy().copy(), self.obs_std.numpy().copy(), self.config.dims,
                             self.config.env.obs_clip)

    @classmethod
    def from_agent(cls, agent, seed: int = 0) -> PPOPolicy:
        """The registrable copy of a trained ``PPOAgent`` (same tensors, same decisions); ``seed``: its training
        seed, kept as lineage."""
        from stable_baselines3.common.policies import ActorCriticPolicy
        from stable_baselines3.common.torch_layers import FlattenExtractor

        policy = agent.model.policy
        if type(policy) is not ActorCriticPolicy or not isinstance(policy.features_extractor, FlattenExtractor):
            raise ValueError(f"only SB3's MlpPolicy with a flatten extractor can be registered, got "
                             f"{type(policy).__name__} / {type(policy.features_extractor).__name__}")
        if policy.squash_output or policy.action_space.shape != (1,):
            raise ValueError(f"expected an unsquashed 1-d Box action, got squash_output={policy.squash_output}, "
                             f"action shape {policy.action_space.shape}")
        names = {cls_: name for name, cls_ in ACTIVATIONS.items()}
        if policy.activation_fn not in names:
            raise ValueError(f"activation {policy.activation_fn.__name__} is not one of {sorted(ACTIVATIONS)}")
        net_arch = policy.net_arch
        if isinstance(net_arch, dict):  # SB3 dict form: only equal pi/vf sizes are what PPOConfig produces
            if list(net_arch.get("pi", [])) != list(net_arch.get("vf", [])):
                raise ValueError(f"different policy/value hidden sizes are not supported, got {net_arch}")
            net_arch = net_arch["pi"]
        spec = PPOPolicySpec(dims=tuple(agent.normalizer.dims), net_arch=tuple(int(w) for w in net_arch),
                             activation=names[policy.activation_fn], env=agent.env_config,
                             seed=int(seed))
        module = cls(spec)
        module.load_state_dict({**{k: v.detach().cpu() for k, v in policy.state_dict().items()},
                                "obs_mean": torch.from_numpy(agent.normalizer.mean.copy()),
                                "obs_std": torch.from_numpy(agent.normalizer.std.copy())}, strict=True)
        if module.config.env.obs_clip != agent.normalizer.clip:
            raise ValueError(f"normaliser clip {agent.normalizer.clip} differs from the env's obs_clip "
                             f"{module.config.env.obs_clip}")
        return module.eval()

    @torch.no_grad()
    def action_mean(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, F + 1) float32 normalised observations → (B, 1) the Gaussian's mean (SB3's deterministic action)."""
        return self.action_net(self.mlp_extractor.policy_net(obs))

    @torch.no_grad()
    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """(B, F + 1) → (B, 1) the critic's state value (in reward_scale units)."""
        return self.value_net(self.mlp_extractor.value_net(obs))

    def act(self, row: AgentRow, position: float) -> float:
        normalizer = self.normalizer
        obs = np.empty((1, normalizer.obs_dim), dtype=np.float32)  # (1, F + 1), as PPOAgent.act builds it
        obs[0, :-1] = normalizer.transform(row.features())
        obs[0, -1] = position
        action = self.action_mean(torch.from_numpy(obs)).numpy()
        action = np.clip(action, -1.0, 1.0)  # SB3 clips to the Box bounds (float32) ...
        return float(np.clip(action[0, 0], -1.0, 1.0))  # ... and PPOAgent.act once more
