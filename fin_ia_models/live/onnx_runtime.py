"""The live token step on onnxruntime: ``OnnxTokenStep`` (tokenizer + encoder step, multiverse with the row's fixed
noise) and ONNX twins of the agents' plain nets (``OnnxPlannerAgent``: critic grid on ONNX, MPPI in numpy and the
prior in PyTorch as in ``planner.plan_position``; ``OnnxPPOAgent``: the whole deterministic actor). The per-symbol
state keeps the engine's layout, so a state saved by one backend restarts the other."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fin_ia_models.agents.data import AgentRow
from fin_ia_models.agents.planner import plan_position
from fin_ia_models.live.onnx_export import encoder_state_names, session
from fin_ia_models.live.stream import SymbolStream, TokenStep
from fin_ia_models.multiverse.model import row_noise


class OnnxTokenStep(TokenStep):
    """``TokenStep`` whose networks run in onnxruntime sessions made from ``export_stack``'s files."""

    def __init__(self, stack, encoder, exo_min_periods: int, paths: dict[str, Path], decode: str) -> None:
        super().__init__(stack, encoder, exo_min_periods, decode)
        self.token_session, self.mv_session = session(paths["token_step"]), session(paths["multiverse"])
        self.state_names = encoder_state_names(len(stack.jepa.context_encoder.stack.mixers))
        self.noise_shape = (stack.n_futures, stack.multiverse.config.horizon, stack.multiverse.predictor.noise_dim)

    def encode(self, s: SymbolStream, patch: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        exo = self.exo_inputs(s)
        exo = np.zeros((1, 2), np.float32) if exo is None else exo[None].astype(np.float32)
        feeds = {"patch": patch[None], "exo": exo}
        for (conv, ssm), i in zip(s.encoder_state, range(0, len(self.state_names), 2)):
            feeds[self.state_names[i]] = np.ascontiguousarray(conv.T)[None]  # (1, conv_dim, d_conv)
            feeds[self.state_names[i + 1]] = ssm[None]
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        out = self.token_session.run(None, feeds)
        token, latent, emb, states = int(out[0][0]), out[1][0], out[2][0], out[3:]
        s.encoder_state = [(np.ascontiguousarray(states[i][0].T), states[i + 1][0]) for i in range(0, len(states), 2)]
        return token, latent, emb

    @property
    def _inputs(self) -> set[str]:
        return {i.name for i in self.token_session.get_inputs()}  # an unused input (exo off) is pruned by export

    def sample(self, ts: int, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        noise = row_noise(self.stack.seed, np.array([ts], np.int64), self.noise_shape)[0]  # (N, H, nd)
        out = self.mv_session.run(None, {"features": features[None], "noise": noise})
        if self.decode == "analytic":
            return out[0], None, None
        if self.decode == "table":
            return out[0], out[1], None
        return out[1], out[0], out[2].reshape(self.noise_shape[0], -1)


class _OnnxCritics:
    """Duck-types ``QuantileCriticEnsemble.forward_fixed_state`` on the value grid for ``plan_position``."""

    def __init__(self, path) -> None:
        self.session = session(path)

    def forward_fixed_state(self, features: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        (quantiles,) = self.session.run(None, {"features": features.numpy()})
        return torch.from_numpy(quantiles)[None]  # (1, G, M): the ensemble mean is already taken


class OnnxPlannerAgent:
    """``CVaRPlannerAgent`` with its critic ensemble on onnxruntime (the MPPI loop is numpy, as in PyTorch)."""

    def __init__(self, agent, policy_path) -> None:
        self.agent, self.critics = agent, _OnnxCritics(policy_path)
        self.normalizer, self.config = agent.normalizer, agent.config

    def act(self, row: AgentRow, position: float) -> float:
        if row.mv_futures is None:
            raise ValueError(f"the CVaR planner needs mv_futures (N, H) at {row.end_timestamp}, got None")
        features = torch.from_numpy(self.normalizer.transform(row.features()))
        return plan_position(features, position, row.mv_futures, self.critics, self.agent.prior,
                             self.agent.config.planner, self.agent.decision_seed(row.end_timestamp))


class OnnxPPOAgent:
    """``PPOAgent`` whose deterministic actor runs on onnxruntime."""

    def __init__(self, agent, policy_path) -> None:
        self.session, self.normalizer = session(policy_path), agent.normalizer
        self.env_config = agent.env_config

    def act(self, row: AgentRow, position: float) -> float:
        obs = np.empty((1, self.normalizer.obs_dim), dtype=np.float32)
        obs[0, :-1] = self.normalizer.transform(row.features())
        obs[0, -1] = position
        (action,) = self.session.run(None, {"obs": obs})
        return float(np.clip(action[0, 0], -1.0, 1.0))


def onnx_agent(agent, policy_path):
    """The ONNX twin of ``agent`` where one exists, else ``agent`` itself (its decisions stay PyTorch)."""
    if policy_path is None:
        return agent
    return OnnxPlannerAgent(agent, policy_path) if hasattr(agent, "critics") else OnnxPPOAgent(agent, policy_path)
