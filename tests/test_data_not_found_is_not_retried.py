"""A missing candle file (files source, unknown symbol) fails the ``ohlcv_candles`` step at once, naming the market,
instead of being retried twice 60 s apart as if transient (the asset retries ``MarketDataError`` only, and
``MarketNotFoundError`` is deliberately not one)."""

from __future__ import annotations

import time

import dagster as dg

from fin_ia_models.data.sources.base import MarketDataError, MarketNotFoundError
from fin_ia_pipeline.definitions import build_definitions
from fin_ia_pipeline.market_data.partitions import candle_partition_key
from fin_ia_pipeline.settings import PipelineSettings


def error_chain(error) -> list[str]:
    names = []
    while error is not None:
        names.append(error.cls_name)
        error = error.cause
    return names


def test_unknown_symbol_fails_at_once_without_retries(tmp_path):
    assert not issubclass(MarketNotFoundError, MarketDataError)
    (tmp_path / "data").mkdir()
    settings = PipelineSettings(home=str(tmp_path / "home"), source="files", data_dir=str(tmp_path / "data"),
                                symbols=("DOGE/USDT",))
    job = build_definitions(settings).resolve_job_def("refresh_candles")
    started = time.monotonic()
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(partition_key=candle_partition_key("DOGE/USDT", "2024-01-01"),
                                        instance=instance, raise_on_error=False)
    elapsed = time.monotonic() - started
    steps = [e.event_type_value for e in result.all_events if e.event_type_value.startswith("STEP_")]
    assert "STEP_UP_FOR_RETRY" not in steps and steps[-1] == "STEP_FAILURE", steps
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE").event_specific_data.error
    assert "MarketNotFoundError" in error_chain(failure) and "RetryRequested" not in error_chain(failure)
    assert "no candle files for DOGE/USDT 1h" in str(failure)
    assert elapsed < 60, f"took {elapsed:.0f} s: a retry wait crept back in"
