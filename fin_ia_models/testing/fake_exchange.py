"""A fake ccxt exchange: a known candle history, served through the ``ccxt.async_support`` calls a source uses,
misbehaving on a seeded schedule.

It stands in for a live exchange in tests, the backfill benchmark and UI tests. It speaks the subset of the ccxt
async API that ``CcxtSource`` needs (``id``, ``rateLimit``, ``milliseconds()``, ``fetch_ohlcv``, ``close``) and
behaves like Binance's klines endpoint: candles with open time ``>= since``, at most ``min(limit, page_cap)`` of
them, and the still-open candle (with partial values) when a page reaches "now". Each request can be made to fail
(every retryable ccxt error an exchange raises: timeouts, rate limits, DDoS protection, maintenance, network), to
answer an empty page although candles exist, or to return a damaged page (overlapping, duplicated, shuffled,
truncated, with the open candle) — see ``Fault`` — in any combination, from an explicit list or a seeded random plan.
It records what it was asked and when, so tests can check pacing and concurrency.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass

import ccxt
import numpy as np
import pandas as pd

from fin_ia_models.data.schema import CANDLE_COLUMNS, timeframe_ms, to_candle_frame


class Fault(enum.Enum):
    """One way a single request can go wrong."""

    REQUEST_TIMEOUT = "request_timeout"  # raise ccxt.RequestTimeout
    RATE_LIMIT = "rate_limit"  # raise ccxt.RateLimitExceeded
    NOT_AVAILABLE = "not_available"  # raise ccxt.ExchangeNotAvailable
    NETWORK_ERROR = "network_error"  # raise ccxt.NetworkError
    DDOS_PROTECTION = "ddos_protection"  # raise ccxt.DDoSProtection (how ccxt maps Binance's HTTP 418 ban warning)
    ON_MAINTENANCE = "on_maintenance"  # raise ccxt.OnMaintenance (exchange-wide maintenance window)
    EMPTY_PAGE = "empty_page"  # answer [] although candles exist at/after since (a transient empty answer)
    OVERLAP = "overlap"  # the page starts a few candles before ``since``
    DUPLICATES = "duplicates"  # some rows appear twice
    OUT_OF_ORDER = "out_of_order"  # rows are shuffled
    TRUNCATE = "truncate"  # fewer rows than asked although more exist
    OPEN_CANDLE = "open_candle"  # the still-open candle is appended even where the page stops short of it


#: the error each failing fault raises; checked in this order when a request has several
ERROR_FAULTS: dict[Fault, type[ccxt.BaseError]] = {
    Fault.REQUEST_TIMEOUT: ccxt.RequestTimeout,
    Fault.RATE_LIMIT: ccxt.RateLimitExceeded,
    Fault.NOT_AVAILABLE: ccxt.ExchangeNotAvailable,
    Fault.NETWORK_ERROR: ccxt.NetworkError,
    Fault.DDOS_PROTECTION: ccxt.DDoSProtection,
    Fault.ON_MAINTENANCE: ccxt.OnMaintenance,
}
#: faults that withhold the answer (an error, or an empty page that looks like "no more data"): a source can only
#: survive them by asking again, so a random plan lets at most ``max_errors_in_a_row`` of them hit one request
WITHHOLDING_FAULTS: tuple[Fault, ...] = (*ERROR_FAULTS, Fault.EMPTY_PAGE)
#: faults that damage a page but keep every candle it should hold: a source must survive them on every request
PAGE_FAULTS: tuple[Fault, ...] = tuple(f for f in Fault if f not in WITHHOLDING_FAULTS)


@dataclass(frozen=True)
class FakeRequest:
    """One ``fetch_ohlcv`` call as the fake received it."""

    index: int  # 0-based arrival order
    symbol: str
    timeframe: str
    since: int | None
    limit: int | None
    attempt: int  # earlier requests with the same (symbol, timeframe, since, limit): 0 first time, 1 first retry, ...
    started_s: float  # time.monotonic() on arrival


#: decides the faults of one request; must be deterministic for reproducible runs
FaultPlan = Callable[[FakeRequest], Collection[Fault]]


def scripted_faults(schedule: Iterable[Collection[Fault]]) -> FaultPlan:
    """Apply ``schedule[i]`` to the i-th request received; no faults once the schedule runs out."""
    iterator = iter(schedule)

    def plan(request: FakeRequest) -> Collection[Fault]:
        return frozenset(next(iterator, ()))

    return plan


@dataclass(frozen=True)
class RandomFaultPlan:
    """Seeded random faults, drawn per request key, so the plan does not depend on the order requests arrive in."""

    seed: int  # same seed → same faults for the same requests
    error_rate: float = 0.3  # chance that an attempt is withheld: a retryable error or an empty page
    page_fault_rate: float = 0.3  # independent chance of each page fault (overlap, duplicates, ...)
    max_errors_in_a_row: int = 5  # attempts ``>=`` this never fail, so a source with that many retries must succeed

    def __post_init__(self) -> None:
        for name in ("error_rate", "page_fault_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.max_errors_in_a_row < 0:
            raise ValueError(f"max_errors_in_a_row must be >= 0, got {self.max_errors_in_a_row}")

    def __call__(self, request: FakeRequest) -> Collection[Fault]:
        rng = _request_rng(self.seed, request)
        faults = {f for f in PAGE_FAULTS if rng.random() < self.page_fault_rate}
        if request.attempt < self.max_errors_in_a_row and rng.random() < self.error_rate:
            faults.add(rng.choice(WITHHOLDING_FAULTS))
        return frozenset(faults)


def _request_rng(seed: int, request: FakeRequest) -> random.Random:
    # string seeds hash with sha512: stable across processes, unlike hash()
    key = f"{seed}|{request.symbol}|{request.timeframe}|{request.since}|{request.limit}|{request.attempt}"
    return random.Random(key)


def synthetic_history(
    symbol: str, timeframe: str, start_ms: int, n_slots: int, *, seed: int = 0, n_gaps: int | None = None
) -> pd.DataFrame:
    """A deterministic random-walk candle frame over ``n_slots`` grid slots with maintenance-like gaps.

    ``n_gaps`` runs of 1-6 missing candles are cut out (default: one per ~2,000 slots); first and last slot stay.
    """
    if n_slots < 1:
        raise ValueError(f"n_slots must be >= 1, got {n_slots}")
    tf = timeframe_ms(timeframe)
    rng = np.random.default_rng(seed)
    timestamps = start_ms + tf * np.arange(n_slots, dtype=np.int64)  # (N,)
    close = 20_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.006, n_slots)))  # (N,)
    open_ = np.concatenate([[close[0] * (1 - rng.normal(0, 0.006))], close[:-1]])  # (N,) open = previous close
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.002, n_slots)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.002, n_slots)))
    volume = rng.lognormal(3.0, 0.5, n_slots)
    keep = np.ones(n_slots, dtype=bool)
    gaps = max(0, n_slots // 2000) if n_gaps is None else n_gaps
    for _ in range(gaps if n_slots > 2 else 0):
        first = int(rng.integers(1, n_slots - 1))
        keep[first : min(first + int(rng.integers(1, 7)), n_slots - 1)] = False
    rows = np.column_stack([timestamps, open_, high, low, close, volume])[keep]  # (N - missing, 6)
    return to_candle_frame(rows, symbol, timeframe)


class FakeExchange:
    """A ccxt-like async exchange serving known candles; see the module docstring."""

    def __init__(
        self,
        frames: Iterable[pd.DataFrame],
        *,
        exchange_id: str = "fake",
        now_ms: int | None = None,
        rate_limit_ms: float = 50.0,
        latency_s: float = 0.0,
        page_cap: int = 1000,
        faults: FaultPlan | Iterable[Collection[Fault]] | None = None,
        seed: int = 0,
    ) -> None:
        """``frames``: candle frames with ``symbol``/``timeframe`` attrs, the full history (closed and future).

        ``now_ms`` is the exchange clock (default: just after the last candle, so everything is closed); candles
        after it are not served and the one containing it is served open. ``seed`` drives the sizes of damage
        (how much is truncated, which rows are duplicated).
        """
        if page_cap < 1:
            raise ValueError(f"page_cap must be >= 1, got {page_cap}")
        if latency_s < 0 or rate_limit_ms < 0:
            raise ValueError(f"latency_s and rate_limit_ms must be >= 0, got {latency_s}, {rate_limit_ms}")
        self.id = exchange_id
        self.rateLimit = rate_limit_ms  # ms between request starts, as ccxt names it
        self.latency_s = latency_s
        self.page_cap = page_cap
        self.seed = seed
        self._histories: dict[tuple[str, str], np.ndarray] = {}
        for frame in frames:
            key = (frame.attrs["symbol"], frame.attrs["timeframe"])
            array = np.column_stack([frame[c].to_numpy(dtype=np.float64) for c in CANDLE_COLUMNS])  # (N, 6)
            if len(array) > 1 and not np.all(np.diff(array[:, 0]) > 0):
                raise ValueError(f"history for {key} must be sorted and unique by timestamp")
            self._histories[key] = array
        if not self._histories:
            raise ValueError("FakeExchange needs at least one candle frame")
        self.now_ms = now_ms if now_ms is not None else max(
            int(a[-1, 0]) + timeframe_ms(tf) for (_, tf), a in self._histories.items() if len(a)
        )
        if faults is None:
            self._plan: FaultPlan = scripted_faults(())
        elif callable(faults):
            self._plan = faults
        else:
            self._plan = scripted_faults(faults)
        self.requests: list[FakeRequest] = []
        self.faults_applied: list[frozenset[Fault]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.close_calls = 0
        self._attempts: Counter[tuple] = Counter()

    # --- ccxt surface -------------------------------------------------------------------------------------------
    def milliseconds(self) -> int:
        return int(self.now_ms)

    async def fetch_ohlcv(
        self, symbol: str, timeframe: str = "1m", since: int | None = None, limit: int | None = None, params=None
    ) -> list[list[float]]:
        key = (symbol, timeframe, since, limit)
        request = FakeRequest(
            len(self.requests), symbol, timeframe, since, limit, self._attempts[key], time.monotonic()
        )
        self._attempts[key] += 1
        self.requests.append(request)
        faults = frozenset(self._plan(request))
        self.faults_applied.append(faults)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            # always yield, so concurrent callers interleave even at zero latency
            await asyncio.sleep(self.latency_s)
            if not any(s == symbol for s, _ in self._histories):
                raise ccxt.BadSymbol(f"{self.id} does not have market symbol {symbol}")
            if (symbol, timeframe) not in self._histories:
                raise ccxt.BadRequest(f"{self.id} has no {timeframe} candles for {symbol}")
            for fault, error in ERROR_FAULTS.items():
                if fault in faults:
                    raise error(f"{self.id} injected {fault.value} (request {request.index})")
            if Fault.EMPTY_PAGE in faults:
                return []
            return self._page(request, faults)
        finally:
            self.in_flight -= 1

    async def close(self) -> None:
        self.close_calls += 1

    # --- bookkeeping for tests ----------------------------------------------------------------------------------
    @property
    def request_count(self) -> int:
        return len(self.requests)

    @property
    def request_starts(self) -> list[float]:
        """``time.monotonic()`` of each request's arrival, in arrival order."""
        return [r.started_s for r in self.requests]

    def closed_candles(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> list[list[float]]:
        """The ground truth: closed candles with open time in ``[start_ms, end_ms)``."""
        array = self._histories[(symbol, timeframe)]
        tf = timeframe_ms(timeframe)
        ts = array[:, 0]
        mask = (ts >= start_ms) & (ts < end_ms) & (ts + tf <= self.now_ms)
        return array[mask].tolist()

    # --- serving ------------------------------------------------------------------------------------------------
    def _visible(self, symbol: str, timeframe: str) -> np.ndarray:
        """History up to now, the last row being the open candle (partial values) when now falls inside one."""
        array = self._histories[(symbol, timeframe)]
        visible = array[array[:, 0] <= self.now_ms].copy()  # (V, 6)
        if len(visible) and visible[-1, 0] + timeframe_ms(timeframe) > self.now_ms:
            o, _, _, _, c, v = visible[-1]
            partial_close = o + 0.5 * (c - o)
            visible[-1, 2:] = [max(o, partial_close), min(o, partial_close), partial_close, 0.5 * v]
        return visible

    def _page(self, request: FakeRequest, faults: frozenset[Fault]) -> list[list[float]]:
        visible = self._visible(request.symbol, request.timeframe)
        tf = timeframe_ms(request.timeframe)
        cap = self.page_cap if request.limit is None else max(1, min(int(request.limit), self.page_cap))
        rng = _request_rng(self.seed, request)
        if request.since is None:
            first = max(0, len(visible) - cap)
        else:
            first = int(np.searchsorted(visible[:, 0], request.since, side="left"))
        shift = 0
        if Fault.OVERLAP in faults and first > 0 and cap > 1:
            shift = rng.randint(1, min(cap - 1, first))
        page = visible[first - shift : first - shift + cap]  # (P, 6)
        if Fault.TRUNCATE in faults and len(page) - shift >= 2:
            # keep at least one candle at or after since: a page of only older candles would read as "no more data"
            page = page[: rng.randint(shift + 1, len(page) - 1)]
        rows = [[int(r[0]), *map(float, r[1:])] for r in page]
        is_open = len(visible) and visible[-1, 0] + tf > self.now_ms
        if Fault.OPEN_CANDLE in faults and is_open and (request.since is None or visible[-1, 0] >= request.since):
            open_row = [int(visible[-1, 0]), *map(float, visible[-1, 1:])]
            if not rows or rows[-1][0] != open_row[0]:
                rows.append(open_row)
        if Fault.DUPLICATES in faults and rows:
            for _ in range(rng.randint(1, min(3, len(rows)))):
                at = rng.randrange(len(rows))
                rows.insert(at, list(rows[at]))
        if Fault.OUT_OF_ORDER in faults:
            rng.shuffle(rows)
        return rows


def count_faults(exchange: FakeExchange) -> Counter[Fault]:
    """How often each fault was applied, for test diagnostics."""
    return Counter(f for applied in exchange.faults_applied for f in applied)

