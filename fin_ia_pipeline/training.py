"""The one template of a training asset: open the MLflow run, train resumably, log and register, return the model.

    return train_and_register(context, settings, mlflow, STAGE, fit_tokenizer, upstream=[], params={...},
                              candles=..., config=..., ...)

``fit`` is a library entry point (``fin_ia_models.<stage>.stage.fit_*``) that takes ``checkpoint_dir`` and
``checkpoint_every_n_steps`` and returns a ``TrainingResult``; everything else is the same for every stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from fin_ia_pipeline.compute import resumable_training
from fin_ia_pipeline.tracking.resource import MlflowResource, model_metadata


@dataclass(frozen=True)
class ModelStage:
    """How a stage's models are named in MLflow: one experiment and one registered model per stage."""

    experiment: str  # MLflow experiment, e.g. fin-ia-tokenizer
    model_name: str  # registered model, e.g. fin-ia-tokenizer
    kind: str  # fin_ia_models.training.checkpoint.MODEL_KINDS entry

    @staticmethod
    def named(stage: str, kind: str) -> "ModelStage":
        return ModelStage(f"fin-ia-{stage}", f"fin-ia-{stage}", kind)


class TrainingRunConfig(dg.Config):
    """Run config every training asset shares; unset fields take the pipeline settings (FIN_IA_PROFILE, ...)."""

    profile: str | None = None  # "demo", "cpu" or "full"; default FIN_IA_PROFILE
    seed: int | None = None  # default FIN_IA_SEED
    checkpoint_every_n_steps: int = 200  # resumable checkpoint cadence (and one on SIGTERM, always)

    def resolve(self, settings) -> tuple[str, int, Any]:
        """(profile, seed, time split) of this run."""
        from fin_ia_models.config import time_split_for

        profile = self.profile or settings.profile
        split = settings.time_split() if profile == settings.profile else time_split_for(profile)
        return profile, settings.seed if self.seed is None else self.seed, split


def train_and_register(context: dg.AssetExecutionContext, home: str, mlflow: MlflowResource, stage: ModelStage,
                       fit: Callable[..., Any], *, upstream: Sequence, facts: dict, checkpoint_every_n_steps: int,
                       **fit_kwargs) -> dg.Output:
    """Run ``fit(**fit_kwargs)`` inside an MLflow run and a resumable checkpoint folder, register the model
    (alias ``candidate``) with its lineage to ``upstream`` versions, and return it with its metadata. ``facts``
    (profile, ...) go to the MLflow params and the metadata both."""
    with resumable_training(context, home) as checkpoints, mlflow.training_run(context, stage.experiment) as run:
        result = fit(checkpoint_dir=checkpoints, checkpoint_every_n_steps=checkpoint_every_n_steps, **fit_kwargs)
        logged = run.log_training(result, model_name=stage.model_name, kind=stage.kind, upstream=upstream,
                                  params=result.params(**facts))
    context.log.info(f"registered {logged.model_name} v{logged.version} (alias candidate) — {logged.run_url}")
    return dg.Output(result.model, metadata={**facts, **result_metadata(result), **model_metadata(logged)})


def result_metadata(result) -> dict:
    """A ``TrainingResult`` as materialization metadata: facts, final metrics, plots, where and how long."""
    from fin_ia_models.evaluation.plots import markdown_image

    meta: dict[str, Any] = dict(result.info)
    meta.update(seed=result.seed, device=result.device, wall_time_s=dg.MetadataValue.float(round(result.wall_time_s, 1)))
    meta.update({k: dg.MetadataValue.float(float(v)) for k, v in result.metrics.items()})
    meta.update({name: dg.MetadataValue.md(markdown_image(png, name.replace("_", " ")))
                 for name, png in result.plots.items()})
    return meta


def upstream_of(*models) -> list:
    """The registered versions (``fin_ia_lineage``, set by the model IO manager) of loaded upstream models."""
    return [model.fin_ia_lineage for model in models]


def upstream_metadata(*models) -> dict:
    """Which registered versions a derived asset was computed with: ``<stage>_model`` (name/version),
    ``<stage>_model_version`` and ``<stage>_run_id`` per model (stage = the name without ``fin-ia-``)."""
    meta = {}
    for model in models:
        lineage = model.fin_ia_lineage
        stage = lineage.name.removeprefix("fin-ia-")
        meta |= {f"{stage}_model": f"{lineage.name}/{lineage.version}", f"{stage}_model_version": lineage.version,
                 f"{stage}_run_id": lineage.run_id}
    return meta
