"""Honest evaluation: ``backtest_report`` and the agents' champion gates (group ``evaluation``)."""
