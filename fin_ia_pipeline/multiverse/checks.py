"""The champion gate of ``multiverse_model``: promoted to ``@champion`` only if its validation CRPS beats the best
baseline of its own run (``fin_ia_models.multiverse.promotion.BaselineGate``) and is not worse than the champion's."""

import dagster as dg

from fin_ia_models.multiverse.promotion import BaselineGate, promote_if_beats_baselines
from fin_ia_models.tracking.registry import Gate
from fin_ia_pipeline.tracking.promotion import build_champion_gate

GATE_HORIZON = 24  # candles: the 24 h targets (every profile scores this horizon)
BASELINE_GATES = [BaselineGate(f"crps_ret_{GATE_HORIZON}c"), BaselineGate(f"crps_rv_{GATE_HORIZON}c")]
CHAMPION_GATES = [Gate(f"val_multiverse_crps_ret_{GATE_HORIZON}c", higher_is_better=False, tolerance=0.02),
                  Gate(f"val_multiverse_crps_rv_{GATE_HORIZON}c", higher_is_better=False, tolerance=0.02)]


def build_multiverse_gate(asset_key: dg.AssetKey) -> dg.AssetChecksDefinition:
    return build_champion_gate(
        asset_key, CHAMPION_GATES,
        decide=lambda uri, name, version: promote_if_beats_baselines(uri, name, version, BASELINE_GATES,
                                                                     CHAMPION_GATES),
        description="Promote this version to @champion if its validation CRPS of the 24 h return and realized vol is "
        "below the best baseline's (block bootstrap, GARCH(1,1)-t, random walk) of the same run, and not more than "
        "2 % worse than the current champion's.")
