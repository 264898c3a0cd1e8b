"""Strate II assets: ``jepa_encoder`` (Fin-JEPA trained on token sequences) and ``jepa_embeddings`` (per symbol).

Bodies only wire: the work is ``fin_ia_models.world_model.stage`` (imported inside the bodies)."""

import dagster as dg

from fin_ia_models.tracking.runs import flatten
from fin_ia_pipeline.automation.conditions import follows_upstream
from fin_ia_pipeline.compute import gpu_asset_kwargs
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource
from fin_ia_pipeline.training import (ModelStage, TrainingRunConfig, train_and_register, upstream_metadata,
                                      upstream_of)

WORLD_MODEL = "world_model"
STAGE = ModelStage.named("jepa", kind="jepa")
CANDLES = dg.AssetKey("ohlcv_candles")


class JepaEncoderConfig(TrainingRunConfig):
    """Run config of ``jepa_encoder``; unset fields take the pipeline settings and the profile."""

    exo_clock: bool = True  # v6: dt modulated by realized volatility and volume; False = v1 plain Mamba-2 clock
    # Strate I's continuous latents next to the token embedding: off since issue 12 (the scale inputs carry the
    # state; latents did not help the validation probes)
    use_latents: bool = False
    max_steps: int | None = None  # override the profile's optimizer steps (quick runs)
    seq_len: int | None = None  # override the profile's training window length in tokens (short histories)


def build_world_model_assets(settings: PipelineSettings,
                             symbol_partitions: dg.StaticPartitionsDefinition) -> list[dg.AssetsDefinition]:
    all_candles = dg.AssetIn(key=CANDLES, metadata={"allow_missing_partitions": True})
    symbol_candles = dg.AssetIn(
        key=CANDLES, metadata={"allow_missing_partitions": True},
        partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="symbol"),
    )

    @dg.asset(
        group_name=WORLD_MODEL,
        ins={"token_sequences": dg.AssetIn(), "tokenizer_model": dg.AssetIn(), "ohlcv_candles": all_candles},
        io_manager_key="model_io_manager",
        code_version="1",
        description="Fin-JEPA world model (Mamba-2 SSD blocks, exo-clock) trained on the token sequences of the "
        "training window; metadata holds loss curves, collapse monitors and linear-probe scores on the test window.",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "mlflow")),
    )
    def jepa_encoder(context: dg.AssetExecutionContext, config: JepaEncoderConfig, mlflow: MlflowResource,
                     token_sequences: dict, tokenizer_model, ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.world_model.config import jepa_profile
        from fin_ia_models.world_model.stage import fit_jepa, jepa_config_for

        profile, seed, split = config.resolve(settings)
        overrides = {k: v for k, v in (("max_steps", config.max_steps), ("seq_len", config.seq_len)) if v is not None}
        model_config = jepa_config_for(tokenizer_model, jepa_profile(profile, **overrides),
                                       exo_clock=config.exo_clock, use_latents=config.use_latents)
        tok = tokenizer_model.fin_ia_lineage
        return train_and_register(
            context, settings.home, mlflow, STAGE, fit_jepa, upstream=upstream_of(tokenizer_model),
            facts={"profile": profile, **flatten(split, "split."), **upstream_metadata(tokenizer_model)},
            checkpoint_every_n_steps=config.checkpoint_every_n_steps, tokens=token_sequences,
            candles=series_by_symbol(ohlcv_candles), config=model_config, patch_len=tokenizer_model.config.patch_len,
            split=split, seed=seed, tokens_source=f"{settings.storage_root}/frames/token_sequences",
            candles_source=f"{settings.storage_root}/ohlcv_candles", tokenizer_version=f"{tok.name}/{tok.version}")

    @dg.asset(
        group_name=WORLD_MODEL,
        partitions_def=symbol_partitions,
        ins={"jepa_encoder": dg.AssetIn(), "token_sequences": dg.AssetIn(), "tokenizer_model": dg.AssetIn(),
             "ohlcv_candles": symbol_candles},
        io_manager_key="frame_io_manager",
        code_version="1",
        automation_condition=follows_upstream(),
        description="Per-token context embedding of the symbol's token sequence; causal: row t uses tokens ≤ t.",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "parquet")),
    )
    def jepa_embeddings(context: dg.AssetExecutionContext, jepa_encoder, token_sequences, tokenizer_model,
                        ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.world_model.stage import embed_tokens

        symbol = context.partition_key
        candles = series_by_symbol(ohlcv_candles).get(symbol)
        emb, facts = embed_tokens(jepa_encoder, token_sequences, candles, tokenizer_model.config.patch_len)
        context.log.info(f"{symbol}: {facts['rows']} embeddings of width {facts['dim']}")
        return dg.Output(emb, metadata={**facts, **upstream_metadata(jepa_encoder, tokenizer_model)})

    return [jepa_encoder, jepa_embeddings]
