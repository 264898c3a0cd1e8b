"""Live decision path (research only: fin-ia never places an order).

- ``stack``: ``ModelStack``, the exact tokenizer / Fin-JEPA / multiverse / agent versions of one agent's lineage;
  ``registry.load_stack`` resolves ``NAME@ALIAS`` (or ``NAME/VERSION``) through the MLflow lineage tags.
- ``batch``: the batch path (whole stored series → ``AgentData``), built from the stage functions; the reference the
  streaming path is tested against.
- ``stream``: per-symbol streaming state, one closed candle at a time (features per candle; per completed patch the
  tokenizer, the Mamba-2 step, the multiverse and the agent), with its gap / late-candle policy.
- ``engine``: ``DecisionEngine`` (many symbols, one stack), ``Decision``; ``paper``: paper PnL after costs.
- ``onnx_export``: the per-step networks as ONNX graphs run by onnxruntime (parity-tested against PyTorch).
"""
