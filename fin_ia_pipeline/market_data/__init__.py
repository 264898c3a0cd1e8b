"""Stage 0: exchange candles as the partitioned ``ohlcv_candles`` asset (group ``market_data``)."""
