"""ONNX graphs of the per-token network part of the live path, run by onnxruntime (``torch.onnx.export``, the
TorchScript exporter: ``dynamo=False``, since the dynamo exporter needs onnxscript, which is not a dependency).

Exported, each with a parity test against PyTorch (``tests/live/test_live_onnx.py``):
- ``token_step``: patch (1, L, C) + exo-clock z-scores (1, k) + the Mamba-2 states → token id, Strate I latent, the
  JEPA context embedding and the new states (tokenizer encode + ``ContextEncoder.step``: the same ops as PyTorch's
  step mode, which the streaming numpy/numba twin mirrors).
- ``multiverse``: raw context features (1, F) + FIXED noise (N, H, noise_dim) → future token ids (N, H), target
  vectors (N, H, d) and per-candle log returns (N, H·L) (standardize → predictor rollout → tokenizer decode). The
  noise is an input: it is drawn outside by ``multiverse.model.row_noise`` (seeded by (seed, end time)), so the ONNX
  futures are the PyTorch futures.
- ``policy``: where the agent is a plain net. PPO: the deterministic actor (normalised observation → position).
  CVaR planner: its networks only — the critic ensemble on the value grid (``terminal_cvar``) and the prior's
  (μ, σ); the MPPI loop itself (argpartition over sampled sequences, a data-dependent number of iterations of
  numpy work and the prior's torch-generator draws) is not a static graph and stays in numpy/PyTorch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from fin_ia_models.multiverse.decode import candle_returns, decoded_shape
from fin_ia_models.world_model.mamba2 import MixerState

OPSET = 17


class PlainRMSNorm(nn.Module):
    """``nn.RMSNorm`` in elementary ops: opset 17 has no RMSNormalization (it came in opset 23)."""

    def __init__(self, norm: nn.RMSNorm) -> None:
        super().__init__()
        self.weight = norm.weight
        self.eps = norm.eps if norm.eps is not None else float(torch.finfo(torch.float32).eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def exportable(module: nn.Module) -> nn.Module:
    """A deep copy of ``module`` with every ``nn.RMSNorm`` replaced by ``PlainRMSNorm`` (same weights)."""
    import copy

    out = copy.deepcopy(module)
    for name, child in list(out.named_modules()):
        for attr, sub in list(child.named_children()):
            if isinstance(sub, nn.RMSNorm):
                setattr(child, attr, PlainRMSNorm(sub))
    return out


class TokenStepNet(nn.Module):
    """Tokenizer encode + context-encoder step: (patch, exo, conv_0, ssm_0, …) → (token, latent, emb, conv_0, …)."""

    def __init__(self, tokenizer, encoder) -> None:
        super().__init__()
        self.tokenizer, self.encoder = tokenizer, encoder
        self.uses_latent = encoder.latent_proj is not None

    def forward(self, patch: torch.Tensor, exo: torch.Tensor, *states: torch.Tensor):
        tok = self.tokenizer
        latent = tok.encoder(tok.revin.normalize(patch)[0])  # (1, D)
        _, idx, _ = tok.quantizer(latent)  # (1,)
        pairs = [MixerState(conv=states[i], ssm=states[i + 1]) for i in range(0, len(states), 2)]
        config = self.encoder.config
        exo_t = exo if (config.mixer.exo.enabled or config.scale_inputs) else None
        emb, new = self.encoder.step(idx, pairs, latent if self.uses_latent else None, exo_t)
        out = [idx, latent, emb]
        for st in new:
            out += [st.conv, st.ssm]
        return tuple(out)


class MultiverseNet(nn.Module):
    """Raw context (1, F) + noise (N, H, nd) → targets (N, H, d), by ``decode``: "analytic" the targets alone
    (``live.rows.analytic_futures`` needs no more), "table" also the future tokens' ids (N·H,) (the quantizer; the
    shapes are looked up after the graph, ``CodeShapeTable``), "full" (ids (N·H,), targets, candle returns (N·H, L)
    float64) through the tokenizer decoder."""

    def __init__(self, multiverse, decode: str = "full") -> None:
        super().__init__()
        self.mv, self.decode = multiverse, decode

    def forward(self, features: torch.Tensor, noise: torch.Tensor):
        mv, c = self.mv, self.mv.config
        n = noise.shape[0]
        context = mv.standardize(features).expand(n, -1)  # (N, F): one origin
        if c.predictor == "flow":
            v = mv.predictor.sample(context, noise, None, None)
        else:
            v = mv.predictor.sample(context, noise)
        v = v * mv.target_std + mv.target_mean  # (N, H, d) target units
        if self.decode == "analytic":
            return v
        flat = v.reshape(-1, c.target_dim)
        if self.decode == "table":
            return v, mv.tokenizer.quantizer(flat[:, : c.latent_dim])[1]
        ids, shape = decoded_shape(mv.tokenizer, flat[:, : c.latent_dim])
        returns = candle_returns(shape, flat[:, c.latent_dim:], c.tokenizer.return_scale)
        return ids, v, returns


class CriticGridNet(nn.Module):
    """CVaR planner: normalised features (I − 1,) → ensemble-averaged critic quantiles on the value grid (G, M).
    The CVaR of each row (``agents.cvar``, a sort with a Python-int tail size) is taken outside: ``grid_cvar``."""

    def __init__(self, agent) -> None:
        super().__init__()
        self.critics = agent.critics
        self.register_buffer("grid", torch.from_numpy(np.linspace(-1.0, 1.0, agent.config.planner.mppi.value_grid))
                             .float())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.critics.forward_fixed_state(features, self.grid).mean(0)


def grid_cvar(quantiles: np.ndarray, agent) -> np.ndarray:
    """(G, M) quantiles → (G,) terminal CVaR in return units, as ``planner.terminal_cvar``."""
    from fin_ia_models.agents.cvar import cvar_lower_np

    planner = agent.config.planner
    return cvar_lower_np(np.asarray(quantiles, np.float64), planner.mppi.cvar_alpha) / planner.env.reward_scale


class PPOActorNet(nn.Module):
    """PPO (SB3): normalised observation (1, F + 1) → deterministic position (1, 1), clipped to [−1, 1]."""

    def __init__(self, policy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        features = self.policy.extract_features(obs, self.policy.pi_features_extractor)
        mean = self.policy.action_net(self.policy.mlp_extractor.forward_actor(features))
        return torch.clamp(mean, -1.0, 1.0)


def export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str]) -> Path:
    module.eval()
    with torch.no_grad():
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, opset_version=OPSET,
                          dynamo=False)
    return path


def encoder_state_names(n_layers: int) -> list[str]:
    return [f"{part}_{i}" for i in range(n_layers) for part in ("conv", "ssm")]


def exo_width(config) -> int:
    """Columns of the token step's ``exo`` input: the clock's z-scores, plus the patch scale when the model reads it
    (``world_model.sequences.exo_columns``); 2 when unused (the input is then pruned)."""
    from fin_ia_models.world_model.sequences import exo_columns

    return len(exo_columns(config)) or 2


def export_stack(stack, folder: str | Path, decode: str = "analytic") -> dict[str, Path]:
    """Write ``token_step.onnx``, ``multiverse.onnx`` (``MultiverseNet``: the decoder is in the graph when ``decode``
    is "full") and ``policy.onnx`` (what of the agent is a plain net)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tc, mv = stack.tokenizer.config, stack.multiverse
    enc = stack.jepa.context_encoder
    states = [t for st in enc.stack.init_state(1) for t in (st.conv, st.ssm)]
    names = encoder_state_names(len(enc.stack.mixers))
    n_exo = exo_width(stack.jepa.config)
    paths = {"token_step": export(
        TokenStepNet(stack.tokenizer, exportable(enc)), (torch.zeros(1, tc.patch_len, 5), torch.zeros(1, n_exo), *states),
        folder / "token_step.onnx", ["patch", "exo", *names], ["token", "latent", "emb", *[f"new_{n}" for n in names]])}
    noise = torch.zeros(stack.n_futures, mv.config.horizon, mv.predictor.noise_dim)
    outputs = {"analytic": ["targets"], "table": ["targets", "ids"], "full": ["ids", "targets", "returns"]}[decode]
    paths["multiverse"] = export(MultiverseNet(mv, decode), (torch.zeros(1, mv.config.context_dim), noise),
                                 folder / "multiverse.onnx", ["features", "noise"], outputs)
    obs_dim = stack.agent.normalizer.obs_dim
    if hasattr(stack.agent, "critics"):
        paths["policy"] = export(CriticGridNet(stack.agent), (torch.zeros(obs_dim - 1),), folder / "policy.onnx",
                                 ["features"], ["grid_quantiles"])
    elif hasattr(stack.agent, "model"):
        paths["policy"] = export(PPOActorNet(stack.agent.model.policy), (torch.zeros(1, obs_dim),),
                                 folder / "policy.onnx", ["obs"], ["position"])
    return paths


def session(path: str | Path):
    """A one-thread onnxruntime session (the live path's latency budget is one core)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def to_numpy(outputs) -> list[np.ndarray]:
    return [np.asarray(o) for o in outputs]
