"""Retry an async call with capped exponential backoff and jitter.

The schedule is the one described in AWS's "Exponential Backoff and Jitter" (Brooker, 2015): the k-th retry waits
``min(cap, base * 2**k)`` scaled up by a random fraction of at most ``jitter``, so concurrent clients that failed
together do not retry in lock-step. Jitter only ever *adds* time (``delay ∈ [raw, raw * (1 + jitter)]``, capped), so
with ``jitter < 1`` successive delays strictly grow until the cap: a caller that looks at the waits can tell the
backoff is working. Sleeping is injected so tests never sleep for real.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

#: ``async def sleep(seconds)``; ``asyncio.sleep`` in production, a recorder or no-op in tests
AsyncSleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class BackoffPolicy:
    """How often and how long to wait before giving up on a failing call."""

    max_retries: int = 5  # retries after the first attempt (6 attempts in all); ~15 s of waiting at the defaults
    base_s: float = 0.5  # wait before the first retry; doubles on every further retry
    cap_s: float = 30.0  # no single wait is longer than this, however many retries came before
    jitter: float = 0.25  # up to this fraction of the wait is added at random, to de-synchronise concurrent retries

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        if self.base_s <= 0:
            raise ValueError(f"base_s must be > 0, got {self.base_s}")
        if self.cap_s < self.base_s:
            raise ValueError(f"cap_s must be >= base_s: {self.cap_s} < {self.base_s}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1) so waits keep growing, got {self.jitter}")

    def delay(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        if retry < 0:
            raise ValueError(f"retry must be >= 0, got {retry}")
        raw = self.base_s * 2.0**retry
        return min(self.cap_s, raw * (1.0 + self.jitter * rng.random()))


class RetriesExhausted(Exception):
    """Every attempt failed with a retryable error; ``last_error`` is the final one."""

    def __init__(self, attempts: int, last_error: BaseException) -> None:
        super().__init__(f"{attempts} attempts failed; last error: {type(last_error).__name__}: {last_error}")
        self.attempts = attempts
        self.last_error = last_error


async def retry_async(
    call: Callable[[], Awaitable[T]],
    *,
    policy: BackoffPolicy,
    retryable: tuple[type[BaseException], ...],
    sleep: AsyncSleep,
    rng: random.Random,
    logger: logging.Logger,
    what: str,
) -> T:
    """Await ``call()`` until it succeeds, retrying errors of the ``retryable`` types with backoff.

    Errors of any other type propagate at once (a bad symbol does not get better by asking again). After
    ``policy.max_retries`` retries the last retryable error is wrapped in ``RetriesExhausted``. ``what`` names the
    call in the log lines.
    """
    for retry in range(policy.max_retries + 1):
        try:
            return await call()
        except retryable as error:
            if retry == policy.max_retries:
                raise RetriesExhausted(retry + 1, error) from error
            wait = policy.delay(retry, rng)
            logger.warning(
                "%s failed (%s: %s); retry %d/%d in %.2f s",
                what, type(error).__name__, error, retry + 1, policy.max_retries, wait,
            )
            await sleep(wait)
    raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover
