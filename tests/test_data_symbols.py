"""One canonical symbol form (BASE/QUOTE upper case, safe characters) and no two symbols sharing one storage name."""

from __future__ import annotations

import pytest

from fin_ia_models.data.schema import canonical_symbol, check_symbols, symbol_slug
from fin_ia_models.data.storage import candle_partition_relpath


@pytest.mark.parametrize("symbol", ["BTC/USDT", "ETH/BTC", "1000SHIB/USDT", "BTC/USDT:USDT", "A/B"])
def test_canonical_symbols_are_accepted_unchanged(symbol):
    assert canonical_symbol(symbol) == symbol


@pytest.mark.parametrize(
    "symbol, rule",
    [
        ("", "it is empty"),
        (".", "path separator or '.'"),
        ("..", "path separator or '.'"),
        ("../../etc/passwd", "path separator or '.'"),
        ("BTC/../USDT", "path separator or '.'"),
        ("BTC\\USDT", "path separator or '.'"),
        ("BTC/USDT/X", "path separator or '.'"),
        ("BTC.B/USDT", "path separator or '.'"),
        ("BTC /USDT", "whitespace"),
        ("BTC/USDT\n", "whitespace"),
        ("\tBTC/USDT", "whitespace"),
        ("BTCUSDT", "no '/'"),
        ("BTC-USDT", "no '/'"),
        ("BTC/", "QUOTE is empty"),
        ("/USDT", "BASE is empty"),
        ("BTC/USDT:", "SETTLE is empty"),
        ("A" * 21 + "/USDT", "BASE is longer than 20"),
        ("btc/usdt", "not upper case (write 'BTC/USDT')"),
        ("Btc/Usdt", "not upper case"),
        ("BTC$/USDT", "characters other than A-Z"),
        ("BTC/USDT:USDT:X", "characters other than A-Z"),
        ("BTC/ÜSDT", "characters other than A-Z"),
    ],
)
def test_non_canonical_symbols_are_rejected_naming_symbol_and_rule(symbol, rule):
    with pytest.raises(ValueError) as info:
        canonical_symbol(symbol)
    message = str(info.value)
    assert repr(symbol) in message and rule in message and "BASE/QUOTE" in message


def test_a_non_string_symbol_is_rejected():
    with pytest.raises(ValueError, match="symbol must be a string like BTC/USDT, got int 5"):
        canonical_symbol(5)


def test_slug_and_storage_path_accept_only_canonical_symbols():
    assert symbol_slug("BTC/USDT") == "BTCUSDT" and symbol_slug("BTC/USDT:USDT") == "BTCUSDTUSDT"
    assert candle_partition_relpath("ETH/USDT", "1h", "2024-01-05") == "ETHUSDT/1h/2024-01-05.parquet"
    for bad in ("../../x/Y", "btc/usdt", "BTC-USDT"):
        with pytest.raises(ValueError, match="invalid symbol"):
            candle_partition_relpath(bad, "1h", "2024-01-05")
    with pytest.raises(ValueError, match="unknown timeframe"):
        candle_partition_relpath("BTC/USDT", "../x", "2024-01-05")
    for bad_day in ("../../2024-01-05", "2024-01-05/../x", "2024-1-5", "2024-02-30"):
        with pytest.raises(ValueError):
            candle_partition_relpath("BTC/USDT", "1h", bad_day)


@pytest.mark.parametrize(
    "symbols, first, second",
    [
        (["BTC/USDT", "btc/usdt"], "BTC/USDT", "btc/usdt"),
        (["BTC/USDT", "ETH/USDT", "BTC-USDT"], "BTC/USDT", "BTC-USDT"),
        (["BTC/USDT", "BTCU/SDT"], "BTC/USDT", "BTCU/SDT"),  # both canonical, both stored as BTCUSDT
        (["ETH/USDT", "BTC/USDT:USDT", "BTC/USDTUSDT"], "BTC/USDT:USDT", "BTC/USDTUSDT"),
    ],
)
def test_two_symbols_sharing_a_storage_name_are_rejected_naming_both(symbols, first, second):
    with pytest.raises(ValueError) as info:
        check_symbols(symbols)
    message = str(info.value)
    assert f"symbols {first!r} and {second!r} map to the same storage name" in message


def test_check_symbols_accepts_distinct_canonical_symbols_and_rejects_the_rest():
    assert check_symbols(["BTC/USDT", "ETH/USDT", "SOL/USDT"]) == ("BTC/USDT", "ETH/USDT", "SOL/USDT")
    with pytest.raises(ValueError, match="'BTC/USDT' is listed twice"):
        check_symbols(("BTC/USDT", "BTC/USDT"))
    with pytest.raises(ValueError, match="at least one"):
        check_symbols(())
    with pytest.raises(ValueError, match=r"invalid symbol 'eth/usdt'.*not upper case"):
        check_symbols(["BTC/USDT", "eth/usdt"])  # lower case is rejected, not normalised
    with pytest.raises(ValueError, match=r"invalid symbol '\.\.'"):
        check_symbols(["BTC/USDT", ".."])
