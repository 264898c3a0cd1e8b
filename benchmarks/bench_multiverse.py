"""Strate III speed on CPU: the flow's ODE solvers (Euler with 1, 2, 4, 8 steps against dopri5 at rtol 1e-5: CRPS on
the validation window and wall time, with the ratios) and path straightness, for the OT-CFM coupling and for the
independent (I-CFM) coupling the pipeline uses by default; sampling throughput (futures × steps per second, N = 64
futures of H = 24 tokens, one core) of both predictors.

Setup (not timed): on BTC/USDT + ETH/USDT 1h candles, a tokenizer (cpu profile, 2 epochs) and Fin-JEPA (cpu profile)
trained up to 2023-12-31 — or loaded from FIN_IA_BENCH_TOKENIZER / FIN_IA_BENCH_JEPA — then two cpu-profile
flow multiverses (couplings "ot" and "independent", seed 0) trained on the training window. CRPS: pooled over the
validation origins (2023-10-02 … 2023-12-31), 100 futures each, of the 24-candle return and realized vol. Solve
time: the flow's latent futures only (the ODE solves and the recurrent state, no decoding), best of 3; sample time
adds decoding.
Throughput: ``MultiverseModel.sample`` end to end (noise, rollout, quantizer and decoder) for 16 origins; the v1
predictor's speed does not depend on its weights, so it is timed untrained.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from benchmarks.timing import best_of

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "binance"
SOLVERS = [("euler", 1), ("euler", 2), ("euler", 4), ("euler", 8), ("dopri5", 0)]


def _upstream(candles, split):
    import tempfile

    from fin_ia_models.tokenizer.checkpoint import load_tokenizer
    from fin_ia_models.tokenizer.config import profile_config as tokenizer_profile
    from fin_ia_models.tokenizer.encode import encode_candles
    from fin_ia_models.tokenizer.train import train_tokenizer
    from fin_ia_models.world_model.config import jepa_profile
    from fin_ia_models.world_model.stage import exo_by_symbol, jepa_config_for
    from fin_ia_models.world_model.train import load_jepa, train_jepa

    _, end = split.range_ms("val")
    with tempfile.TemporaryDirectory() as tmp:
        if os.environ.get("FIN_IA_BENCH_TOKENIZER"):
            tokenizer = load_tokenizer(os.environ["FIN_IA_BENCH_TOKENIZER"])
        else:
            frames = [f[f["timestamp"] < end] for f in candles.values()]
            tokenizer = train_tokenizer(frames, tokenizer_profile("cpu", "fsq", epochs=2), 0, tmp).model
        if os.environ.get("FIN_IA_BENCH_JEPA"):
            return tokenizer, load_jepa(os.environ["FIN_IA_BENCH_JEPA"])
        tokens = {s: encode_candles(tokenizer, f) for s, f in candles.items()}
        config = jepa_config_for(tokenizer, jepa_profile("cpu"), exo_clock=True, use_latents=True)
        train = {s: t[t["end_timestamp"] < end].reset_index(drop=True) for s, t in tokens.items()}
        jepa = train_jepa(train, config, 0, tmp, exo=exo_by_symbol(tokens, candles, tokenizer.config.patch_len)).model
    return tokenizer, jepa


def _setup():
    from fin_ia_models.config import TimeSplit
    from fin_ia_models.data.sources.files import read_candle_file
    from fin_ia_models.multiverse.config import profile_config
    from fin_ia_models.multiverse.context import embedding_width
    from fin_ia_models.multiverse.stage import symbol_contexts, training_arrays
    from fin_ia_models.multiverse.train import train_multiverse
    from fin_ia_models.tokenizer.encode import encode_candles
    from fin_ia_models.world_model.stage import embed_tokens

    split = TimeSplit()
    candles = {f.attrs["symbol"]: f for f in (read_candle_file(DATA / f"{s}USDT_1h.csv") for s in ("BTC", "ETH"))}
    tokenizer, jepa = _upstream(candles, split)
    tokens = {s: encode_candles(tokenizer, f) for s, f in candles.items()}
    embeddings = {s: embed_tokens(jepa, tokens[s], candles[s], tokenizer.config.patch_len)[0] for s in candles}
    flows = {}
    for coupling in ("ot", "independent"):
        config = profile_config("cpu", tokenizer=tokenizer.config, predictor="flow", coupling=coupling,
                                emb_dim=embedding_width(next(iter(embeddings.values()))))
        contexts = symbol_contexts(tokens, embeddings, candles, config)
        features, targets = training_arrays(contexts, candles, config, *split.range_ms("train"))
        flows[coupling] = train_multiverse(features, targets, config, 0, tokenizer, prefer_cuda=False).model
    return split, candles, tokenizer, contexts, flows


def _crps(model, contexts, candles, split, solver: str, steps: int) -> dict[str, float]:
    from fin_ia_models.evaluation.forecast_scores import crps_ensemble
    from fin_ia_models.evaluation.forecast_targets import path_targets
    from fin_ia_models.multiverse.evaluate import scored_origins

    forecasts, realized = [], []
    for symbol, context in contexts.items():
        rows, paths = scored_origins(context, candles[symbol], *split.range_ms("val"), 24)
        traj = model.sample(context.end_timestamp[rows], context.features[rows], 100, model.config.horizon, 0,
                            solver=solver, steps=steps)
        forecasts.append(traj.paths(24))
        realized.append(paths)
    f_ret, f_rv = path_targets(np.concatenate(forecasts))
    y_ret, y_rv = path_targets(np.concatenate(realized))
    return {"ret": float(crps_ensemble(f_ret, y_ret).mean()), "rv": float(crps_ensemble(f_rv, y_rv).mean()),
            "n": len(y_ret)}


def _solver_rows(flow, name: str, contexts, candles, split, ts, x) -> list[dict]:
    """Euler 1/2/4/8 vs dopri5: validation CRPS, solve and sample time, ratios, straightness of one flow."""
    from fin_ia_models.multiverse.flow import integrate, straightness
    from fin_ia_models.multiverse.model import row_noise

    c = flow.config
    z = torch.as_tensor(row_noise(0, ts, (64, c.horizon, c.target_dim))).reshape(-1, c.horizon, c.target_dim)
    latent_context = flow.standardize(torch.as_tensor(x)).repeat_interleave(64, dim=0)  # (16·64, F)
    with torch.no_grad():
        state = flow.predictor.state.initial(latent_context)  # (16·64, Hd) before the first future token
    field = lambda t, v: flow.predictor.velocity(t, v, state)  # noqa: E731
    rows, results = [], {}
    for solver, steps in SOLVERS:
        label = f"Euler {steps} step{'s' if steps > 1 else ''}" if solver == "euler" else "dopri5 rtol 1e-5"
        with torch.no_grad():
            solve = best_of(lambda: flow.predictor.sample(latent_context, z, solver, steps))
        sample = best_of(lambda: flow.sample(ts, x, 64, c.horizon, 0, solver=solver, steps=steps), repeat=2)
        scores = _crps(flow, contexts, candles, split, solver, steps)
        with torch.no_grad():
            nfe = integrate(field, z[:, 0], solver, steps, c.solver_rtol)[1]
        results[label] = (solve, scores)
        rows += [
            {"name": f"{name} {label}: CRPS 24 h return", "value": scores["ret"], "unit": "",
             "note": f"realized vol CRPS {scores['rv']:.5g}; {scores['n']} validation origins × 100 futures"},
            {"name": f"{name} {label}: flow solve time", "value": solve * 1e3, "unit": "ms",
             "note": f"16 origins × 64 futures × {c.horizon} tokens, {nfe} field evaluations per token; full "
                     f"sample() {sample * 1e3:.0f} ms"},
        ]
    ref_solve, ref = results["dopri5 rtol 1e-5"]
    for label, (solve, scores) in results.items():
        if label.startswith("Euler"):
            rows.append({"name": f"{name} {label} vs dopri5: CRPS ratio (24 h return)",
                         "value": scores["ret"] / ref["ret"], "unit": "×",
                         "note": f"realized vol {scores['rv'] / ref['rv']:.4f}×; solve speed-up "
                                 f"{ref_solve / solve:.1f}×; goal for 2 steps: within 2 % at >= 30×"})
    with torch.no_grad():
        straight = straightness(field, z[:, 0])
    rows.append({"name": f"{name} path straightness (first step)", "value": straight["S_relative"], "unit": "",
                 "note": f"S / E||x1 - x0||²; S = {straight['S']:.4g} (0 = straight), Liu et al. 2023 eq. 5, "
                         "32-step Euler"})
    return rows


def run() -> list[dict]:
    from fin_ia_models.multiverse.config import profile_config
    from fin_ia_models.multiverse.model import MultiverseModel
    from fin_ia_models.utils.seeding import seed_everything

    if not (DATA / "BTCUSDT_1h.csv").exists():
        return [{"name": "multiverse benchmarks", "value": float("nan"), "unit": "", "note": f"no candles in {DATA}"}]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        seed_everything(0)
        split, candles, tokenizer, contexts, flows = _setup()
        symbol = sorted(contexts)[0]
        context = contexts[symbol]
        rows = np.flatnonzero(context.usable)[-16:]
        ts, x = context.end_timestamp[rows], context.features[rows]
        rows_out = []
        for coupling, flow in flows.items():
            rows_out += _solver_rows(flow, "OT-CFM" if coupling == "ot" else "I-CFM", contexts, candles, split, ts, x)
        flow = flows["independent"]  # the pipeline's default (chosen on validation)
        c = flow.config
        stochastic = MultiverseModel(profile_config("cpu", tokenizer=tokenizer.config, predictor="stochastic",
                                                    emb_dim=c.emb_dim)).eval()
        stochastic.load_tokenizer(tokenizer)
        for name, model in (("v6 flow (I-CFM), Euler 2 steps", flow), ("v6 OT-CFM, Euler 2 steps", flows["ot"]),
                            ("v1 stochastic", stochastic)):
            seconds = best_of(lambda: model.sample(ts, x, 64, 24, 0), repeat=2)
            rows_out.append({"name": f"sampling throughput, {name}", "value": 16 * 64 * 24 / seconds,
                             "unit": "future-steps/s", "note": f"16 origins × N = 64 × H = 24 tokens in "
                                                               f"{seconds:.2f} s, decoding included, 1 thread"})
        return rows_out
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    for row in run():
        print(row)
