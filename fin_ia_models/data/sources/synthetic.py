"""A seeded synthetic crypto market: closed candles for any symbol and timeframe, reproducible to the bit.

The model is a regime-switching stochastic-volatility random walk with Student-t shocks:

- regimes (calm / volatile / crash) follow a continuous-time Markov chain sampled as geometric holding times
  (Hamilton 1989, "A new approach to the economic analysis of nonstationary time series"); each regime scales the
  volatility and sets a drift. Regimes are market-wide: every symbol of a timeframe shares them (coins crash together);
- log-volatility is a sum of Ornstein–Uhlenbeck components with short and long time constants (stochastic volatility
  of Taylor 1986; a few time scales approximate the long memory of |r|, as in Corsi's HAR 2009 or the Markov-switching
  multifractal of Calvet & Fisher 2004), plus a mild intraday seasonality;
- shocks are standardized Student-t (heavy tails, Bollerslev 1987), a common market shock mixed with an idiosyncratic
  one, so symbols are correlated but not identical;
- log volume rises with the volatility level and with the size of the shock (mixture-of-distributions hypothesis,
  Clark 1973; Tauchen & Pitts 1983), plus a slow "participation" component and noise;
- OHLC: open = previous close; high/low are drawn from the law of the maximum/minimum of a Brownian bridge between
  open and close (e.g. Karatzas & Shreve, "Brownian Motion and Stochastic Calculus", 1991), so low <= min(o, c) and
  high >= max(o, c) by construction.

The stylized facts it targets are those of Cont (2001), measured by ``fin_ia_models.data.stylized_facts``.

Determinism: the market starts at ``origin_ms`` and advances on the timeframe grid in blocks of ``block_steps``
candles. Block ``b`` draws its random numbers from a generator seeded by ``(seed, crc32(symbol), timeframe ms, b)``
only, and carries a small state (filter states, regime, price) into block ``b + 1``. So the candle at a given open
time depends only on (config, symbol, timeframe, that time), never on the requested range. Different timeframes of one
symbol are different markets (a 1d candle is not the aggregate of the 1h ones).
"""

from __future__ import annotations

import math
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from fin_ia_models.data.schema import CANDLE_COLUMNS, DAY_MS, HOUR_MS, empty_candles, format_ms, timeframe_ms, with_meta

N_REGIMES = 3  # calm, volatile, crash: the tuple fields below are indexed in this order


@dataclass(frozen=True)
class SyntheticMarketConfig:
    """Seed and parameters of the synthetic market. Hourly figures are calibrated on Binance BTC/USDT 1h 2017–2024."""

    seed: int = 0  # the whole market is a function of this seed
    origin_ms: int = 1_483_228_800_000  # 2017-01-01 00:00 UTC: first candle, before Binance's spot history
    block_steps: int = 4096  # candles per random block: the unit of seeding and caching (part of the market's identity)
    # --- volatility -------------------------------------------------------------------------------------------------
    hourly_vol: float = 0.0047  # per-hour scale of log returns in the calm regime; overall hourly std lands ≈0.008
    t_dof: float = 5.5  # Student-t dof at <= 1h: heavy tails; much nearer 4 makes sample kurtosis erratic across seeds
    fast_vol_sd: float = 0.35  # sd of the fast log-vol component: bursts after news
    fast_vol_hours: float = 4.0  # its time constant: bursts fade within hours, steep start of the |r| autocorrelation
    slow_vol_sd: float = 0.5  # sd of the slow log-vol component: the level that makes |r| autocorrelation persist
    slow_vol_hours: float = 24.0 * 30  # its time constant: volatility regimes of weeks to months
    intraday_vol_amplitude: float = 0.2  # log-vol swing over the UTC day (Europe/US hours busier than Asia night)
    intraday_peak_hour: float = 15.0  # UTC hour of peak activity (US open), as in Binance 2017–2024
    # --- regimes (calm, volatile, crash) ----------------------------------------------------------------------------
    regime_log_vol: tuple[float, float, float] = (0.0, 0.45, 1.1)  # log-vol offset per regime
    regime_drift_per_day: tuple[float, float, float] = (0.0015, 0.0, -0.05)  # mean log return per day per regime
    regime_mean_hours: tuple[float, float, float] = (24.0 * 20, 24.0 * 5, 30.0)  # mean holding time per regime
    # jump chain: where the market goes when it leaves a regime (rows sum to 1, zero diagonal)
    regime_transitions: tuple[tuple[float, float, float], ...] = ((0.0, 0.85, 0.15), (0.8, 0.0, 0.2), (0.3, 0.7, 0.0))
    market_correlation: float = 0.6  # weight of the shared market shock in each symbol's shock variance
    # --- price ------------------------------------------------------------------------------------------------------
    price_anchor_hours: float = 24.0 * 365  # slow pull of log price to its level, so decades stay plausible
    # (base asset, price level in quote currency, typical hourly volume in base units): rough Binance 2021–2024 sizes
    levels: tuple[tuple[str, float, float], ...] = (
        ("BTC", 40_000.0, 1_500.0), ("ETH", 2_500.0, 15_000.0), ("BNB", 300.0, 50_000.0), ("SOL", 100.0, 100_000.0),
    )
    default_level: tuple[float, float] = (100.0, 50_000.0)  # (price, hourly volume) of any other symbol
    # --- volume -----------------------------------------------------------------------------------------------------
    volume_vol_beta: float = 0.7  # elasticity of volume to the volatility level (busy markets trade more)
    volume_shock_beta: float = 0.35  # log-volume rise per unit |shock| above its mean (big candles trade more)
    volume_slow_sd: float = 0.6  # sd of slow participation swings (bull-market crowds), independent of vol
    volume_slow_hours: float = 24.0 * 180  # their time constant: months, like Binance's 2017–2021 growth
    volume_noise_sd: float = 0.35  # sd of short-lived volume noise
    volume_noise_hours: float = 2.0  # its time constant (averages out in long candles)
    intraday_volume_amplitude: float = 0.25  # log-volume swing over the UTC day, same phase as volatility

    def __post_init__(self) -> None:
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.origin_ms % DAY_MS:
            raise ValueError(f"origin_ms must be at 00:00 UTC so every timeframe's grid is Binance's: {self.origin_ms}")
        if self.block_steps < 1:
            raise ValueError(f"block_steps must be >= 1, got {self.block_steps}")
        if self.t_dof <= 4:
            raise ValueError(f"t_dof must be > 4 so returns have a finite kurtosis, got {self.t_dof}")
        if not 0.0 <= self.market_correlation <= 1.0:
            raise ValueError(f"market_correlation must be in [0, 1], got {self.market_correlation}")
        for name in ("hourly_vol", "fast_vol_hours", "slow_vol_hours", "price_anchor_hours", "volume_slow_hours",
                     "volume_noise_hours"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("regime_log_vol", "regime_drift_per_day", "regime_mean_hours"):
            if len(getattr(self, name)) != N_REGIMES:
                raise ValueError(f"{name} needs {N_REGIMES} values (calm, volatile, crash), got {getattr(self, name)}")
        if min(self.regime_mean_hours) <= 0:
            raise ValueError(f"regime_mean_hours must be > 0, got {self.regime_mean_hours}")
        matrix = np.asarray(self.regime_transitions, dtype=np.float64)
        if matrix.shape != (N_REGIMES, N_REGIMES) or np.any(matrix < 0) or np.any(np.diag(matrix) != 0) \
                or not np.allclose(matrix.sum(axis=1), 1.0):
            raise ValueError(f"regime_transitions must be a 3x3 jump chain (rows sum to 1, zero diagonal): {matrix}")
        for base, price, volume in (*self.levels, ("<default>", *self.default_level)):
            if not (price > 0 and volume > 0):
                raise ValueError(f"levels[{base!r}] must be positive (price, hourly volume), got {(price, volume)}")


@dataclass(frozen=True)
class _BlockState:
    """What block b+1 needs from block b (block 0 starts from ``None``: the stationary law at origin)."""

    filter_states: np.ndarray  # (4,) lfilter states of fast vol, slow vol, volume slow, volume noise
    regime: int  # regime of the last candle
    regime_left: int  # candles left in the current regime spell
    price_dev: float  # log price minus its anchor level after the last candle
    close: float  # last close (the next open)


@dataclass(frozen=True)
class _Block:
    """Candle columns of one block, each (block_steps,)."""

    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def _ou_step(sd: float, tau_hours: float, dt_hours: float) -> tuple[float, float]:
    """AR(1) pole and innovation sd of an OU process with stationary sd ``sd`` averaged over candles of ``dt_hours``.

    Averaging an OU process over a window T = x·tau divides its variance by 2(x - 1 + e^-x)/x², so slow components
    survive in long candles and fast ones wash out.
    """
    x = dt_hours / tau_hours
    averaged_var = 1.0 if x < 1e-8 else 2.0 * (x - 1.0 + math.exp(-x)) / x**2
    phi = math.exp(-x)
    stationary_sd = sd * math.sqrt(averaged_var)
    return phi, stationary_sd * math.sqrt(1.0 - phi**2)


def _standard_t(rng: np.random.Generator, dof: float, size: int) -> np.ndarray:
    """Student-t draws rescaled to unit variance."""
    return rng.standard_t(dof, size) * math.sqrt((dof - 2.0) / dof)


def _regime_stationary(config: SyntheticMarketConfig) -> np.ndarray:
    """Long-run share of time in each regime: jump-chain stationary law weighted by mean holding times."""
    matrix = np.asarray(config.regime_transitions)
    eigvals, eigvecs = np.linalg.eig(matrix.T)
    jump = np.real(eigvecs[:, np.argmin(np.abs(eigvals - 1.0))])
    weights = jump / jump.sum() * np.asarray(config.regime_mean_hours)
    return weights / weights.sum()


class _Path:
    """One (symbol, timeframe) market: block states from origin (tiny) plus a small LRU of generated blocks."""

    def __init__(self, config: SyntheticMarketConfig, symbol: str, step_ms: int, max_cached_blocks: int) -> None:
        self.config = config
        self.symbol = symbol
        self.step_ms = step_ms
        self.dt_hours = step_ms / HOUR_MS
        base = symbol.split("/")[0].split(":")[0].upper()
        levels = {name.upper(): (price, volume) for name, price, volume in config.levels}
        self.price_level, hourly_volume = levels.get(base, config.default_level)
        self.volume_level = hourly_volume * self.dt_hours  # volume is additive over time
        self.symbol_key = zlib.crc32(symbol.encode("utf-8"))
        self.states: list[_BlockState | None] = [None]  # states[b] = state at the start of block b (None: origin)
        self.blocks: OrderedDict[int, _Block] = OrderedDict()
        self.max_cached_blocks = max_cached_blocks

    def block(self, index: int) -> _Block:
        """Candles of block ``index``, generating (and remembering the states of) the blocks before it as needed."""
        if index in self.blocks:
            self.blocks.move_to_end(index)
            return self.blocks[index]
        while len(self.states) <= index:  # sweep forward from the last known state
            self._generate(len(self.states) - 1)
        return self._generate(index)

    def _generate(self, index: int) -> _Block:
        block, end_state = _generate_block(self, index, self.states[index])
        if len(self.states) == index + 1:
            self.states.append(end_state)
        self.blocks[index] = block
        while len(self.blocks) > self.max_cached_blocks:
            self.blocks.popitem(last=False)
        return block


def _regimes(config: SyntheticMarketConfig, rng: np.random.Generator, size: int, dt_hours: float,
             regime: int | None, left: int) -> tuple[np.ndarray, int, int]:
    """Regime of each candle of a block from geometric holding times; loops over spells, not candles."""
    leave = 1.0 - np.exp(-dt_hours / np.asarray(config.regime_mean_hours))  # per-candle leaving probability
    matrix = np.asarray(config.regime_transitions)
    if regime is None:  # origin: start in the stationary law, mid-spell (geometric is memoryless)
        regime = int(rng.choice(N_REGIMES, p=_regime_stationary(config)))
        left = int(rng.geometric(leave[regime]))
    out = np.empty(size, dtype=np.int64)  # (size,)
    filled = 0
    while filled < size:
        if left == 0:
            regime = int(rng.choice(N_REGIMES, p=matrix[regime]))
            left = int(rng.geometric(leave[regime]))
        take = min(left, size - filled)
        out[filled:filled + take] = regime
        filled += take
        left -= take
    return out, regime, left


def _generate_block(path: _Path, index: int, state: _BlockState | None) -> tuple[_Block, _BlockState]:
    config, size, dt = path.config, path.config.block_steps, path.dt_hours
    tf_key = path.step_ms
    market_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 0, tf_key, index]))
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 1, path.symbol_key, tf_key, index]))
    # fat tails shrink as candles aggregate (aggregational Gaussianity): excess kurtosis 6/(dof-4) falls like 1/n
    dof = 4.0 + (config.t_dof - 4.0) * max(1.0, dt)

    # --- random inputs: fixed sizes, so each stream is a function of (seed, symbol, timeframe, block) only ---------
    market_shock = _standard_t(market_rng, dof, size)  # (size,) shared by every symbol of this timeframe
    own_shock = _standard_t(rng, dof, size)  # (size,)
    shock = math.sqrt(config.market_correlation) * market_shock + math.sqrt(1 - config.market_correlation) * own_shock
    innovations = rng.standard_normal((4, size))  # fast vol, slow vol, volume slow, volume noise
    bridge_u = 1.0 - rng.random((2, size))  # uniforms in (0, 1] for high and low (log(0) would be -inf)
    start_normals = rng.standard_normal(4)  # stationary start of the four filters (used at origin only)

    # --- log-volatility components: AR(1) filters with carried state ----------------------------------------------
    specs = [(config.fast_vol_sd, config.fast_vol_hours), (config.slow_vol_sd, config.slow_vol_hours),
             (config.volume_slow_sd, config.volume_slow_hours), (config.volume_noise_sd, config.volume_noise_hours)]
    components = np.empty((4, size))  # (4, size)
    end_filters = np.empty(4)
    for k, (sd, tau) in enumerate(specs):
        phi, innovation_sd = _ou_step(sd, tau, dt)
        if state is None:
            stationary = innovation_sd / math.sqrt(1.0 - phi**2) if phi < 1 else 0.0
            zi = np.array([phi * stationary * start_normals[k]])
        else:
            zi = state.filter_states[k:k + 1]
        components[k], zf = lfilter([innovation_sd], [1.0, -phi], innovations[k], zi=zi)
        end_filters[k] = zf[0]
    fast_vol, slow_vol, volume_slow, volume_noise = components

    regimes, regime, left = _regimes(config, market_rng, size, dt, None if state is None else state.regime,
                                     0 if state is None else state.regime_left)

    # --- intraday seasonality, averaged over the candle (vanishes for 1d candles) ----------------------------------
    open_ms = config.origin_ms + (index * size + np.arange(size, dtype=np.int64)) * path.step_ms  # (size,)
    width = path.step_ms / DAY_MS
    damping = 1.0 if width >= 1 else math.sin(math.pi * width) / (math.pi * width)
    day_phase = ((open_ms + path.step_ms / 2) % DAY_MS) / DAY_MS - config.intraday_peak_hour / 24.0
    season = damping * np.cos(2.0 * math.pi * day_phase)  # (size,) in [-1, 1]

    # --- returns and prices -----------------------------------------------------------------------------------------
    regime_log_vol = np.asarray(config.regime_log_vol)[regimes]
    log_vol = fast_vol + slow_vol + regime_log_vol + config.intraday_vol_amplitude * season
    sigma = config.hourly_vol * math.sqrt(dt) * np.exp(log_vol)  # (size,) per-candle scale of log returns
    drift = np.asarray(config.regime_drift_per_day)[regimes] * (dt / 24.0)
    returns = drift + sigma * shock
    pull = dt / config.price_anchor_hours
    price_dev0 = 0.0 if state is None else state.price_dev
    price_dev, _ = lfilter([1.0], [1.0, -(1.0 - pull)], returns, zi=[(1.0 - pull) * price_dev0])
    close = path.price_level * np.exp(price_dev)  # (size,)
    open_ = np.empty(size)
    open_[0] = path.price_level if state is None else state.close
    open_[1:] = close[:-1]

    # --- high / low: extremes of a Brownian bridge from open to close (log space) -----------------------------------
    move = np.log(close) - np.log(open_)
    high = open_ * np.exp(0.5 * (move + np.sqrt(move**2 - 2.0 * sigma**2 * np.log(bridge_u[0]))))
    low = open_ * np.exp(0.5 * (move - np.sqrt(move**2 - 2.0 * sigma**2 * np.log(bridge_u[1]))))
    # the bridge extremes already bracket open and close; this only absorbs float rounding of exp
    high = np.maximum(high, np.maximum(open_, close))
    low = np.minimum(low, np.minimum(open_, close))

    # --- volume: coupled to the vol level and to the size of the shock ---------------------------------------------
    log_volume = (config.volume_vol_beta * log_vol + config.volume_shock_beta * np.abs(shock)
                  + volume_slow + volume_noise + config.intraday_volume_amplitude * season)
    volume = path.volume_level * np.exp(log_volume)

    end_state = _BlockState(filter_states=end_filters, regime=regime, regime_left=left,
                            price_dev=float(price_dev[-1]), close=float(close[-1]))
    return _Block(open=open_, high=high, low=low, close=close, volume=volume), end_state


def _wall_clock_ms() -> int:
    return int(time.time() * 1000)


class SyntheticMarket:
    """A :class:`~fin_ia_models.data.sources.base.MarketSource` backed by the seeded synthetic model above."""

    name = "synthetic"

    def __init__(self, config: SyntheticMarketConfig | None = None, clock: Callable[[], int] = _wall_clock_ms,
                 max_cached_blocks: int = 64) -> None:
        """``clock`` returns "now" in ms (pin it in tests); ``max_cached_blocks`` bounds memory per symbol/timeframe."""
        if max_cached_blocks < 1:
            raise ValueError(f"max_cached_blocks must be >= 1, got {max_cached_blocks}")
        self.config = config or SyntheticMarketConfig()
        self._clock = clock
        self._max_cached_blocks = max_cached_blocks
        self._paths: dict[tuple[str, int], _Path] = {}

    def fetch(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Closed candles with open time in ``[start_ms, end_ms)``, sorted and unique, on the timeframe grid."""
        step = timeframe_ms(timeframe)
        if not symbol:
            raise ValueError("symbol must be a non-empty string")
        origin = self.config.origin_ms
        if start_ms < origin:
            raise ValueError(f"synthetic market starts at {format_ms(origin)} UTC (origin_ms={origin}): "
                             f"cannot serve candles from {format_ms(start_ms)} (start_ms={start_ms})")
        if end_ms < start_ms:
            raise ValueError(f"end_ms {end_ms} is before start_ms {start_ms}")
        # a candle is closed once open + step <= now, i.e. its open time is < now - step + 1
        end_ms = min(end_ms, self._clock() - step + 1)
        first = -(-(start_ms - origin) // step)  # first grid index with open >= start
        stop = -(-(end_ms - origin) // step)  # first grid index with open >= end
        if stop <= first:
            return empty_candles(symbol, timeframe)
        path = self._paths.get((symbol, step))
        if path is None:
            path = self._paths[(symbol, step)] = _Path(self.config, symbol, step, self._max_cached_blocks)
        size = self.config.block_steps
        blocks = [path.block(b) for b in range(first // size, (stop - 1) // size + 1)]
        offset = first - (first // size) * size
        columns = {
            name: np.concatenate([getattr(block, name) for block in blocks])[offset:offset + stop - first]
            for name in CANDLE_COLUMNS[1:]
        }
        timestamps = origin + np.arange(first, stop, dtype=np.int64) * step
        frame = pd.DataFrame({"timestamp": timestamps, **columns})
        return with_meta(frame, symbol, timeframe)
