"""One symbol's streaming state: a closed candle in, the state advanced, a decision out when a patch completes.

Per candle (O(1), no network): the tokenizer's per-candle features (``tokenizer.features``: scaled log returns of
open/high/low/close against the previous close, log1p of volume over its trailing mean) and their validity, kept in
rolling buffers. When the candle closes a patch on the absolute grid (candle index k with (k+1) % patch_len == 0) and
the patch's candles are all valid, the token step runs: tokenizer → Fin-JEPA context encoder step (exo-clock
z-scores over the trailing tokens) → multiverse context features → sampled futures (seeded by (seed, end time), as
``MultiverseModel.sample`` always is) → the agent row (``rows.py``) → ``decide``.

Gap / late-candle policy (logged as WARNING, counted, reported on the decision):
- GAP (a candle opens later than one timeframe after the previous one): FLATTEN. The position held goes to 0 at once
  and the next decision starts from flat. The per-candle buffers restart, so no feature or patch straddles the gap
  (patches resume after ``volume_window`` valid candles, as in the batch path), while the encoder's recurrent state,
  the exo-clock and scale windows carry on over tokens, exactly like the batch token sequence (which just lacks the
  dropped patches). This is the backtest's gap policy (``agents.data``): a position is never carried across a hole.
- LATE candle (open time ≤ the last one processed): SKIP. It is not applied (a closed candle already in the state is
  final; rewinding would need the state before it), the decision is unchanged and the event says so. A revised
  history is handled by rebuilding the state from storage (``DecisionEngine.warm_start``).
"""

from __future__ import annotations

import logging
import math
from collections import deque

import numpy as np
import torch

from fin_ia_models.agents.data import AgentRow
from fin_ia_models.agents.decide import decide
from fin_ia_models.live.rows import (analytic_futures, horizons_summary, needs_decoder, past_token_returns,
                                     summary_horizons, summary_of)
from fin_ia_models.multiverse.context import patch_scale_stats
from fin_ia_models.multiverse.decode import CodeShapeTable, decode_futures
from fin_ia_models.multiverse.model import row_noise
from fin_ia_models.multiverse.trajectories import Trajectories

log = logging.getLogger("fin_ia.live")

DECODES = ("analytic", "table", "full")
STATE_FIELDS = ("last_ts", "last_close", "run_length", "valid_run", "n_tokens", "last_token_ts", "target", "held",
                "gaps", "late")


class SymbolStream:
    """Mutable per-symbol state (plain numbers and deques, see ``to_dict``); the models live in the engine."""

    def __init__(self, symbol: str, patch_len: int, volume_window: int, n_past: int, exo_window: int,
                 scale_window: int, encoder_state: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.symbol = symbol
        self.last_ts, self.last_close = -1, math.nan
        self.run_length = self.valid_run = 0
        self.volumes: deque = deque(maxlen=volume_window)  # volumes of the current gap-free run, for the mean
        self.features: deque = deque(maxlen=patch_len)  # (5,) float64 features of the last candles
        self.raw_returns: deque = deque(maxlen=patch_len)  # unscaled close log returns (exo-clock realized vol)
        self.patch_volumes: deque = deque(maxlen=patch_len)
        self.token_closes: deque = deque(maxlen=n_past + 1)  # (end time, close) of the last tokens
        self.exo: tuple[deque, deque] = (deque(maxlen=exo_window), deque(maxlen=exo_window))
        self.trail_volumes: deque = deque(maxlen=exo_window)  # every candle's volume (scale_volume's trailing mean)
        self.log_sigma: deque = deque(maxlen=scale_window)
        self.encoder_state = encoder_state  # per layer (conv (d_conv, conv_dim), ssm (h, p, n)) float32
        self.n_tokens, self.last_token_ts = 0, -1
        self.target = self.held = 0.0
        self.gaps = self.late = 0
        self.last_summary: np.ndarray | None = None  # (4,) of the last decision
        self.last_confidence = math.nan

    # -- serialization (restart from stored state) -----------------------------------------------------------------
    def to_dict(self) -> dict:
        out = {name: getattr(self, name) for name in STATE_FIELDS}
        out.update(symbol=self.symbol, volumes=list(self.volumes), features=[list(f) for f in self.features],
                   raw_returns=list(self.raw_returns), patch_volumes=list(self.patch_volumes),
                   token_closes=[list(g) for g in self.token_closes], exo=[list(d) for d in self.exo],
                   trail_volumes=list(self.trail_volumes),
                   log_sigma=list(self.log_sigma),
                   last_summary=None if self.last_summary is None else self.last_summary.tolist(),
                   last_confidence=self.last_confidence)
        return out

    def load_dict(self, state: dict) -> None:
        for name in STATE_FIELDS:
            setattr(self, name, type(getattr(self, name))(state[name]))
        for name in ("volumes", "raw_returns", "patch_volumes", "log_sigma", "trail_volumes"):
            target = getattr(self, name)
            target.clear()
            target.extend(state[name])
        self.features.clear()
        self.features.extend(np.asarray(f, np.float64) for f in state["features"])
        self.token_closes.clear()
        self.token_closes.extend((int(t), float(c)) for t, c in state["token_closes"])
        for target, values in zip(self.exo, state["exo"]):
            target.clear()
            target.extend(values)
        self.last_summary = None if state["last_summary"] is None else np.asarray(state["last_summary"])
        self.last_confidence = float(state["last_confidence"])


def candle_step(s: SymbolStream, ts: int, o: float, h: float, lo: float, c: float, v: float, step_ms: int,
                volume_window: int, return_scale: float) -> str:
    """Advance the per-candle state; returns "late", "gap" or "ok" (see the module docstring)."""
    if ts <= s.last_ts:
        s.late += 1
        log.warning("%s: late candle %d <= last processed %d: skipped (policy: skip; rebuild from storage to apply "
                    "a revised history)", s.symbol, ts, s.last_ts)
        return "late"
    if ts % step_ms:
        raise ValueError(f"{s.symbol}: candle open time {ts} is not on the {step_ms} ms grid")
    event = "ok"
    if s.last_ts >= 0 and ts != s.last_ts + step_ms:
        s.gaps += 1
        missing = (ts - s.last_ts) // step_ms - 1
        log.warning("%s: gap of %d candle(s) before %d: position %.3f flattened to 0 (policy: flatten); patches "
                    "resume after %d valid candles", s.symbol, missing, ts, s.held, volume_window)
        s.held = s.target = 0.0
        s.run_length = 0
        s.volumes.clear()
        event = "gap"
    prev = s.last_close if s.run_length else math.nan
    s.run_length += 1
    s.volumes.append(v)
    valid = s.run_length >= max(2, volume_window)
    if valid:
        mean = sum(s.volumes) / len(s.volumes)
        ratio = v / mean if mean > 0 else 0.0  # all-zero window (maintenance): no signal, as the batch features
        feats = np.array([math.log(o / prev), math.log(h / prev), math.log(lo / prev), math.log(c / prev), 0.0])
        feats[:4] *= return_scale
        feats[4] = math.log1p(ratio)
    else:
        feats = np.zeros(5)
    s.valid_run = s.valid_run + 1 if valid else 0
    s.features.append(feats)
    s.raw_returns.append(math.log(c / prev) if s.run_length > 1 else math.nan)
    s.patch_volumes.append(v)
    s.trail_volumes.append(v)
    s.last_ts, s.last_close = ts, c
    return event


class TokenStep:
    """The network part of a token step, shared by the symbols of one engine (torch models or ONNX sessions)."""

    def __init__(self, stack, encoder, exo_min_periods: int, decode: str = "analytic") -> None:
        """``decode`` (see ``DecisionEngine``): "analytic", "table" (``CodeShapeTable``) or "full" (the decoder)."""
        if decode not in DECODES:
            raise ValueError(f"decode must be one of {DECODES}, got {decode!r}")
        self.stack, self.encoder, self.decode = stack, encoder, decode
        self.exo_min_periods = exo_min_periods
        self.exo_enabled = stack.jepa.config.mixer.exo.enabled
        self.scale_inputs = stack.jepa.config.scale_inputs  # then the clock's z-scores and the patch scale go in
        mv = stack.multiverse.config
        self.scale_windows, self.context_tokens = mv.scale_windows, mv.context_tokens
        self.revin_eps = stack.tokenizer.config.revin_eps
        self.horizons = summary_horizons(mv)
        if decode == "analytic" and needs_decoder(self.horizons, stack.patch_len):
            raise ValueError(f"mv_summary horizons {self.horizons} candles need the decoded futures: decode='table' "
                             f"or 'full' (analytic covers one token, {stack.patch_len} candles, only)")
        self.table = CodeShapeTable(stack.tokenizer) if decode == "table" else None
        for name in ("tokenizer", "jepa", "multiverse"):
            getattr(stack, name).eval()  # the fast paths below rely on eval mode (no dropout, frozen codebooks)

    def encode(self, s: SymbolStream, patch: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
        """(L, C) float32 patch → (token id, (D,) latent, (E,) context embedding); advances the encoder state."""
        token, latent = self.tokenize(patch)
        return token, latent, self.embed(s, token, latent, self.exo_inputs(s))

    def tokenize(self, patch: np.ndarray) -> tuple[int, np.ndarray]:
        """(L, C) float32 patch → (token id, (D,) float32 latent): ``TokenizerModel.encode``'s ops without its
        per-call train/eval toggling (a recursive walk over the modules that costs more than the convolutions)."""
        tok = self.stack.tokenizer
        with torch.no_grad():
            latent = tok.encoder(tok.revin.normalize(torch.from_numpy(patch[None]))[0])  # (1, D)
            _, idx, _ = tok.quantizer(latent)
        return int(idx[0]), latent[0].numpy()

    def exo_inputs(self, s: SymbolStream) -> np.ndarray | None:
        """The exo columns of the newest token, as ``world_model.sequences.exo_columns``: the clock's z-scores, then
        the patch's scale inputs when the model reads them (``exo_signals``, computed incrementally)."""
        if not (self.exo_enabled or self.scale_inputs):
            return None
        z = self.exo_z(s)
        return np.concatenate([z, self.scale(s)]) if self.scale_inputs else z

    def exo_z(self, s: SymbolStream) -> np.ndarray:
        """The exo-clock z-scores of the newest token (``exo_signals``: trailing window over tokens, NaN rows left out
        of the statistics, 0 with fewer than ``exo_min_periods`` valid rows)."""
        r = np.asarray(s.raw_returns)
        rv = math.sqrt(float(np.sum(r * r)))
        volume = sum(s.patch_volumes)
        raw = (math.log(max(rv, 1e-12)) if math.isfinite(rv) else math.nan,
               math.log(volume) if volume > 0 else math.nan)  # log, not log1p: unit-free z-scores
        z = np.zeros(2, np.float32)
        for j, (history, x) in enumerate(zip(s.exo, raw)):
            history.append(x)
            window = np.fromiter(history, np.float64, len(history))
            window = window[np.isfinite(window)]
            if math.isfinite(x) and len(window) >= self.exo_min_periods:
                std = window.std(ddof=1)
                if std > 0:
                    z[j] = (x - window.mean()) / std
        return z

    def scale(self, s: SymbolStream) -> np.ndarray:
        """(scale_ret, scale_volume) of the newest patch, as ``exo_signals``: log(100·σ) of its returns (population
        σ) and log of its mean volume over the trailing mean volume of the last ``window`` candles; 0 if undefined."""
        r = np.asarray(s.raw_returns, np.float64)
        n = len(r)
        out = np.zeros(2, np.float32)
        if n and np.isfinite(r).all():
            mean_r = r.sum() / n
            sd = math.sqrt(max(float((r * r).sum()) / n - mean_r**2, 0.0))
            if sd > 0:
                out[0] = math.log(100.0 * sd)
        if len(s.trail_volumes) >= self.exo_min_periods:
            trail = sum(s.trail_volumes) / len(s.trail_volumes)
            rel = (sum(s.patch_volumes) / n) / trail if n and trail > 0 else math.nan
            if rel > 0:
                out[1] = math.log(rel)
        return out

    def embed(self, s: SymbolStream, token: int, latent: np.ndarray, exo: np.ndarray | None) -> np.ndarray:
        enc = self.encoder
        for layer, (conv, ssm) in zip(enc.layers, s.encoder_state):  # swap this symbol's recurrent state in
            layer.conv[...] = conv
            layer.ssm[...] = ssm
        emb = enc.step(token, latent if enc.latent_w is not None else None, exo)
        s.encoder_state = [(layer.conv.copy(), layer.ssm.copy()) for layer in enc.layers]
        return np.asarray(emb, np.float32)

    def sample(self, ts: int, features: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """``MultiverseModel.sample`` for one origin, its ops without the per-call mode toggling and checks (the
        models are in eval mode for good; the batch path, which calls ``sample`` itself, is the reference):
        (targets (N, H, d) float32, the future tokens' ids (N·H,) unless ``decode`` is "analytic", per-candle returns
        (N, H·L) float64 when ``decode`` is "full")."""
        mv, c, n = self.stack.multiverse, self.stack.multiverse.config, self.stack.n_futures
        noise = row_noise(self.stack.seed, np.array([ts], np.int64), (n, c.horizon, mv.predictor.noise_dim))
        with torch.no_grad():
            context = mv.standardize(torch.from_numpy(features[None])).repeat_interleave(n, dim=0)  # (N, F)
            z = torch.from_numpy(noise[0])
            v = mv.predictor.sample(context, z) if c.predictor != "flow" else mv.predictor.sample(context, z, None,
                                                                                                     None)
            v = v * mv.target_std + mv.target_mean  # (N, H, d) target units
            if self.decode == "analytic":
                return v.numpy(), None, None
            flat = v.reshape(-1, c.target_dim)
            if self.decode == "table":
                return v.numpy(), self.table.ids(flat[:, : c.latent_dim]), None
            ids, returns = decode_futures(mv.tokenizer, flat[:, : c.latent_dim], flat[:, mv.scale_dims])
        return v.numpy(), ids, returns.reshape(n, -1)

    def futures(self, ts: int, features: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mv_summary (4·horizons,) float64, step returns (N, H) float32, first-token returns (N,)) of the origin."""
        v, ids, returns = self.sample(ts, features)
        c = self.stack.multiverse.config
        if self.decode == "table":
            returns = self.table.returns(ids, v[..., c.latent_dim:].reshape(len(ids), -1)).reshape(len(v), -1)
        if returns is None:  # one-token horizon only (checked at construction)
            steps, first, rv = analytic_futures(v[None, ..., c.latent_dim:], c.tokenizer.patch_len,
                                                c.tokenizer.return_scale)
            return summary_of(first, rv)[0], steps[0].astype(np.float32), first[0]
        traj = Trajectories(np.array([ts], np.int64), np.zeros(v.shape[:2], np.int64)[None],
                            v[None, ..., : c.latent_dim], v[None, ..., c.latent_dim:], returns[None],
                            c.tokenizer.patch_len)
        first = traj.horizon_targets(traj.patch_len)[0]
        return horizons_summary(traj, self.horizons)[0], traj.step_returns()[0].astype(np.float32), first[0]


def token_step(s: SymbolStream, net: TokenStep, ts: int, token_ms: int, decide_now: bool = True) -> str:
    """Tokenizer → encoder step → (once usable) multiverse → agent. Returns "decide" or "warmup"."""
    patch = np.asarray(s.features, np.float64).astype(np.float32)  # (L, C) as make_patches stores them
    token, latent, emb = net.encode(s, patch)
    scale = patch_scale_stats(patch[None], net.revin_eps)[0]  # (2,) log σ, μ/σ
    s.log_sigma.append(float(scale[0]))
    s.n_tokens += 1
    s.last_token_ts = ts
    s.token_closes.append((ts, s.last_close))  # the close of the token's last candle
    if s.n_tokens < net.context_tokens or not decide_now:
        return "warmup"
    sigmas = np.asarray(s.log_sigma)
    trailing = np.array([sigmas[-w:].mean() for w in net.scale_windows])
    features = np.concatenate([emb, latent, scale, trailing]).astype(np.float32)  # as build_context
    summary, steps, first = net.futures(ts, features)  # (4,), (N, H), (N,)
    s.last_confidence = abs(float(np.mean(first > 0)) - float(np.mean(first < 0)))
    s.last_summary = summary
    row = AgentRow(ts, emb, summary.astype(np.float32),
                   past_token_returns(list(s.token_closes), token_ms, net.stack.n_past).astype(np.float32),
                   steps)
    s.target = decide(net.stack.agent, row, s.held)
    s.held = s.target
    return "decide"
