"""Plausibility limits of candle values: sanity bounds that catch garbage a consistency rule cannot see.

A price of 1e308, a wick from 4.2e9 to 4.2e-5 or a row shifted by a unit error is finite, positive and OHLC-consistent,
so the structural rules of ``validation.py`` accept it. These limits reject such values by name
(``CandleValidationError.rule``):

  price_range   min_price <= open/high/low/close <= max_price
  volume_range  volume <= max_volume
  wick_ratio    high / low <= max_high_low_ratio within one candle
  close_jump    close_t / close_(t-1) and its inverse <= max_close_jump between consecutive rows

The defaults are deliberately loose: they are orders of magnitude above anything a listed market has printed (the
shared BTC/ETH/SOL/BNB files, 2017-2024, peak at high/low = 1.82 and a close-to-close move of 1.38x), so they never
reject a real crash, only values no market produces. A research setup with a known market can tighten them
(``PlausibilityLimits(max_close_jump=3.0)``) or loosen them for an exotic quote currency (``math.inf`` switches
a maximum off); every reader and writer of candles takes a ``limits`` argument.
"""

from __future__ import annotations

from dataclasses import dataclass

from fin_ia_models.utils.config_io import ConfigDict


@dataclass(frozen=True)
class PlausibilityLimits(ConfigDict):
    """Bounds on candle values; see the module docstring for the rule each one drives."""

    # Lowest believable price. Meme tokens quoted in BTC sit near 1e-9..1e-10; below 1e-12 is garbage.
    min_price: float = 1e-12
    # Highest believable price. BTC quoted in Indonesian rupiah is ~1e9; 1e12 leaves room and still rejects 1e308.
    max_price: float = 1e12
    # Highest believable volume of one candle, in base units. Meme tokens trade trillions (1e12-1e13) of units a
    # day; 1e18 leaves five orders of magnitude.
    max_volume: float = 1e18
    # Largest high/low within one candle. Real majors stay below 2 (1.82 at most in the shared files); 1000x in one
    # candle is not a price path but a broken value (the 4.2e9 -> 4.2e-5 wick is 1e14).
    max_high_low_ratio: float = 1e3
    # Largest close-to-close move between consecutive rows, up or down (a ratio). Real majors stay below 1.4 per
    # candle; 100x is a unit or decimal error in a row, not a market move.
    max_close_jump: float = 1e2

    def __post_init__(self) -> None:
        if not 0 < self.min_price < float("inf"):
            raise ValueError(f"min_price must be a finite number > 0, got {self.min_price}")
        if not self.max_price > self.min_price:
            raise ValueError(f"max_price must be > min_price: {self.max_price} <= {self.min_price}")
        if not self.max_volume > 0:
            raise ValueError(f"max_volume must be > 0, got {self.max_volume}")
        for name in ("max_high_low_ratio", "max_close_jump"):
            value = getattr(self, name)
            if not value > 1.0:
                raise ValueError(f"{name} must be > 1 (a ratio; 1 allows no movement at all), got {value}")


#: what every reader and writer uses unless told otherwise
DEFAULT_LIMITS = PlausibilityLimits()
