"""Retraining and drift: the weekly retrain schedule, the token-drift sensor, the automation sensor."""
