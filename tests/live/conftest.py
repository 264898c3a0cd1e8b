"""Tiny untrained stacks (tokenizer, exo-clock Fin-JEPA, multiverse, CVaR planner) over a random-walk market: the
live path's arithmetic, not the models' skill, is under test. Untrained networks are causal by construction."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.planner import CVaRPlannerAgent
from fin_ia_models.agents.planner_config import CVaRPlannerConfig, MPPIConfig, PlannerSpec
from fin_ia_models.live.batch import batch_agent_data
from fin_ia_models.live.stack import ModelStack
from fin_ia_models.multiverse.model import MultiverseModel
from tests.conftest import make_candles
from tests.multiverse.conftest import small_jepa, small_tokenizer, tiny_config

N_CANDLES = 16 * 110  # ~73 days of hourly candles: warm-up plus a month to replay
MONTH_MS = 30 * 24 * 3_600_000


def tiny_planner(dims: tuple[int, int, int], seed: int = 0) -> CVaRPlannerAgent:
    torch.manual_seed(seed)
    planner = CVaRPlannerConfig(mppi=MPPIConfig(num_samples=64, num_elites=8, num_pi_trajs=8, iterations=3),
                                critic_hidden=(16,), prior_hidden=(16,), n_critics=2, n_quantiles=8)
    return CVaRPlannerAgent(PlannerSpec(planner, dims, seed)).eval()


def scale_jepa(tokenizer, seed: int = 0):
    """A Fin-JEPA that reads the patch scale inputs (as the demo/cpu profiles do), through an MLP."""
    import dataclasses

    from fin_ia_models.world_model.jepa import FinJEPA

    base = small_jepa(tokenizer, seed).config
    torch.manual_seed(seed)
    return FinJEPA(dataclasses.replace(base, scale_inputs=True, scale_hidden=8)).eval()


def make_stack(seed: int = 0, n_past: int = 4, predictor: str = "stochastic",
               horizons: tuple[int, ...] | None = None, scale_inputs: bool = False) -> ModelStack:
    """``horizons``: the multiverse's eval horizons (candles), i.e. the agent's ``mv_summary`` (4 values each);
    default the config's (one token and 24 h, which need the decoded futures)."""
    tokenizer = small_tokenizer(seed)
    jepa = scale_jepa(tokenizer, seed) if scale_inputs else small_jepa(tokenizer, seed)
    torch.manual_seed(seed)
    extra = {} if horizons is None else {"eval_horizons": horizons}
    mv = MultiverseModel(tiny_config(tokenizer, predictor=predictor, n_eval_futures=16, **extra)).eval()
    mv.load_tokenizer(tokenizer)
    agent = tiny_planner((16, 4 * len(mv.config.eval_horizons), n_past), seed)
    stack = ModelStack(tokenizer, jepa, mv, agent, seed=seed, versions={"agent": f"agent/{seed + 1}"})
    return stack


def fit_normalizer(stack: ModelStack, candles: pd.DataFrame) -> ModelStack:
    """Give the planner a normaliser of the data it will see (so observations are not all clipped)."""
    data = batch_agent_data(stack, candles)
    stack.agent.set_normalizer(ObsNormalizer.fit([data], stack.agent.config.planner.env.obs_clip))
    return stack


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    return make_candles(N_CANDLES, seed=3)


@pytest.fixture(scope="module")
def stack(market) -> ModelStack:
    return fit_normalizer(make_stack(0), market)


class RecordingAgent:
    """The stack's own agent, its rows recorded as the engine hands them over (to compare them with the batch's)."""

    def __init__(self, agent) -> None:
        self.agent, self.rows = agent, []

    def __getattr__(self, name: str):
        return getattr(self.agent, name)

    def act(self, row, position: float) -> float:
        self.rows.append(row)
        return self.agent.act(row, position)


def with_gap(candles: pd.DataFrame, start: int, length: int) -> pd.DataFrame:
    out = candles.drop(index=range(start, start + length)).reset_index(drop=True)
    out.attrs = dict(candles.attrs)
    return out


def register_stacks(target, market: pd.DataFrame, agent_seeds=(0, 1), name: str = "fin-ia-agent-cvar") -> list[str]:
    """Register one tokenizer, Fin-JEPA and multiverse and an agent version per seed on ``target`` (a temporary
    sqlite MLflow store), each with its upstream lineage; the first agent version gets @champion, the last is the
    @candidate. Returns the agent specs ``name/version``."""
    from fin_ia_models.tracking.runs import UpstreamModel, log_trained_model, mlflow_client
    from fin_ia_models.training.result import TrainingResult

    def log(model, model_name, kind, upstream=()):
        result = TrainingResult(model, model.config, 0, history=[], metrics={"score": 1.0})
        logged = log_trained_model(target, experiment=model_name, model_name=model_name, kind=kind, result=result,
                                   upstream=list(upstream), tags={}, params={})
        return UpstreamModel(model_name, logged.version, logged.run_id)

    base = make_stack(0)
    tok = log(base.tokenizer, "fin-ia-tokenizer", "tokenizer")
    jepa = log(base.jepa, "fin-ia-jepa", "jepa", [tok])
    torch.manual_seed(0)
    mv = MultiverseModel(tiny_config(base.tokenizer, predictor="stochastic", n_eval_futures=16,
                                     tokenizer_version=f"{tok.name}/{tok.version}",
                                     jepa_version=f"{jepa.name}/{jepa.version}")).eval()
    mv.load_tokenizer(base.tokenizer)
    mv_up = log(mv, "fin-ia-multiverse", "multiverse", [tok, jepa])
    specs = []
    for seed in agent_seeds:
        agent = tiny_planner((16, 4 * len(mv.config.eval_horizons), 4), seed)
        stack = ModelStack(base.tokenizer, base.jepa, mv, agent, seed=0)
        fit_normalizer(stack, market)
        specs.append(f"{name}/{log(stack.agent, name, 'cvar_planner', [mv_up]).version}")
    mlflow_client(target.tracking_uri).set_registered_model_alias(name, "champion", specs[0].split("/")[1])
    return specs
