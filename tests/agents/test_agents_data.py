"""The AgentData contract: validation with named errors, the synthetic maker's causality and planted signal, time
splits with the embargo, the observation normaliser (training statistics only)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fin_ia_models.agents.data import AgentData, split_by_time, time_window
from fin_ia_models.agents.features import ObsNormalizer
from fin_ia_models.agents.synthetic import TOKEN_MS, synthetic_agent_data
from fin_ia_models.config import TimeSplit


def _fields(data: AgentData) -> dict:
    return {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}


@pytest.fixture(scope="module")
def data() -> AgentData:
    return synthetic_agent_data(T=64, D=3, N=8, H=3, R=4, seed=0, n_gaps=2)


def test_shapes_dtypes_and_read_only(data):
    assert data.dims == (3, 4, 4) and len(data) == 64 and data.mv_futures.shape == (64, 8, 3)
    assert data.embedding.dtype == np.float32 and data.next_return.dtype == np.float64
    assert data.mv_summary_names == ("mean", "std", "q05", "vol")
    with pytest.raises(ValueError):
        data.embedding[0, 0] = 1.0  # frozen through its arrays too


@pytest.mark.parametrize("change, message", [
    ({"embedding": "nan"}, "embedding has 1 non-finite value(s), the first in row 5"),
    ({"end_timestamp": "dup"}, "end_timestamp must be strictly increasing"),
    ({"tradable": "int"}, "tradable must be a bool array"),
    ({"next_return": "nan_tradable"}, "next_return (tradable rows) has 1 non-finite"),
    ({"mv_summary": "short"}, "mv_summary must have shape (T=64, >=1)"),
    ({"mv_futures": "2d"}, "mv_futures must have 3 dimension(s)"),
    ({"mv_summary_names": "few"}, "mv_summary_names has 2 names for K = 4"),
])
def test_bad_input_is_named(data, change, message):
    values = _fields(data)
    (name, how), = change.items()
    if how == "nan":
        values[name] = values[name].copy()
        values[name][5, 0] = np.nan
    elif how == "dup":
        values[name] = values[name].copy()
        values[name][10] = values[name][9]
    elif how == "int":
        values[name] = values[name].astype(int)
    elif how == "nan_tradable":
        values[name] = values[name].copy()
        values[name][np.flatnonzero(data.tradable)[3]] = np.nan
    elif how == "short":
        values[name] = values[name][:-1]
    elif how == "2d":
        values[name] = values[name][:, :, 0]
    elif how == "few":
        values[name] = ("a", "b")
    with pytest.raises(ValueError) as err:
        AgentData(**values)
    assert message in str(err.value)


def test_gap_rows_may_have_nan_labels_and_earn_nothing(data):
    gaps = np.flatnonzero(~data.tradable)
    assert len(gaps) == 2 and np.isnan(data.next_return[gaps]).all()
    assert (data.earned_return()[gaps] == 0).all()
    assert (np.diff(data.end_timestamp)[gaps] == 3 * TOKEN_MS).all()  # two missing tokens after each gap step
    assert (data.effective_positions(np.ones(len(data)))[gaps] == 0).all()


def test_synthetic_features_are_causal_and_the_signal_is_planted():
    data = synthetic_agent_data(T=4000, D=2, R=3, seed=1, signal_strength=0.5)
    # past_returns[t] ends with the return realized into t: next_return[t - 1]
    np.testing.assert_array_equal(data.past_returns[1:, -1], data.next_return[:-1].astype(np.float32))
    np.testing.assert_array_equal(data.past_returns[1:, :-1], data.past_returns[:-1, 1:])
    corr = np.corrcoef(data.embedding[:, 0], data.next_return)[0, 1]
    assert 0.45 < corr < 0.55  # channel 0 predicts the next return with correlation ≈ signal_strength
    assert abs(np.corrcoef(data.embedding[:, 1], data.next_return)[0, 1]) < 0.05
    np.testing.assert_allclose(data.mv_summary[:, 0], 0.01 * 0.5 * data.embedding[:, 0], rtol=1e-6)


def test_split_by_time_respects_the_embargo():
    split = TimeSplit(train_start="2023-01-01", train_end="2023-01-20", val_start="2023-01-21",
                      val_end="2023-01-31", test_start="2023-02-01", test_end="2023-02-15", embargo_hours=24)
    data = synthetic_agent_data(T=80, seed=2)  # 16 h tokens from 2023-01-01 00:00 UTC
    parts = split_by_time(data, split)
    train_end = split.range_ms("train")[1]
    val_start, val_end = split.range_ms("val")
    assert parts["train"].end_timestamp.max() < train_end
    assert parts["val"].end_timestamp.min() >= val_start and parts["val"].end_timestamp.max() < val_end
    # the label of the last training row (one token ahead) ends before validation starts
    assert parts["train"].end_timestamp.max() + TOKEN_MS + 3_600_000 <= val_start
    with pytest.raises(ValueError, match="exceeds the embargo of 12 h"):
        split_by_time(data, dataclasses.replace(split, embargo_hours=12))
    with pytest.raises(ValueError, match="only 0 row"):
        time_window(data, 0, 1)


def test_normaliser_uses_training_statistics_only(data):
    other = synthetic_agent_data(T=64, D=3, N=8, H=3, R=4, seed=5)
    norm = ObsNormalizer.fit([data], clip=3.0)
    table = norm.observations(other)
    expected = np.clip((other.features() - norm.mean) / norm.std, -3, 3)
    np.testing.assert_allclose(table[:, :-1], expected, rtol=1e-6, atol=1e-6)
    assert (table[:, -1] == 0).all() and np.abs(table).max() <= 3.0
    assert ObsNormalizer.from_dict(norm.to_dict()).to_dict() == norm.to_dict()
    wide = synthetic_agent_data(T=64, D=5, N=8, H=3, R=4)
    with pytest.raises(ValueError, match="embedding width 5 differs from the 3 the agent was trained on"):
        norm.observations(wide)
