"""Profile configs are valid, and the demo sizes fit the demo window (~90 training tokens per symbol)."""

from __future__ import annotations

import pytest

from fin_ia_models.agents.profiles import cvar_planner_profile, ppo_profile
from fin_ia_models.agents.synthetic import synthetic_agent_data
from fin_ia_models.agents.vec_env import LatentTradingVecEnv


@pytest.mark.parametrize("profile", ["demo", "cpu", "full"])
def test_profiles_build_and_round_trip(profile):
    ppo, planner = ppo_profile(profile), cvar_planner_profile(profile)
    assert type(ppo).from_dict(ppo.to_dict()) == ppo and type(planner).from_dict(planner.to_dict()) == planner
    assert ppo_profile(profile, n_epochs=3).n_epochs == 3 and cvar_planner_profile(profile, lr=1e-3).lr == 1e-3


def test_demo_episodes_fit_the_demo_window():
    window = synthetic_agent_data(T=90, D=4)
    LatentTradingVecEnv([window], ppo_profile("demo").env, n_envs=8)  # would raise if episodes were too long
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        ppo_profile("huge")
