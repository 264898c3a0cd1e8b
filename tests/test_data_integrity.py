"""Stored partitions verify themselves: content hash + symbol/timeframe/day metadata checked on every read; stale
temporaries of killed writers are removed by the next writer."""

from __future__ import annotations

import os
import random
import time
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fin_ia_models.data.schema import with_meta
from fin_ia_models.data.sources.files import CandleFileError, read_candle_file
from fin_ia_models.data.storage import (
    HASH_KEY,
    CorruptPartitionError,
    candle_content_hash,
    read_candles_parquet,
    write_candles_parquet,
)
from fin_ia_models.data.validation import CandleValidationError
from fin_ia_models.utils.atomic import STALE_AFTER_S
from tests.conftest import make_candles

DAY = "2024-01-01"  # make_candles starts at 2024-01-01 00:00 UTC


def day_frame(symbol: str = "BTC/USDT", n: int = 24, seed: int = 0) -> pd.DataFrame:
    return with_meta(make_candles(n, seed=seed), symbol, "1h")


def stored(tmp_path, symbol="BTC/USDT", seed=0):
    path = tmp_path / symbol.replace("/", "") / "1h" / f"{DAY}.parquet"
    write_candles_parquet(day_frame(symbol, seed=seed), path, day=DAY)
    return path


def test_write_records_hash_symbol_timeframe_and_day(tmp_path):
    path = stored(tmp_path)
    meta = pq.read_schema(path).metadata
    assert meta[b"symbol"] == b"BTC/USDT" and meta[b"timeframe"] == b"1h" and meta[b"day"] == DAY.encode()
    assert meta[HASH_KEY].decode() == candle_content_hash(day_frame())
    back = read_candles_parquet(path, "BTC/USDT", "1h", DAY)
    pd.testing.assert_frame_equal(back, day_frame())
    assert back.attrs == {"symbol": "BTC/USDT", "timeframe": "1h"}


def test_content_hash_depends_on_values_only():
    frame = day_frame()
    assert candle_content_hash(frame) == candle_content_hash(with_meta(frame.copy(), "ETH/USDT", "1h"))
    changed = frame.copy()
    changed.loc[5, "volume"] = np.nextafter(changed.loc[5, "volume"], np.inf)  # one ulp
    assert candle_content_hash(changed) != candle_content_hash(frame)
    assert candle_content_hash(frame.iloc[:23]) != candle_content_hash(frame)


def test_a_changed_value_is_a_hash_mismatch_naming_file_and_partition(tmp_path):
    path = stored(tmp_path)
    table = pq.read_table(path)
    close = table.column("close").to_numpy().copy()
    close[7] *= 1.0001  # still a valid candle: only the hash can tell
    pq.write_table(table.set_column(4, "close", pa.array(close)), path)
    with pytest.raises(CorruptPartitionError) as info:
        read_candles_parquet(path, "BTC/USDT", "1h", DAY)
    message = str(info.value)
    assert "content hash mismatch" in message and str(path) in message and f"BTC/USDT 1h {DAY}" in message
    assert isinstance(info.value, ValueError)
    with pytest.raises(CandleFileError, match=r"\[content_hash\]"):  # fin-ia validate on the stored file says so too
        read_candle_file(path, "BTC/USDT", "1h")


def test_a_foreign_file_in_the_partition_place_is_a_symbol_mismatch(tmp_path):
    eth = stored(tmp_path, "ETH/USDT", seed=1)
    btc_place = tmp_path / "BTCUSDT" / "1h" / f"{DAY}.parquet"
    btc_place.parent.mkdir(parents=True)
    btc_place.write_bytes(eth.read_bytes())
    with pytest.raises(CorruptPartitionError, match="symbol mismatch: the file holds 'ETH/USDT', the partition is 'BTC/USDT'"):
        read_candles_parquet(btc_place, "BTC/USDT", "1h", DAY)


def test_wrong_timeframe_and_wrong_day_are_reported(tmp_path):
    path = stored(tmp_path)
    with pytest.raises(CorruptPartitionError, match="timeframe mismatch: the file holds '1h', the partition is '4h'"):
        read_candles_parquet(path, "BTC/USDT", "4h", DAY)
    with pytest.raises(CorruptPartitionError, match="day mismatch: the file holds '2024-01-01', the partition is '2024-01-02'"):
        read_candles_parquet(path, "BTC/USDT", "1h", "2024-01-02")


def test_a_truncated_file_is_unreadable_parquet_naming_the_file(tmp_path):
    path = stored(tmp_path)
    data = path.read_bytes()
    for keep in (len(data) // 2, len(data) - 1, 7, 0):
        path.write_bytes(data[:keep])
        with pytest.raises(CorruptPartitionError) as info:
            read_candles_parquet(path, "BTC/USDT", "1h", DAY)
        assert "unreadable parquet" in str(info.value) and str(path) in str(info.value)
        assert f"BTC/USDT 1h {DAY}" in str(info.value)
        with pytest.raises(CandleFileError, match=r"\[unreadable\]"):
            read_candle_file(path, "BTC/USDT", "1h")


def test_a_missing_file_is_not_corrupt(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_candles_parquet(tmp_path / "nope.parquet", "BTC/USDT", "1h", DAY)


def test_a_parquet_file_that_is_not_a_candle_file_is_reported(tmp_path):
    path = tmp_path / "x.parquet"
    make_candles(5).to_parquet(path, index=False)  # pandas metadata only: no symbol/timeframe
    with pytest.raises(CorruptPartitionError, match="no symbol/timeframe"):
        read_candles_parquet(path)
    pq.write_table(pa.table({"timestamp": [1.5], "close": [2.0]}), path)
    with pytest.raises(CorruptPartitionError, match="schema differs"):
        read_candles_parquet(path)


def legacy(tmp_path, frame: pd.DataFrame, symbol: str = "BTC/USDT"):
    """A file as the code before content hashes wrote it: symbol and timeframe metadata only."""
    path = tmp_path / "legacy.parquet"
    table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(
        {b"symbol": symbol.encode(), b"timeframe": b"1h"})
    pq.write_table(table, path)
    return path


def test_legacy_files_without_hash_are_read_and_their_values_revalidated(tmp_path):
    path = legacy(tmp_path, day_frame())
    pd.testing.assert_frame_equal(read_candles_parquet(path, "BTC/USDT", "1h", DAY), day_frame())
    with pytest.raises(CorruptPartitionError, match="symbol mismatch"):
        read_candles_parquet(path, "ETH/USDT", "1h", DAY)
    with pytest.raises(CorruptPartitionError, match=r"day mismatch: 24 candles open outside the day 2024-01-02"):
        read_candles_parquet(path, "BTC/USDT", "1h", "2024-01-02")  # no day key: the timestamps decide
    bad = day_frame()
    bad.loc[3, "high"] = bad.loc[3, "low"] / 2
    with pytest.raises(CorruptPartitionError, match=r"legacy file \(no content hash\).*\[high_bound\]"):
        read_candles_parquet(legacy(tmp_path, bad), "BTC/USDT", "1h", DAY)


def test_writes_refuse_non_canonical_symbols_and_candles_outside_the_day(tmp_path):
    with pytest.raises(ValueError, match="invalid symbol 'btc/usdt'"):
        write_candles_parquet(day_frame("btc/usdt"), tmp_path / "a.parquet")
    two_days = with_meta(make_candles(30), "BTC/USDT", "1h")
    with pytest.raises(CandleValidationError, match=r"\[partition_day\].*6 candles open outside the day 2024-01-01"):
        write_candles_parquet(two_days, tmp_path / "b.parquet", day=DAY)
    assert not (tmp_path / "b.parquet").exists()


def test_writers_remove_stale_temporaries_of_killed_writes(tmp_path):
    folder = tmp_path / "BTCUSDT" / "1h"
    folder.mkdir(parents=True)
    old = folder / f".{DAY}.parquet.0123abcd.tmp"  # what a SIGKILL mid-write leaves behind
    fresh = folder / ".2024-01-02.parquet.4567ef01.tmp"  # a write in progress right now, in another process
    other = folder / "notes.tmp"  # not a temporary of ours (no leading dot)
    for path in (old, fresh, other):
        path.write_bytes(b"PAR1 half")
    an_hour_and_more = time.time() - STALE_AFTER_S - 60
    os.utime(old, (an_hour_and_more, an_hour_and_more))
    os.utime(other, (an_hour_and_more, an_hour_and_more))
    write_candles_parquet(day_frame(), folder / f"{DAY}.parquet", day=DAY)
    assert sorted(p.name for p in folder.iterdir()) == sorted([f"{DAY}.parquet", fresh.name, other.name])


def test_bit_flips_in_a_stored_partition_are_detected_or_harmless(tmp_path):
    """Fault injection: flip one bit at a random position of a stored day, 600 seeded trials. Each read either
    raises ``CorruptPartitionError`` (never another exception) or returns exactly the written frame. Before content
    hashes, 72 of 400 flips changed values silently."""
    path = stored(tmp_path)
    good, expected = path.read_bytes(), day_frame()
    rng = random.Random(16)
    outcome: Counter[str] = Counter()
    for _ in range(600):
        flipped = bytearray(good)
        bit = rng.randrange(len(flipped) * 8)
        flipped[bit // 8] ^= 1 << (bit % 8)
        path.write_bytes(bytes(flipped))
        try:
            back = read_candles_parquet(path, "BTC/USDT", "1h", DAY)
        except CorruptPartitionError as err:
            outcome["detected: " + err.reason.split(" (")[0].split(":")[0]] += 1
            continue
        pd.testing.assert_frame_equal(back, expected)  # a harmless flip (statistics, writer name, padding)
        assert back.attrs == expected.attrs
        outcome["values identical"] += 1
    print(f"bit flips in a {len(good)}-byte partition:", dict(sorted(outcome.items())))
    assert sum(outcome.values()) == 600
    assert outcome["detected: content hash mismatch"] > 50  # the values pages are a large part of the file
