"""Strate I assets: ``tokenizer_model`` (trained on the training window) and ``token_sequences`` (per symbol).

Bodies only wire: the work is ``fin_ia_models.tokenizer.stage`` (imported inside the bodies, so a step that does
not run them never pays for torch)."""

import dagster as dg

from fin_ia_models.tracking.runs import flatten
from fin_ia_pipeline.automation.conditions import follows_upstream
from fin_ia_pipeline.compute import gpu_asset_kwargs
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource
from fin_ia_pipeline.training import ModelStage, TrainingRunConfig, train_and_register, upstream_metadata

TOKENIZER = "tokenizer"
STAGE = ModelStage.named("tokenizer", kind="tokenizer")
CANDLES = dg.AssetKey("ohlcv_candles")


class TokenizerModelConfig(TrainingRunConfig):
    """Run config of ``tokenizer_model``; unset fields take the pipeline settings."""

    quantizer: str | None = None  # "fsq" (v6 SymLog + FSQ) or "vq" (v1 spherical VQ-VAE); default FIN_IA_QUANTIZER
    epochs: int | None = None  # override the profile's epochs (quick runs)


def build_tokenizer_assets(settings: PipelineSettings,
                           symbol_partitions: dg.StaticPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        group_name=TOKENIZER,
        ins={"ohlcv_candles": dg.AssetIn(key=CANDLES, metadata={"allow_missing_partitions": True})},
        io_manager_key="model_io_manager",
        code_version="1",
        description="Strate I tokenizer trained on the training window (train + val of the profile's time split) "
        "of every configured symbol; held-out metrics on the test window.",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "mlflow")),
    )
    def tokenizer_model(context: dg.AssetExecutionContext, config: TokenizerModelConfig, mlflow: MlflowResource,
                        ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.tokenizer.config import profile_config
        from fin_ia_models.tokenizer.stage import fit_tokenizer

        profile, seed, split = config.resolve(settings)
        overrides = {} if config.epochs is None else {"epochs": config.epochs}
        model_config = profile_config(profile, config.quantizer or settings.quantizer, **overrides)
        return train_and_register(
            context, settings.home, mlflow, STAGE, fit_tokenizer, upstream=[],
            facts={"profile": profile, **flatten(split, "split.")},
            checkpoint_every_n_steps=config.checkpoint_every_n_steps, candles=series_by_symbol(ohlcv_candles),
            config=model_config, split=split, seed=seed, candles_source=f"{settings.storage_root}/ohlcv_candles")

    @dg.asset(
        group_name=TOKENIZER,
        partitions_def=symbol_partitions,
        ins={
            "tokenizer_model": dg.AssetIn(),
            "ohlcv_candles": dg.AssetIn(
                key=CANDLES,
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="symbol"),
                metadata={"allow_missing_partitions": True},
            ),
        },
        io_manager_key="frame_io_manager",
        code_version="1",
        automation_condition=follows_upstream(),
        description="Every stored candle series of the symbol cut into non-overlapping patches; per patch its end "
        "timestamp (open time of its last candle), token id and continuous latent. Causal: a patch uses only "
        "candles up to its end. Patches spanning a gap are absent.",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "parquet")),
    )
    def token_sequences(context: dg.AssetExecutionContext, tokenizer_model, ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.data.series import series_by_symbol
        from fin_ia_models.tokenizer.stage import tokenize_series

        symbol = context.partition_key
        series = series_by_symbol(ohlcv_candles)
        if symbol not in series:
            raise ValueError(f"no stored ohlcv_candles for {symbol}: materialize its partitions first")
        tokens, facts = tokenize_series(tokenizer_model, series[symbol])
        context.log.info(f"{symbol}: {facts['candles']} candles → {facts['rows']} tokens")
        return dg.Output(tokens, metadata={**facts, **upstream_metadata(tokenizer_model)})

    return [tokenizer_model, token_sequences]
