"""Strate IV benchmarks (CPU, one core): env stepping against gym-anytrading's ``StocksEnv`` on real BTC/USDT 1h
candles with random actions (a bench-only dependency), one ``LatentTradingEnv`` (goal ≥ 1×), the vectorised env with
64 envs (goal ≥ 10× in aggregate), and the decision latency of the agents: the CVaR planner at its defaults with
N = 64 futures (p50/p99), the PPO policy beside it.

Env throughput is the best of 3 timed runs of pre-drawn random actions (drawing them is not the env's work), with
episode resets included. The latent envs replay synthetic ``AgentData`` of the real series' length in tokens
(BTC 1h / 16) and realistic widths (64-dim embedding, 4 summary values, 16 past returns): stepping cost does not
depend on the values. Latencies are per decision through ``decide`` after 5 warm-up calls, on one pinned core.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from fin_ia_models.agents.config import EnvConfig, PPOConfig
from fin_ia_models.agents.decide import decide
from fin_ia_models.agents.env import LatentTradingEnv
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.planner import CVaRPlannerAgent
from fin_ia_models.agents.planner_config import CVaRPlannerConfig, PlannerSpec
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.agents.vec_env import LatentTradingVecEnv

CSV = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance" / "BTCUSDT_1h.csv"
STEPS, VEC_ENVS, DECISIONS = 100_000, 64, 300


def _best_rate(run, steps: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return steps / best


def _reference_steps_per_s(candles) -> float:
    from gym_anytrading.envs import StocksEnv

    frame = candles.rename(columns={"close": "Close"})
    env = StocksEnv(frame, window_size=10, frame_bound=(10, len(frame)))
    actions = np.random.default_rng(0).integers(0, 2, STEPS).tolist()

    def run():
        env.reset(seed=0)
        for action in actions:
            if env.step(action)[3]:
                env.reset()

    return _best_rate(run, STEPS)


def _latent_steps_per_s(data) -> tuple[float, float, float]:
    config = EnvConfig(episode_len=256)
    normalizer = ObsNormalizer.fit([data], config.obs_clip)
    env = LatentTradingEnv(data, config, normalizer)
    actions = list(np.random.default_rng(0).uniform(-1, 1, (STEPS, 1)).astype(np.float32))

    def run_single():
        env.reset(seed=0)
        for action in actions:
            if env.step(action)[3]:
                env.reset()

    vec_steps = STEPS // VEC_ENVS
    vec_actions = np.random.default_rng(1).uniform(-1, 1, (vec_steps, VEC_ENVS, 1)).astype(np.float32)

    def vec_rate(kernel: str) -> float:
        vec = LatentTradingVecEnv([data], config, normalizer, n_envs=VEC_ENVS, kernel=kernel)

        def run_vec():
            vec.seed(0)
            vec.reset()
            for action in vec_actions:
                vec.step(action)

        run_vec()  # compiles (or loads) the numba kernel outside the timing
        return _best_rate(run_vec, vec_steps * VEC_ENVS)

    return _best_rate(run_single, STEPS), vec_rate("numba"), vec_rate("numpy")


def _latency_ms(agent, data) -> tuple[float, float]:
    rows = [data.row(t) for t in range(min(len(data), DECISIONS + 5))]
    for row in rows[:5]:
        decide(agent, row, 0.0)
    times = []
    for row in rows[5:]:
        t0 = time.perf_counter()
        decide(agent, row, 0.3)
        times.append(time.perf_counter() - t0)
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 99) * 1e3)


def _ppo_agent(data):
    from fin_ia_models.agents.ppo import PPOAgent, build_ppo_model

    normalizer = ObsNormalizer.fit([data], 10.0)
    vec = LatentTradingVecEnv([data], PPOConfig().env, normalizer, n_envs=1)
    return PPOAgent(build_ppo_model(vec, PPOConfig(n_envs=1, batch_size=64), 0), normalizer, PPOConfig().env)


def run() -> list[dict]:
    if not CSV.exists():
        return [{"name": "agents: env steps/s", "value": float("nan"), "unit": "steps/s",
                 "note": f"skipped: {CSV} absent"}]
    from fin_ia_models.data.sources.files import read_candle_file

    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        candles = read_candle_file(CSV)
        data = synthetic_agent_data(T=len(candles) // 16, D=64, N=64, H=3, R=16, seed=0)
        reference = _reference_steps_per_s(candles)
        single, vec, vec_numpy = _latent_steps_per_s(data)
        planner = CVaRPlannerAgent(PlannerSpec(CVaRPlannerConfig(), data.dims, seed=0))
        planner.set_normalizer(ObsNormalizer.fit([data], 10.0))
        plan_p50, plan_p99 = _latency_ms(planner, data)
        ppo_p50, ppo_p99 = _latency_ms(_ppo_agent(data), data)
    finally:
        torch.set_num_threads(threads)
        os.sched_setaffinity(0, cores)
    return [
        {"name": "agents: gym-anytrading StocksEnv (reference)", "value": reference, "unit": "steps/s",
         "note": f"BTCUSDT 1h, {len(candles)} candles, window 10, random actions"},
        {"name": "agents: LatentTradingEnv, one env", "value": single, "unit": "steps/s",
         "note": f"{len(data)} tokens, obs width {sum(data.dims) + 1}, episodes of 256"},
        {"name": "agents: one LatentTradingEnv / reference", "value": single / reference, "unit": "×",
         "note": "goal ≥ 1×"},
        {"name": f"agents: LatentTradingVecEnv, {VEC_ENVS} envs (aggregate)", "value": vec, "unit": "steps/s",
         "note": "SB3 VecEnv, numba step kernel"},
        {"name": f"agents: LatentTradingVecEnv, {VEC_ENVS} envs, numpy path", "value": vec_numpy, "unit": "steps/s",
         "note": f"without numba: {vec_numpy / reference:.1f}× the reference"},
        {"name": f"agents: vectorised {VEC_ENVS} envs / reference", "value": vec / reference, "unit": "×",
         "note": "goal ≥ 10×"},
        {"name": "agents: CVaR planner decision p50", "value": plan_p50, "unit": "ms",
         "note": "N = 64 futures, horizon 3, 6 iterations, 512 samples, 64 elites, 24 prior trajectories"},
        {"name": "agents: CVaR planner decision p99", "value": plan_p99, "unit": "ms", "note": "one core"},
        {"name": "agents: PPO decision p50", "value": ppo_p50, "unit": "ms", "note": "MlpPolicy 64×64, SB3 predict"},
        {"name": "agents: PPO decision p99", "value": ppo_p99, "unit": "ms", "note": "one core"},
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
