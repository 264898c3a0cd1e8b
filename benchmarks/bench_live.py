"""Live decision path (issue 15) on ONE core (``torch.set_num_threads(1)``, onnxruntime one thread): wall time of
``DecisionEngine.on_candle`` from one newly closed 1h candle to a decision, p50/p99 separately for the candles that
do not complete a patch (features only) and for those that complete one (tokenizer + Fin-JEPA step + multiverse +
agent), PyTorch next to ONNX Runtime, for the CVaR planner and PPO; and decisions per second for 64 symbols fed
candle by candle. Goals: non-patch p50 ≤ 1 ms, p99 ≤ 3 ms; patch p50 ≤ 3 ms, p99 ≤ 10 ms.

Setup (not timed): demo-profile models, untrained (latency does not depend on the weights): tokenizer
(``tokenizer.config.profile_config("demo")``), exo-clock Fin-JEPA (``jepa_profile("demo")``, d_model 64, 2 layers),
flow multiverse (``multiverse.config.profile_config("demo")``: 64 futures × 3 tokens, Euler 2 steps), CVaR planner
(``cvar_planner_profile("demo")``: MPPI 512 samples × 6 iterations) or PPO (``ppo_profile("demo")``), R = 8 past
returns; the engine's default decode for the 16 h + 24 h ``mv_summary`` ("table": each future token's decoded shape
looked up among the K codes' shapes, decoded once; "full", the decoder on every future patch, is measured beside it
for PPO on PyTorch). Synthetic BTC/USDT candles: a state-only warm start on 60 days, then 30 days streamed; the first
5 calls of each kind are warm-up and not counted. 64 symbols: one engine, 64 streams cloned from one warm start, 96
candles each (6 patch boundaries), all symbols fed at each candle; the multiverse, tokenizer and agent run per symbol
(no cross-symbol batching yet).
"""

from __future__ import annotations

import copy
import tempfile
import time

import numpy as np
import torch

WARMUP = 5
HISTORY_DAYS, STREAM_DAYS = 60, 30
N_SYMBOLS, THROUGHPUT_CANDLES = 64, 96
N_PAST = 8


def _stack(agent_kind: str):
    from fin_ia_models.agents import AgentData, ObsNormalizer
    from fin_ia_models.agents.planner import CVaRPlannerAgent
    from fin_ia_models.agents.planner_config import PlannerSpec
    from fin_ia_models.agents.profiles import cvar_planner_profile, ppo_profile
    from fin_ia_models.live.stack import ModelStack
    from fin_ia_models.multiverse.config import profile_config as mv_profile
    from fin_ia_models.multiverse.model import MultiverseModel
    from fin_ia_models.tokenizer.config import profile_config as tok_profile
    from fin_ia_models.tokenizer.model import TokenizerModel
    from fin_ia_models.world_model.config import jepa_profile
    from fin_ia_models.world_model.jepa import FinJEPA
    from fin_ia_models.world_model.stage import jepa_config_for

    torch.manual_seed(0)
    tokenizer = TokenizerModel(tok_profile("demo")).eval()
    jepa = FinJEPA(jepa_config_for(tokenizer, jepa_profile("demo"), exo_clock=True, use_latents=True)).eval()
    d = jepa.config.mixer.d_model
    mv = MultiverseModel(mv_profile("demo", tokenizer=tokenizer.config, emb_dim=d)).eval()
    mv.load_tokenizer(tokenizer)
    n_summary = 4 * len(mv.config.eval_horizons)  # mv_summary: mean, std, q05, rv per stored horizon
    dims = (d, n_summary, N_PAST)
    width = sum(dims)
    normalizer = ObsNormalizer(np.zeros(width, np.float32), np.ones(width, np.float32), dims, 10.0)
    if agent_kind == "cvar":
        agent = CVaRPlannerAgent(PlannerSpec(cvar_planner_profile("demo"), dims, 0)).eval()
        agent.set_normalizer(normalizer)
    else:
        from fin_ia_models.agents.ppo import PPOAgent, build_ppo_model
        from fin_ia_models.agents.vec_env import LatentTradingVecEnv

        config = ppo_profile("demo")
        rng = np.random.default_rng(0)
        t = 2 * config.env.episode_len + 2
        data = AgentData(end_timestamp=np.arange(t) * 57_600_000, embedding=rng.normal(size=(t, d)),
                         mv_summary=rng.normal(size=(t, n_summary)), past_returns=rng.normal(size=(t, N_PAST)),
                         next_return=rng.normal(0, 0.01, t), tradable=np.ones(t, bool))
        venv = LatentTradingVecEnv([data], config.env, normalizer, n_envs=1)
        agent = PPOAgent(build_ppo_model(venv, config, 0), normalizer, config.env)
    return ModelStack(tokenizer, jepa, mv, agent, seed=0)


def _candles():
    from fin_ia_models.data.sources.synthetic import SyntheticMarket, SyntheticMarketConfig

    end = 1_717_200_000_000  # 2024-06-01 00:00 UTC
    start = end - (HISTORY_DAYS + STREAM_DAYS) * 86_400_000
    candles = SyntheticMarket(SyntheticMarketConfig(seed=0)).fetch("BTC/USDT", "1h", start, end)
    return candles, end - STREAM_DAYS * 86_400_000


def _latencies(engine, candles, split_ms) -> dict[str, np.ndarray]:
    """Per-call wall times (ms) of the non-patch and patch steps, and of the agent's ``act`` inside the patch steps
    (timed by wrapping the engine's agent: the part of a patch step the agent's own algorithm costs)."""
    agent = engine.stack.agent
    act, agent_ms = agent.act, []

    def timed_act(*args):
        t0 = time.perf_counter()
        out = act(*args)
        agent_ms.append(1e3 * (time.perf_counter() - t0))
        return out

    agent.act = timed_act
    try:
        engine.warm_start("BTC/USDT", candles[candles["timestamp"] < split_ms])
        decisions = engine.run("BTC/USDT", candles[candles["timestamp"] >= split_ms])
    finally:
        del agent.act  # the instance attribute goes, the class method is back
    out = {"agent": np.array(agent_ms[WARMUP:])}
    for kind, events in (("non_patch", ("hold",)), ("patch", ("decide",))):
        times = np.array([d.elapsed_ms for d in decisions if d.event in events])
        out[kind] = times[WARMUP:]
    return out


def _throughput(engine, candles, split_ms) -> float:
    """Decisions per second of ``engine`` streaming N_SYMBOLS symbols, candle-major."""
    base = engine.stream("SYM0")
    engine.warm_start("SYM0", candles[candles["timestamp"] < split_ms])
    for i in range(1, N_SYMBOLS):
        engine.streams[f"SYM{i}"] = copy.deepcopy(base)
    rows = candles[candles["timestamp"] >= split_ms].iloc[: THROUGHPUT_CANDLES + WARMUP]
    cols = [rows[c].to_numpy() for c in ("timestamp", "open", "high", "low", "close", "volume")]
    symbols = list(engine.streams)
    count, elapsed = 0, 0.0
    for k, (ts, o, h, lo, c, v) in enumerate(zip(*cols)):
        t0 = time.perf_counter()
        for symbol in symbols:
            engine.on_candle(symbol, int(ts), float(o), float(h), float(lo), float(c), float(v))
        if k >= WARMUP:
            elapsed += time.perf_counter() - t0
            count += len(symbols)
    return count / elapsed


def run() -> list[dict]:
    from fin_ia_models.live.engine import DecisionEngine

    torch.set_num_threads(1)
    candles, split_ms = _candles()
    rows = []
    for agent_kind in ("cvar", "ppo"):
        stack = _stack(agent_kind)
        for backend in ("pytorch", "onnxruntime"):
            with tempfile.TemporaryDirectory() as tmp:
                make = lambda: DecisionEngine(stack, onnx_dir=tmp if backend == "onnxruntime" else None)  # noqa: E731
                lat = _latencies(make(), candles, split_ms)
                for kind, goal50, goal99 in (("non_patch", 1.0, 3.0), ("patch", 3.0, 10.0)):
                    for q, goal in ((50, goal50), (99, goal99)):
                        value = float(np.percentile(lat[kind], q))
                        rows.append({"name": f"{agent_kind} {backend}: {kind.replace('_', '-')} step p{q}",
                                     "value": value, "unit": "ms",
                                     "note": f"goal ≤ {goal:g} ms, {'met' if value <= goal else 'MISSED'}; "
                                             f"{len(lat[kind])} calls"})
                rows.append({"name": f"{agent_kind} {backend}: agent alone in a patch step p50",
                             "value": float(np.percentile(lat["agent"], 50)), "unit": "ms",
                             "note": "the agent's act (MPPI for the planner, the actor for PPO), part of the patch step"})
                rate = _throughput(make(), candles, split_ms)
                rows.append({"name": f"{agent_kind} {backend}: {N_SYMBOLS} symbols", "value": rate,
                             "unit": "decisions/s", "note": f"{THROUGHPUT_CANDLES} candles × {N_SYMBOLS} symbols, "
                                                            "one core"})
    stack = _stack("ppo")  # the reference decode: the tokenizer decoder on every future patch (what "table" replaces)
    lat = _latencies(DecisionEngine(stack, decode="full"), candles, split_ms)["patch"]
    rows.append({"name": "ppo pytorch, decode=full: patch step p50", "value": float(np.percentile(lat, 50)),
                 "unit": "ms", "note": "tokenizer decoder on N × H future patches, the reference of the default "
                 "decode='table' (one lookup per future token in the decoded shapes of all K codes)"})
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<48} {row['value']:>10.4g} {row['unit']:<12} {row['note']}")
