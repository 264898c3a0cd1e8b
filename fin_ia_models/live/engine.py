"""``DecisionEngine``: closed candles of many symbols in, one ``Decision`` per candle out, for one ``ModelStack``.

Research only: a decision is a target position in [−1, 1] the agent would hold; nothing is ever sent anywhere.

Warm start (``warm_start``): from a saved state (``save_state`` / ``load_state``, versions checked) plus the stored
candles after it, or, without one, a state-only pass over the stored candles (tokenizer + encoder steps, no
multiverse, no agent: ~0.1 ms a token), so a start never re-decides years of history. Decisions start flat at the
warm-start point, as a backtest window does.
"""

from __future__ import annotations

import inspect
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fin_ia_models.data.schema import timeframe_ms
from fin_ia_models.live.rows import needs_decoder, summary_horizons
from fin_ia_models.live.stack import ModelStack
from fin_ia_models.live.stream import SymbolStream, TokenStep, candle_step, token_step
from fin_ia_models.utils.atomic import atomic_write_bytes
from fin_ia_models.world_model.exo_signals import exo_from_candles
from fin_ia_models.world_model.streaming import StreamingEncoder

STATE_FORMAT = "fin-ia-live-state/1"
_EXO = inspect.signature(exo_from_candles).parameters  # the batch path's exo-clock window: one source of truth
EXO_WINDOW, EXO_MIN_PERIODS = _EXO["window"].default, _EXO["min_periods"].default


@dataclass
class Decision:
    """What the engine says after one closed candle (never an order)."""

    symbol: str
    timestamp: int  # open time (ms UTC) of the candle that just closed
    event: str  # decide | hold | warmup | gap (flattened) | late (skipped)
    position: float  # target position held from now on, in [−1, 1]
    token_end: int  # end time of the token the current position was decided at (−1: none yet)
    mv_mean: float  # multiverse: mean of the next token's return over the futures (of the last decision)
    mv_std: float
    mv_q05: float  # 5 % quantile
    confidence: float  # |P(r > 0) − P(r < 0)| over the futures: 0 split, 1 unanimous (NaN before a decision)
    elapsed_ms: float  # wall time of this call
    versions: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


class DecisionEngine:
    """Streaming decisions of one model stack over any number of symbols (module docstring)."""

    def __init__(self, stack: ModelStack, timeframe: str = "1h", backend: str = "auto",
                 onnx_dir: str | Path | None = None, decode: str = "auto") -> None:
        """``backend``: the numpy/numba streaming encoder's; ``onnx_dir``: run the token step's networks (and the
        agent's plain nets) on onnxruntime from graphs exported there (``onnx_export``) instead of PyTorch;
        ``decode``: "analytic" takes the futures' token returns and first-token vol from their predicted
        statistics (``rows.analytic_futures``; only when ``mv_summary`` has the one-token horizon alone), "table"
        looks each future token's decoded shape up in a table of all codes (``multiverse.decode.CodeShapeTable``),
        "full" runs the tokenizer decoder on the N × H future patches as the batch path does (the reference; the
        whole patch step 2.6× slower than with "table" at demo size, bench_live); "auto" (default): analytic where it is exact, table otherwise."""
        if decode == "auto":
            decode = "table" if needs_decoder(summary_horizons(stack.multiverse.config), stack.patch_len) else "analytic"
        if onnx_dir is not None:
            import dataclasses

            from fin_ia_models.live.onnx_export import export_stack
            from fin_ia_models.live.onnx_runtime import onnx_agent

            onnx_paths = export_stack(stack, onnx_dir, decode)
            stack = dataclasses.replace(stack, agent=onnx_agent(stack.agent, onnx_paths.get("policy")))
        self.stack = stack
        self.step_ms = timeframe_ms(timeframe)
        self.timeframe = timeframe
        self.token_ms = stack.patch_len * self.step_ms
        tc = stack.tokenizer.config
        self.volume_window, self.return_scale = tc.volume_window, tc.return_scale
        self.encoder = StreamingEncoder(stack.jepa.context_encoder, backend)
        if onnx_dir is None:
            self.net = TokenStep(stack, self.encoder, EXO_MIN_PERIODS, decode)
        else:
            from fin_ia_models.live.onnx_runtime import OnnxTokenStep

            self.net = OnnxTokenStep(stack, self.encoder, EXO_MIN_PERIODS, onnx_paths, decode)
        self.streams: dict[str, SymbolStream] = {}

    @classmethod
    def from_registry(cls, spec: str, tracking_uri: str, **kwargs) -> DecisionEngine:
        """The engine of a registered agent, ``NAME@ALIAS`` or ``NAME/VERSION`` (``fin-ia-agent-cvar@champion``)."""
        from fin_ia_models.live.registry import load_stack

        seed = kwargs.pop("seed", 0)
        return cls(load_stack(tracking_uri, spec, seed=seed), **kwargs)

    @property
    def versions(self) -> dict[str, str]:
        return dict(self.stack.versions)

    def stream(self, symbol: str) -> SymbolStream:
        if symbol not in self.streams:
            state = [(np.zeros_like(ly.conv), np.zeros_like(ly.ssm)) for ly in self.encoder.layers]
            mv = self.stack.multiverse.config
            self.streams[symbol] = SymbolStream(symbol, self.stack.patch_len, self.volume_window, self.stack.n_past,
                                                EXO_WINDOW, max(mv.scale_windows), state)
        return self.streams[symbol]

    def on_candle(self, symbol: str, ts: int, o: float, h: float, lo: float, c: float, v: float,
                  decide_now: bool = True) -> Decision:
        """One closed candle of ``symbol`` (open time ``ts`` ms) → its ``Decision``."""
        start = time.perf_counter()
        s = self.stream(symbol)
        event = candle_step(s, int(ts), o, h, lo, c, v, self.step_ms, self.volume_window, self.return_scale)
        if event == "ok":
            event = "hold"
            if s.valid_run >= self.stack.patch_len and ((ts // self.step_ms) + 1) % self.stack.patch_len == 0:
                event = token_step(s, self.net, int(ts), self.token_ms, decide_now)
        summary = s.last_summary if s.last_summary is not None else np.full(4, math.nan)
        return Decision(symbol, int(ts), event, float(s.held), int(s.last_token_ts) if s.last_summary is not None
                        else -1, float(summary[0]), float(summary[1]), float(summary[2]), s.last_confidence,
                        1e3 * (time.perf_counter() - start), self.versions)

    def run(self, symbol: str, candles: pd.DataFrame, decide_now: bool = True) -> list[Decision]:
        """Feed ``candles`` (a candle frame) one by one."""
        cols = [candles[c].to_numpy() for c in ("timestamp", "open", "high", "low", "close", "volume")]
        return [self.on_candle(symbol, int(t), float(o), float(h), float(lo), float(c), float(v), decide_now)
                for t, o, h, lo, c, v in zip(*cols)]

    def warm_start(self, symbol: str, candles: pd.DataFrame) -> int:
        """Bring ``symbol``'s state up to the last stored candle without deciding (state-only pass); the position
        starts flat there. Resumes from a loaded state: only candles after it are read. Returns candles applied."""
        s = self.stream(symbol)
        newer = candles[candles["timestamp"] > s.last_ts]
        self.run(symbol, newer, decide_now=False)
        s.held = s.target = 0.0
        s.last_summary, s.last_confidence = None, math.nan
        return len(newer)

    # -- state ---------------------------------------------------------------------------------------------------
    def state_bytes(self) -> bytes:
        header = {"format": STATE_FORMAT, "versions": self.versions, "timeframe": self.timeframe,
                  "seed": self.stack.seed, "n_futures": self.stack.n_futures,
                  "streams": {sym: s.to_dict() for sym, s in self.streams.items()}}
        arrays = {f"{sym}|{i}|{part}": a for sym, s in self.streams.items()
                  for i, pair in enumerate(s.encoder_state) for part, a in zip(("conv", "ssm"), pair)}
        buffer = io.BytesIO()
        np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
        return buffer.getvalue()

    def save_state(self, path: str | Path) -> Path:
        atomic_write_bytes(Path(path), self.state_bytes())
        return Path(path)

    def load_state(self, path: str | Path) -> None:
        """Restore streams saved by ``save_state``; a state of other model versions or sampling is refused."""
        with np.load(Path(path), allow_pickle=False) as data:
            header = json.loads(bytes(data["header"]).decode())
            if header.get("format") != STATE_FORMAT:
                raise ValueError(f"{path} is not a live state file (format {header.get('format')!r})")
            mine = {"versions": self.versions, "timeframe": self.timeframe, "seed": self.stack.seed,
                    "n_futures": self.stack.n_futures}
            theirs = {k: header[k] for k in mine}
            if theirs != mine:
                raise ValueError(f"{path} was saved by {theirs}, this engine is {mine}: warm start from the candles")
            for sym, state in header["streams"].items():
                s = self.stream(sym)
                s.load_dict(state)
                s.encoder_state = [(data[f"{sym}|{i}|conv"].copy(), data[f"{sym}|{i}|ssm"].copy())
                                   for i in range(len(s.encoder_state))]
