"""Strate III, the multiverse: N sampled futures of the next tokens from the world model's context, decoded to
candle returns by Strate I, scored against GARCH(1,1)-t, block bootstrap and a random walk.

- ``config``: ``MultiverseConfig`` and the demo/cpu/full sizes; ``context``/``targets``: causal context features and
  the forward-looking training targets (kept apart);
- ``stochastic`` (v1: noise-conditioned autoregressive predictor, energy score + CRPS) and ``flow`` (v6: OT-CFM with
  torchcfm, sampled with torchdiffeq), both behind ``model.MultiverseModel.sample``;
- ``decode``: latents → token ids and candle returns through the tokenizer; ``trajectories``: the result and its
  stored summary; ``evaluate``/``figures``: scores and plots; ``train``/``lightning_module``: training;
- ``stage``: the orchestrator's entry points; ``promotion``: the champion gate against the baselines;
  ``report``: the real-candle evaluation of docs/RESULTS.md.
"""
