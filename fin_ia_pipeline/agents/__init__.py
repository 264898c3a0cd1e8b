"""Strate IV: ``ppo_agent`` and ``cvar_planner_agent`` (group ``agents``)."""
