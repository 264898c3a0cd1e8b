"""Entry point of the code location: merges every stage's Definitions.

Settings come from the environment (see ``fin_ia_pipeline.settings``) when ``build_definitions`` runs; tests call it
with explicit settings.
"""

from __future__ import annotations

import dagster as dg

from fin_ia_pipeline.automation.definitions import build_automation_defs
from fin_ia_pipeline.market_data.definitions import build_market_data_defs
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tokenizer.definitions import build_tokenizer_defs
from fin_ia_pipeline.world_model.definitions import build_world_model_defs


def executor_for(settings: PipelineSettings) -> dg.ExecutorDefinition:
    """Multiprocess on one machine (the ``gpu`` pool in dagster.yaml keeps GPU steps to the GPUs present);
    ``k8s_job_executor`` beyond it: each step its own pod, GPU-tagged steps on the H100 pool (see compute.py)."""
    if settings.executor == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as err:
            raise ImportError("FIN_IA_EXECUTOR=k8s needs dagster-k8s: pip install 'fin-ia[k8s]'") from err
        return k8s_job_executor
    return dg.multiprocess_executor


def build_definitions(settings: PipelineSettings | None = None) -> dg.Definitions:
    settings = settings or PipelineSettings.from_env()
    stages = dg.Definitions.merge(build_market_data_defs(settings), build_tokenizer_defs(settings),
                                  build_world_model_defs(settings), build_automation_defs(settings))
    return dg.Definitions.merge(stages, dg.Definitions(executor=executor_for(settings)))


defs = build_definitions()
