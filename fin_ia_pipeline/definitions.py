"""Entry point of the code location: discovers the stages and merges their Definitions with the shared resources.

A stage is a sub-package of ``fin_ia_pipeline`` with a ``definitions.py`` that defines ``build_defs(settings)``
(market_data, tokenizer, world_model, ..., automation). Adding a stage is adding such a folder: nothing here lists
them. Resources every stage shares (MLflow, the model and frame IO managers) are built once, here.

Settings come from the environment (see ``fin_ia_pipeline.settings``) when ``build_definitions`` runs; tests call it
with explicit settings.
"""

from __future__ import annotations

import importlib
import pkgutil

import dagster as dg

import fin_ia_pipeline
from fin_ia_pipeline.resources import shared_resources
from fin_ia_pipeline.settings import PipelineSettings


def stage_modules() -> list[str]:
    """``fin_ia_pipeline.<stage>.definitions`` of every stage folder, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(fin_ia_pipeline.__path__), key=lambda i: i.name):
        if info.ispkg and importlib.util.find_spec(f"fin_ia_pipeline.{info.name}.definitions") is not None:
            found.append(f"fin_ia_pipeline.{info.name}.definitions")
    return found


def executor_for(settings: PipelineSettings) -> dg.ExecutorDefinition:
    """How the steps of one run execute.

    ``in_process`` (the default on one machine): every step of a run in the run's own process. A step process costs
    a Python start and a code-location import (~3 s here, more than a day of candles takes), and torch is imported
    once per run instead of once per step; the ``gpu`` pool in dagster.yaml still keeps GPU steps to the GPUs
    present (Dagster's in-process executor claims pool slots too). ``multiprocess``: a process per step, steps of
    one run in parallel. ``k8s``: ``k8s_job_executor``, each step its own pod, GPU-tagged steps on the H100 pool.
    """
    if settings.executor == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as err:
            raise ImportError("FIN_IA_EXECUTOR=k8s needs dagster-k8s: pip install 'fin-ia[k8s]'") from err
        return k8s_job_executor
    if settings.executor == "multiprocess":
        return dg.multiprocess_executor
    return dg.in_process_executor


def build_definitions(settings: PipelineSettings | None = None) -> dg.Definitions:
    settings = settings or PipelineSettings.from_env()
    stages = [importlib.import_module(name).build_defs(settings) for name in stage_modules()]
    shared = dg.Definitions(resources=shared_resources(settings), executor=executor_for(settings))
    return dg.Definitions.merge(*stages, shared)


defs = build_definitions()
