"""Closed candles from a live exchange through ccxt's asyncio API (public endpoints, no API key).

Paging follows freqtrade's batched async download (``freqtrade/exchange/exchange.py``,
``_async_get_historic_ohlcv``): the range is split into windows of ``page_limit`` candles and the windows are
fetched concurrently, while request *starts* are spaced by the exchange's ``rateLimit`` so concurrency hides latency
without breaking the exchange's pacing rule. Inside a window we keep paging from ``last + timeframe`` while the
exchange answered short (servers cap ``limit``; gaps shift candles), so nothing is missed. Failures are retried with
capped exponential backoff and jitter (see ``retry.py``). Pages are cleaned, not trusted: rows before the asked
``since`` (overlap), past the window, duplicated, out of order, or still open are handled here; malformed rows are
an error. A page with no candle at or after ``since`` (empty, or only older rows) would end the window as "no more
data", so it is asked again under the same retry policy and only taken as empty once the retries are spent (a
market with no candles there, e.g. delisted, costs one backoff sequence). A symbol the exchange does not list raises
``MarketNotFoundError`` (permanent); every other failure ``MarketDataError``. Value checks (OHLC consistency, gaps)
belong to the project's validator, not to this module.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from numbers import Real
from typing import Any, NoReturn, TypeVar

import ccxt
import numpy as np
import pandas as pd

from fin_ia_models.data.schema import empty_candles, format_ms, timeframe_ms, to_candle_frame
from fin_ia_models.data.sources.base import MarketDataError, MarketNotFoundError
from fin_ia_models.data.sources.retry import AsyncSleep, BackoffPolicy, RetriesExhausted, retry_async

logger = logging.getLogger("fin_ia.data.ccxt")

T = TypeVar("T")

# In ccxt 4.5 RequestTimeout, RateLimitExceeded and ExchangeNotAvailable (and DDoSProtection, OnMaintenance) all
# derive from NetworkError; they are named anyway so a future re-parenting in ccxt cannot silently stop retrying them.
RETRYABLE_ERRORS: tuple[type[ccxt.BaseError], ...] = (
    ccxt.NetworkError,
    ccxt.RequestTimeout,
    ccxt.RateLimitExceeded,
    ccxt.ExchangeNotAvailable,
)


class EmptyPage(Exception):
    """A page held no candle at or after the asked ``since``; raised inside the retry loop so it is asked again."""

    def __init__(self, page: list) -> None:
        super().__init__(f"page of {len(page)} rows holds no candle at or after since")
        self.page = page


def _nothing_at_or_after(page: Any, since: int) -> bool:
    """True for an empty page or one holding only candles before ``since``; a malformed page is left to ``clip``."""
    if not isinstance(page, (list, tuple)):
        return False
    for row in page:
        try:
            if float(row[0]) >= since:
                return False
        except (TypeError, ValueError, IndexError, KeyError):
            return False
    return True


#: builds a ccxt-like async exchange (``ccxt.async_support.<id>`` or a fake); called once per fetch
ExchangeFactory = Callable[[], Any]
Row = list[float]


@dataclass(frozen=True)
class CcxtSourceConfig:
    """How to talk to the exchange."""

    exchange_id: str = "binance"  # ccxt exchange id; also the source's ``name``
    page_limit: int = 1000  # candles asked per request; Binance's maximum for klines
    max_concurrent: int = 8  # windows in flight at once; pacing is still set by rateLimit, this only bounds memory
    max_retries: int = 5  # retries of one request on network-type errors before giving up (6 attempts in all)
    backoff_base_s: float = 0.5  # first retry waits this long, doubling each time (0.5, 1, 2, 4, 8 s)
    backoff_cap_s: float = 30.0  # no single wait longer than this
    jitter: float = 0.25  # up to this fraction added to each wait at random, so parallel windows do not retry in step

    def __post_init__(self) -> None:
        if self.page_limit < 1:
            raise ValueError(f"page_limit must be >= 1, got {self.page_limit}")
        if self.max_concurrent < 1:
            raise ValueError(f"max_concurrent must be >= 1, got {self.max_concurrent}")
        self.backoff()  # validates the retry fields

    def backoff(self) -> BackoffPolicy:
        return BackoffPolicy(self.max_retries, self.backoff_base_s, self.backoff_cap_s, self.jitter)


def default_exchange_factory(exchange_id: str) -> ExchangeFactory:
    """A factory for ``ccxt.async_support.<exchange_id>`` with ccxt's own throttling on; imports ccxt lazily."""

    def make() -> Any:
        import ccxt.async_support as ccxt_async

        exchange_class = getattr(ccxt_async, exchange_id, None)
        if exchange_class is None or exchange_id not in ccxt_async.exchanges:
            raise ValueError(f"unknown ccxt exchange id {exchange_id!r}")
        return exchange_class({"enableRateLimit": True})

    return make


class StartSpacer:
    """Spaces the *starts* of async requests by at least ``interval_s``, however many run concurrently.

    Callers queue on a lock; each one sleeps until the previous start + ``interval_s`` and stamps its own start
    with the clock *after* waking, so a caller that woke late pushes the next one back instead of letting two
    requests start closer together than the exchange allows.
    """

    def __init__(self, interval_s: float, sleep: AsyncSleep, clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s < 0:
            raise ValueError(f"interval_s must be >= 0, got {interval_s}")
        self.interval_s = interval_s
        self._sleep = sleep
        self._clock = clock
        self._lock = asyncio.Lock()
        self._next_free = -math.inf

    async def wait(self) -> None:
        async with self._lock:
            now = self._clock()
            if now < self._next_free:
                await self._sleep(self._next_free - now)
            self._next_free = self._clock() + self.interval_s


class CcxtSource:
    """A ``MarketSource`` backed by a ccxt exchange; ``fetch`` is synchronous, ``fetch_async`` is the core."""

    def __init__(
        self,
        config: CcxtSourceConfig | None = None,
        *,
        exchange_factory: ExchangeFactory | None = None,
        sleep: AsyncSleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        """``exchange_factory`` replaces the real exchange (tests pass a fake); ``sleep`` is used for every wait
        (backoff and pacing), so a no-op makes tests instant; ``rng`` drives the jitter."""
        self.config = config or CcxtSourceConfig()
        self.name = self.config.exchange_id
        self._factory = exchange_factory or default_exchange_factory(self.config.exchange_id)
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    # --- synchronous API ----------------------------------------------------------------------------------------
    def fetch(self, symbol: str, timeframe: str, start_ms: int, end_ms: int) -> pd.DataFrame:
        """Closed candles with open time in ``[start_ms, min(end_ms, now))``, sorted and unique."""
        return _run_sync(lambda: self.fetch_async(symbol, timeframe, start_ms, end_ms))

    def fetch_since(self, symbol: str, timeframe: str, since_ms: int, end_ms: int | None = None) -> pd.DataFrame:
        """Incremental refresh: closed candles from ``since_ms`` (usually last stored + timeframe) up to now."""
        return _run_sync(lambda: self.fetch_async(symbol, timeframe, since_ms, end_ms))

    # --- async core ---------------------------------------------------------------------------------------------
    async def fetch_async(self, symbol: str, timeframe: str, start_ms: int, end_ms: int | None) -> pd.DataFrame:
        """``fetch`` for callers already inside an event loop; ``end_ms=None`` means "up to now"."""
        tf = timeframe_ms(timeframe)
        if end_ms is not None and end_ms < start_ms:
            raise ValueError(
                f"end_ms must be >= start_ms: {end_ms} ({format_ms(end_ms)}) < {start_ms} ({format_ms(start_ms)})"
            )
        exchange = self._factory()
        try:
            # one clock reading per fetch: a candle is "closed" against the same instant everywhere in this call
            now = int(exchange.milliseconds())
            end = now if end_ms is None else min(int(end_ms), now)
            if end <= start_ms:
                return empty_candles(symbol, timeframe)
            job = _FetchJob(self, exchange, symbol, timeframe, tf, now)
            span = self.config.page_limit * tf
            windows = [(s, min(s + span, end)) for s in range(int(start_ms), end, span)]
            logger.debug("%s %s %s: %d windows from %s", job.exchange_id, symbol, timeframe, len(windows), start_ms)
            pages = await _gather_first_error([job.window(w_start, w_end) for w_start, w_end in windows])
        finally:
            await exchange.close()
        return assemble_candles([row for page in pages for row in page], symbol, timeframe)


class _FetchJob:
    """State shared by the windows of one ``fetch``: the exchange, its pacing and the concurrency bound."""

    def __init__(self, source: CcxtSource, exchange: Any, symbol: str, timeframe: str, tf: int, now: int) -> None:
        self.source, self.exchange = source, exchange
        self.exchange_id = str(getattr(exchange, "id", source.name))
        self.symbol, self.timeframe, self.tf, self.now = symbol, timeframe, tf, now
        self.spacer = StartSpacer(float(exchange.rateLimit) / 1000.0, source._sleep, source._clock)
        self.semaphore = asyncio.Semaphore(source.config.max_concurrent)

    async def window(self, w_start: int, w_end: int) -> list[Row]:
        """All closed candles in ``[w_start, w_end)``, paging on while the exchange answers short."""
        rows: list[Row] = []
        since = w_start
        async with self.semaphore:
            while since < w_end:
                limit = min(self.source.config.page_limit, math.ceil((w_end - since) / self.tf))
                page = await self.request(since, limit)
                in_window, served_past_end = self.clip(page, since, w_end)
                rows.extend(in_window)
                # done when the exchange served beyond the window (so nothing in it is left) or had nothing
                # closed at or after since; otherwise the page was short: continue after its last candle
                if served_past_end or not in_window:
                    break
                since = max(int(r[0]) for r in in_window) + self.tf
        return rows

    async def request(self, since: int, limit: int) -> list:
        what = (
            f"{self.exchange_id} fetch_ohlcv({self.symbol}, {self.timeframe}, "
            f"since={since} ({format_ms(since)}), limit={limit})"
        )

        async def attempt() -> list:
            await self.spacer.wait()
            page = await self.exchange.fetch_ohlcv(self.symbol, self.timeframe, since=since, limit=limit)
            if _nothing_at_or_after(page, since):
                raise EmptyPage(page)
            return page

        try:
            return await retry_async(
                attempt, policy=self.source.config.backoff(), retryable=(*RETRYABLE_ERRORS, EmptyPage),
                sleep=self.source._sleep, rng=self.source._rng, logger=logger, what=what,
            )
        except RetriesExhausted as exhausted:
            error = exhausted.last_error
            if isinstance(error, EmptyPage):
                logger.warning("%s: no candle at or after since in %d answers; taking the range as empty",
                               what, exhausted.attempts)
                return error.page
            raise MarketDataError(
                f"{what} failed after {exhausted.attempts} attempts; last error: {type(error).__name__}: {error}"
            ) from error
        except ccxt.BadSymbol as error:
            raise MarketNotFoundError(f"{what} failed with a non-retryable {type(error).__name__}: {error}") from error
        except ccxt.BaseError as error:
            raise MarketDataError(f"{what} failed with a non-retryable {type(error).__name__}: {error}") from error

    def clip(self, page: Sequence, since: int, w_end: int) -> tuple[list[Row], bool]:
        """Closed rows of ``page`` in ``[since, w_end)``, typed, and whether the page reached ``w_end``."""
        if not isinstance(page, (list, tuple)):
            raise MarketDataError(f"{self.exchange_id} returned {type(page).__name__} instead of a list of OHLCV rows")
        kept: list[Row] = []
        served_past_end = False
        for row in page:
            typed = self._typed(row, since)
            ts = int(typed[0])
            if ts + self.tf > self.now:
                continue  # still open (or from the future): never returned
            if ts >= w_end:
                served_past_end = True
            elif ts >= since:
                kept.append(typed)
        return kept, served_past_end

    def _typed(self, row: Any, since: int) -> Row:
        if not isinstance(row, (list, tuple)) or len(row) != 6:
            self._malformed(row, since, "expected [timestamp, open, high, low, close, volume]")
        ts = row[0]
        if isinstance(ts, bool) or not isinstance(ts, Real) or not float(ts).is_integer():
            self._malformed(row, since, "timestamp must be integer milliseconds")
        try:
            # None (a value the exchange does not report) becomes NaN, for the validator to judge
            values = [math.nan if v is None else float(v) for v in row[1:]]
        except (TypeError, ValueError):
            self._malformed(row, since, "values must be numbers")
        return [float(ts), *values]

    def _malformed(self, row: Any, since: int, why: str) -> NoReturn:
        where = f"from {self.exchange_id} for {self.symbol} {self.timeframe} since={since} ({format_ms(since)})"
        raise MarketDataError(f"malformed OHLCV row {row!r} {where}: {why}")


def assemble_candles(rows: Sequence[Row], symbol: str, timeframe: str) -> pd.DataFrame:
    """Sort rows by open time and drop repeated rows; a timestamp served twice with different values is an error."""
    array = np.asarray(rows, dtype=np.float64).reshape(-1, 6)  # (M, 6)
    array = array[np.argsort(array[:, 0], kind="stable")]
    repeat = np.zeros(len(array), dtype=bool)
    repeat[1:] = array[1:, 0] == array[:-1, 0]
    if repeat.any():
        same = (array[1:] == array[:-1]) | (np.isnan(array[1:]) & np.isnan(array[:-1]))  # (M-1, 6)
        conflicting = repeat[1:] & ~same.all(axis=1)
        if conflicting.any():
            ts = int(array[1:][conflicting][0, 0])
            raise MarketDataError(
                f"{symbol} {timeframe}: candle {ts} ({format_ms(ts)}) was served twice with different values"
            )
    return to_candle_frame(array[~repeat], symbol, timeframe)


async def _gather_first_error(coroutines: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run coroutines concurrently; on the first failure cancel the rest and raise that failure unwrapped."""
    first_error: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coroutines]
    except BaseExceptionGroup as failed:
        first_error = failed.exceptions[0]
    if first_error is not None:
        raise first_error  # outside the except block, so the traceback does not drag the group along
    return [t.result() for t in tasks]


def _run_sync(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion from synchronous code, also when this thread already runs an event loop
    (a notebook, an async Dagster op): then it runs on a fresh loop in a worker thread."""
    result: list[T] = []

    async def main() -> None:
        # The result goes through ``result``, not the task: on the main thread ``asyncio.run`` restores its SIGINT
        # handler via ``signal.getsignal``, whose enum lookup reprs the finished main task, result included; for a
        # candle frame that is a full DataFrame repr (~3 ms, more than a whole fetch against the test fake).
        result.append(await make())

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(main())
        return result[0]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="fin-ia-ccxt") as pool:
        pool.submit(lambda: asyncio.run(main())).result()
    return result[0]
