"""Small upstream models and frames for the multiverse tests: an untrained tokenizer and Fin-JEPA (both causal by
construction, so everything downstream can be checked for causality), their token and embedding frames over a
random-walk market, and a tiny multiverse config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fin_ia_models.multiverse.config import MultiverseConfig
from fin_ia_models.tokenizer.config import TokenizerConfig
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.world_model.config import ExoClockConfig, JEPAConfig, Mamba2Config
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.stage import embed_tokens, jepa_config_for
from tests.conftest import make_candles

N_CANDLES = 16 * 90


def small_tokenizer(seed: int = 0) -> TokenizerModel:
    torch.manual_seed(seed)
    return TokenizerModel(TokenizerConfig(hidden_dim=16, latent_dim=8)).eval()


def small_jepa(tokenizer: TokenizerModel, seed: int = 0) -> FinJEPA:
    torch.manual_seed(seed)
    base = JEPAConfig(mixer=Mamba2Config(d_model=16, d_state=4, headdim=8, chunk_size=16,
                                         exo=ExoClockConfig(enabled=True)), seq_len=32)
    return FinJEPA(jepa_config_for(tokenizer, base, exo_clock=True, use_latents=True)).eval()


def tiny_config(tokenizer: TokenizerModel, **overrides) -> MultiverseConfig:
    values = dict(tokenizer=tokenizer.config, emb_dim=16, hidden_dim=16, n_layers=1, noise_dim=4,
                  n_train_samples=4, batch_size=16, epochs=2, n_eval_futures=8, tokenizer_version="tok/1",
                  jepa_version="jepa/1")
    return MultiverseConfig(**{**values, **overrides})


def frames_for(candles: pd.DataFrame, tokenizer: TokenizerModel, jepa: FinJEPA) -> tuple[pd.DataFrame, pd.DataFrame]:
    tokens = encode_candles(tokenizer, candles)
    return tokens, embed_tokens(jepa, tokens, candles, tokenizer.config.patch_len)[0]


@pytest.fixture(scope="module")
def upstream():
    """(candles, tokenizer, jepa, tokens, embeddings) over ~90 tokens of a random walk."""
    candles = make_candles(N_CANDLES, seed=1)
    tokenizer = small_tokenizer()
    jepa = small_jepa(tokenizer)
    tokens, embeddings = frames_for(candles, tokenizer, jepa)
    return candles, tokenizer, jepa, tokens, embeddings


def vol_regime_candles(n: int, seed: int, vols: tuple[float, ...]) -> pd.DataFrame:
    """Random-walk candles whose hourly volatility switches between ``vols`` every 16·20 candles."""
    frame = make_candles(n, seed=seed)
    rng = np.random.default_rng(seed)
    sigma = np.repeat(np.resize(np.asarray(vols), n // 320 + 1), 320)[:n]
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1, n) * sigma))
    open_ = np.r_[100.0, close[:-1]]
    frame["open"], frame["close"] = open_, close
    frame["high"] = np.maximum(open_, close) * 1.001
    frame["low"] = np.minimum(open_, close) * 0.999
    return frame
