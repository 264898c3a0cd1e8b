"""Strate III assets: ``multiverse_model`` (trained on the training window, gated on validation forecast scores) and
``multiverse_trajectories`` (per symbol: N futures × H tokens of every token, summaries and sampled step returns).

Bodies only wire: the work is ``fin_ia_models.multiverse.stage`` (imported inside the bodies)."""

import dagster as dg

from fin_ia_models.tracking.runs import flatten
from fin_ia_pipeline.automation.conditions import follows_upstream
from fin_ia_pipeline.compute import gpu_asset_kwargs
from fin_ia_pipeline.multiverse.versions import recorded_versions, require_made_by, version_of
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource
from fin_ia_pipeline.training import (ModelStage, TrainingRunConfig, train_and_register, upstream_metadata,
                                      upstream_of)

MULTIVERSE = "multiverse"
STAGE = ModelStage.named("multiverse", kind="multiverse")
CANDLES = dg.AssetKey("ohlcv_candles")


class MultiverseModelConfig(TrainingRunConfig):
    """Run config of ``multiverse_model``; unset fields take the pipeline settings and the profile."""

    predictor: str | None = None  # "flow" (v6 OT-CFM) or "stochastic" (v1); default: the profile's
    epochs: int | None = None  # override the profile's epochs (quick runs)
    n_eval_futures: int | None = None  # override the futures per origin of the scores and stored trajectories

    def overrides(self) -> dict:
        fields = (("predictor", self.predictor), ("epochs", self.epochs), ("n_eval_futures", self.n_eval_futures))
        return {k: v for k, v in fields if v is not None}


def facts_metadata(facts: dict) -> dict:
    """Library facts as metadata: scores as floats, PNG plots as inline markdown images, the rest as is."""
    from fin_ia_models.evaluation.plots import markdown_image

    facts = dict(facts)
    plots, scores = facts.pop("plots", {}), facts.pop("scores", {})
    return {**facts, **{k: dg.MetadataValue.float(float(v)) for k, v in scores.items()},
            **{k: dg.MetadataValue.md(markdown_image(png, k.replace("_", " "))) for k, png in plots.items()}}


def build_multiverse_assets(settings: PipelineSettings,
                            symbol_partitions: dg.StaticPartitionsDefinition) -> list[dg.AssetsDefinition]:
    all_candles = dg.AssetIn(key=CANDLES, metadata={"allow_missing_partitions": True})
    symbol_candles = dg.AssetIn(
        key=CANDLES, metadata={"allow_missing_partitions": True},
        partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="symbol"),
    )

    @dg.asset(
        group_name=MULTIVERSE,
        ins={"token_sequences": dg.AssetIn(), "jepa_embeddings": dg.AssetIn(), "tokenizer_model": dg.AssetIn(),
             "jepa_encoder": dg.AssetIn(), "ohlcv_candles": all_candles},
        io_manager_key="model_io_manager",
        code_version="1",
        description="Strate III: N sampled futures of the next tokens from the JEPA context (v6 OT-CFM flow or v1 "
        "stochastic predictor), decoded by the tokenizer; trained on the training window, scored against block "
        "bootstrap, GARCH(1,1)-t and a random walk on validation (gate) and test (report).",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "mlflow")),
    )
    def multiverse_model(context: dg.AssetExecutionContext, config: MultiverseModelConfig, mlflow: MlflowResource,
                         token_sequences: dict, jepa_embeddings: dict, tokenizer_model, jepa_encoder,
                         ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.multiverse.config import profile_config
        from fin_ia_models.multiverse.context import embedding_width
        from fin_ia_models.multiverse.stage import fit_multiverse

        profile, seed, split = config.resolve(settings)
        versions = {"tokenizer_model": version_of(tokenizer_model), "jepa_model": version_of(jepa_encoder)}
        tokenizer_only = {"tokenizer_model": versions["tokenizer_model"]}
        require_made_by(context.instance, "token_sequences", token_sequences, tokenizer_only)
        require_made_by(context.instance, "jepa_embeddings", jepa_embeddings, versions)
        width = embedding_width(next(iter(jepa_embeddings.values())))
        model_config = profile_config(profile, **config.overrides(), tokenizer=tokenizer_model.config, emb_dim=width,
                                      tokenizer_version=versions["tokenizer_model"],
                                      jepa_version=versions["jepa_model"])
        return train_and_register(
            context, settings.home, mlflow, STAGE, fit_multiverse, upstream=upstream_of(jepa_encoder, tokenizer_model),
            facts={"profile": profile, **flatten(split, "split."), **upstream_metadata(jepa_encoder, tokenizer_model)},
            checkpoint_every_n_steps=config.checkpoint_every_n_steps, tokens=token_sequences,
            embeddings=jepa_embeddings, candles=series_by_symbol(ohlcv_candles), tokenizer=tokenizer_model,
            config=model_config, split=split, seed=seed,
            tokens_source=f"{settings.storage_root}/frames/token_sequences",
            embeddings_source=f"{settings.storage_root}/frames/jepa_embeddings",
            candles_source=f"{settings.storage_root}/ohlcv_candles")

    @dg.asset(
        group_name=MULTIVERSE,
        partitions_def=symbol_partitions,
        ins={"multiverse_model": dg.AssetIn(), "token_sequences": dg.AssetIn(), "jepa_embeddings": dg.AssetIn(),
             "ohlcv_candles": symbol_candles},
        io_manager_key="frame_io_manager",
        code_version="1",
        automation_condition=follows_upstream(),
        description="Per token: N futures × H tokens sampled at that token (causal: only tokens ≤ t), summarised "
        "(mean, std, 5/50/95 % quantiles of the 1-token and 24 h return and realized vol) plus the sampled token ids "
        "and per-token-step log returns for the planner; metadata: test-window scores vs baselines, plots.",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "parquet")),
    )
    def multiverse_trajectories(context: dg.AssetExecutionContext, multiverse_model, token_sequences,
                                jepa_embeddings, ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.multiverse.stage import multiverse_trajectories as trajectories_of

        symbol = context.partition_key
        candles = series_by_symbol(ohlcv_candles).get(symbol)
        if candles is None:
            raise ValueError(f"no stored ohlcv_candles for {symbol}: materialize its partitions first")
        made_by = recorded_versions(context.instance, "jepa_embeddings", symbol, ("tokenizer_model", "jepa_model"))
        tokens_by = recorded_versions(context.instance, "token_sequences", symbol, ("tokenizer_model",))
        frame, facts = trajectories_of(
            multiverse_model, token_sequences, jepa_embeddings, candles, settings.time_split(), settings.seed,
            symbol=symbol, tokenizer_version=tokens_by["tokenizer_model"], jepa_version=made_by["jepa_model"])
        context.log.info(f"{symbol}: {facts['summary']}")
        return dg.Output(frame, metadata={**facts_metadata(facts), **made_by,
                                          **upstream_metadata(multiverse_model)})

    return [multiverse_model, multiverse_trajectories]
