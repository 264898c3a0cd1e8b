"""The batch path: one symbol's stored candles → tokens → JEPA embeddings → multiverse futures → ``AgentData``, with
the stage entry points the pipeline runs (``encode_candles``, ``embed_tokens``, ``build_context``,
``MultiverseModel.sample``, ``summary_frame``), then ``agents.decide.agent_positions``. The streaming engine must
reproduce its decisions; tests compare the two."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fin_ia_models.agents.assemble import agent_data_from_frames
from fin_ia_models.agents.data import AgentData
from fin_ia_models.agents.decide import agent_positions
from fin_ia_models.data.schema import timeframe_ms
from fin_ia_models.live.rows import summary_horizons
from fin_ia_models.live.stack import ModelStack
from fin_ia_models.multiverse.stage import sample_usable
from fin_ia_models.multiverse.trajectories import summary_frame
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.world_model.stage import embed_tokens


def batch_trajectories(stack: ModelStack, candles: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trajectories frame of every usable token, jepa_embeddings frame) of one symbol's whole stored series."""
    tokens = encode_candles(stack.tokenizer, candles)
    embeddings, _ = embed_tokens(stack.jepa, tokens, candles, stack.patch_len)
    traj, _ = sample_usable(stack.multiverse, tokens, embeddings, candles, stack.seed, stack.n_futures)
    return summary_frame(traj, summary_horizons(stack.multiverse.config)), embeddings


def batch_agent_data(stack: ModelStack, candles: pd.DataFrame) -> AgentData:
    """Rows exactly as the agents were trained and backtested on them (``agents.assemble``)."""
    frame, embeddings = batch_trajectories(stack, candles)
    token_hours = stack.patch_len * timeframe_ms(candles.attrs["timeframe"]) / 3_600_000
    return agent_data_from_frames(embeddings, frame, candles, candles.attrs.get("symbol", ""), token_hours,
                                  n_past=stack.n_past)


def batch_decisions(stack: ModelStack, candles: pd.DataFrame, start_ms: int | None = None) -> tuple[AgentData,
                                                                                                     np.ndarray]:
    """(rows, positions) of the agent over the tokens ending at or after ``start_ms``, starting flat there (the
    backtest's convention), with every feature computed over the whole stored series."""
    data = batch_agent_data(stack, candles)
    if start_ms is not None:
        data = data.take(data.end_timestamp >= start_ms)
    return data, agent_positions(stack.agent, data)
