"""Configuration shared by every stage: the time split and the compute profile.

Both are chosen in one place (here) and passed down; stages never hard-code dates or sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from fin_ia_models.utils.config_io import ConfigDict


def _ms(date: str) -> int:
    return int(pd.Timestamp(date, tz="UTC").value // 1_000_000)


@dataclass(frozen=True)
class TimeSplit(ConfigDict):
    """Train / validation / test ranges (UTC dates, end inclusive) plus an embargo between them.

    The embargo drops candles right after a boundary from the later set so that windows straddling the boundary
    (a 16-candle patch, a 24 h label horizon) cannot leak training information into evaluation.
    """

    train_start: str = "2017-08-17"  # first BTC/USDT candle on Binance spot
    train_end: str = "2023-09-30"  # training data up to here (inclusive)
    val_start: str = "2023-10-01"  # validation: last quarter of 2023, used for early stopping / model selection
    val_end: str = "2023-12-31"  # train + val together form the "up to 2023-12-31" window of the design
    test_start: str = "2024-01-01"  # held-out test year; never used for fitting or tuning
    test_end: str = "2024-12-31"
    embargo_hours: int = 24  # dropped at the start of val and test; >= the longest label horizon (next 24 h)

    def __post_init__(self) -> None:
        bounds = [self.train_start, self.train_end, self.val_start, self.val_end, self.test_start, self.test_end]
        stamps = [pd.Timestamp(b, tz="UTC") for b in bounds]
        if any(later < earlier for earlier, later in zip(stamps, stamps[1:])):
            raise ValueError(f"time split bounds must be non-decreasing: {bounds}")
        if self.embargo_hours < 0:
            raise ValueError(f"embargo_hours must be >= 0, got {self.embargo_hours}")

    def range_ms(self, name: str) -> tuple[int, int]:
        """``[start, end)`` in ms of ``train``, ``val`` or ``test``; val/test start after the embargo."""
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}: expected train, val or test")
        start, end = getattr(self, f"{name}_start"), getattr(self, f"{name}_end")
        start_ms = _ms(start) + (self.embargo_hours * 3_600_000 if name != "train" else 0)
        return start_ms, _ms(end) + 86_400_000  # end date inclusive → exclusive bound at next midnight


# demo: small models, many passes over the four-month demo window, CPU minutes inside ``make demo``;
# cpu:  the same small models over the full history (train <= 2023, test 2024): what the CPU result reports run;
# full: H100 scale over the full history.
PROFILES = ("demo", "cpu", "full")


def check_profile(profile: str) -> str:
    """Validate a profile name (see ``PROFILES``)."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: expected one of {', '.join(PROFILES)}")
    return profile


def demo_time_split() -> TimeSplit:
    """The ``demo`` profile's split: four months of candles, so ``make demo`` materializes ~250 partitions and trains
    in minutes on a CPU. Same shape as the full split (train, val, test, embargo), just shorter."""
    return TimeSplit(
        train_start="2024-09-01", train_end="2024-10-31", val_start="2024-11-01", val_end="2024-11-30",
        test_start="2024-12-01", test_end="2024-12-31", embargo_hours=24,
    )


def time_split_for(profile: str) -> TimeSplit:
    """The time split every stage uses under ``profile`` (``cpu``/``full``: train ≤ 2023-12-31, test = 2024)."""
    return demo_time_split() if check_profile(profile) == "demo" else TimeSplit()
