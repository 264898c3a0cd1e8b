"""Strate I: the OHLCV tokenizer (spherical VQ-VAE "v1" and SymLog + FSQ "v6") that turns candle patches into tokens.

Public entry points (import them from their modules; this package import stays light): ``config.TokenizerConfig`` /
``config.profile_config``, ``train.train_tokenizer``, ``encode.encode_candles`` (token sequences),
``checkpoint.load_tokenizer``. Pure PyTorch + Lightning; no Dagster here.
"""
