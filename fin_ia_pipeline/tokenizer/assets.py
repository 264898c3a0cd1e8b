"""Strate I assets: ``tokenizer_model`` (trained on the training window) and ``token_sequences`` (per symbol)."""

import tempfile

import dagster as dg
import numpy as np
import pandas as pd
import torch

from fin_ia_models.config import time_split_for
from fin_ia_models.data.schema import format_ms
from fin_ia_models.evaluation.plots import code_usage_png, loss_curve_png, markdown_image
from fin_ia_models.tokenizer.config import profile_config
from fin_ia_models.tokenizer.encode import encode_candles
from fin_ia_models.tokenizer.features import make_patches
from fin_ia_models.tracking.datasets import dataset_ref
from fin_ia_models.tracking.runs import flatten
from fin_ia_models.tokenizer.metrics import code_usage
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.tokenizer.train import train_tokenizer
from fin_ia_pipeline.compute import gpu_asset_kwargs, train_resumably
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tokenizer.candles import series_by_symbol
from fin_ia_pipeline.tracking.resource import MlflowResource, model_metadata

TOKENIZER = "tokenizer"


class TokenizerModelConfig(dg.Config):
    """Run config of ``tokenizer_model``; unset fields take the pipeline settings (FIN_IA_PROFILE, ...)."""

    quantizer: str | None = None  # "fsq" (v6 SymLog + FSQ) or "vq" (v1 spherical VQ-VAE); default FIN_IA_QUANTIZER
    profile: str | None = None  # "demo" or "full"; default FIN_IA_PROFILE
    seed: int | None = None  # default FIN_IA_SEED
    epochs: int | None = None  # override the profile's epochs (quick runs)
    checkpoint_every_n_steps: int = 200  # resumable checkpoint cadence (and one on SIGTERM, always)


CANDLES = dg.AssetKey("ohlcv_candles")


def build_tokenizer_assets(settings: PipelineSettings,
                           symbol_partitions: dg.StaticPartitionsDefinition) -> list[dg.AssetsDefinition]:
    all_candles = dg.AssetIn(key=CANDLES, metadata={"allow_missing_partitions": True})

    @dg.asset(
        group_name=TOKENIZER,
        ins={"ohlcv_candles": all_candles},
        io_manager_key="model_io_manager",
        code_version="1",
        description="Strate I tokenizer trained on the training window (train + val of the profile's time split) "
        "of every configured symbol; held-out metrics on the test window.",
        **gpu_asset_kwargs(),
    )
    def tokenizer_model(
        context: dg.AssetExecutionContext, config: TokenizerModelConfig, mlflow: MlflowResource, ohlcv_candles: dict
    ) -> dg.Output[TokenizerModel]:
        profile = config.profile or settings.profile
        quantizer = config.quantizer or settings.quantizer
        seed = settings.seed if config.seed is None else config.seed
        split = settings.time_split() if profile == settings.profile else time_split_for(profile)
        train_start, _ = split.range_ms("train")
        _, train_end = split.range_ms("val")
        test_start, test_end = split.range_ms("test")
        train = series_by_symbol(ohlcv_candles, train_start, train_end)
        test = series_by_symbol(ohlcv_candles, test_start, test_end)
        if not train or not test:
            raise ValueError(
                f"tokenizer_model needs stored ohlcv_candles in the training window {split.train_start} … "
                f"{split.val_end} and the test window {split.test_start} … {split.test_end}; found "
                f"{sorted(train)} / {sorted(test)}. Materialize those ohlcv_candles partitions first."
            )
        overrides = {} if config.epochs is None else {"epochs": config.epochs}
        tok_config = profile_config(profile, quantizer, **overrides)
        context.log.info(f"training {quantizer} tokenizer ({profile}) on {', '.join(train)}: "
                         f"{sum(map(len, train.values()))} candles; test on {sum(map(len, test.values()))}")
        with tempfile.TemporaryDirectory() as tmp:
            result = train_resumably(context, settings.home, train_tokenizer,
                                     train, tok_config, seed, tmp, eval_candles=test,
                                     checkpoint_every_n_steps=config.checkpoint_every_n_steps)
        held_out = np.concatenate([encode_candles(result.model, f)["token"].to_numpy() for f in test.values()])
        counts = np.bincount(held_out, minlength=result.model.codebook_size)
        m = result.metrics
        for row in result.history:
            context.log.info(f"epoch {row.get('epoch', '?')}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items()
                                                                             if isinstance(v, float)))
        source = str(settings.storage_root) + "/ohlcv_candles"
        example = make_patches(next(iter(test.values())), tok_config.patch_len, None, tok_config.volume_window,
                               tok_config.return_scale).values[:4]  # (4, L, C)
        with torch.no_grad():
            example_tokens = result.model.encode(torch.as_tensor(example))[0].numpy()
        logged = mlflow.log_model(
            context, experiment="fin-ia-tokenizer", model_name="fin-ia-tokenizer", model=result.model,
            params={**flatten(tok_config), "seed": str(seed), "profile": profile, **flatten(split, "split.")},
            history=result.history, final_metrics={k: v for k, v in m.items() if isinstance(v, (int, float))},
            datasets=[dataset_ref("ohlcv_candles", train, "timestamp", settings.timeframe, source, "training"),
                      dataset_ref("ohlcv_candles", test, "timestamp", settings.timeframe, source, "evaluation")],
            upstream=[], input_example=example, output_example=example_tokens,
        )
        usage_png = code_usage_png(counts, f"{quantizer} codebook usage on the test window")
        loss_png = loss_curve_png(result.history, ["loss", "huber", "sdtw", "commit"], f"{quantizer} training loss")
        metadata = {
            "quantizer": quantizer,
            "profile": profile,
            "seed": seed,
            "device": result.device,
            "train_window": f"{split.train_start} … {split.val_end}",
            "test_window": f"{split.test_start} … {split.test_end}",
            "train_patches": result.n_train_patches,
            "test_patches": result.n_eval_patches,
            "utilization": dg.MetadataValue.float(m["utilization"]),
            "perplexity": dg.MetadataValue.float(m["perplexity"]),
            "uniform_expected_utilization": dg.MetadataValue.float(m["uniform_expected_utilization"]),
            "recon_mae": dg.MetadataValue.float(m["recon_mae"]),
            "recon_mae_patch_mean_baseline": dg.MetadataValue.float(m["recon_mae_patch_mean_baseline"]),
            "dead_codes_revived": dg.MetadataValue.int(int(m["revived_total"])),
            "wall_time_s": dg.MetadataValue.float(round(result.wall_time_s, 1)),
            "codebook_usage": dg.MetadataValue.md(markdown_image(usage_png, "codebook usage")),
            "loss_curve": dg.MetadataValue.md(markdown_image(loss_png, "loss curve")),
            **model_metadata(logged),
        }
        return dg.Output(result.model, metadata=metadata)

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
        automation_condition=dg.AutomationCondition.eager(),
        description="Every stored candle series of the symbol cut into non-overlapping patches; per patch its end "
        "timestamp (open time of its last candle), token id and continuous latent. Causal: a patch uses only "
        "candles up to its end. Patches spanning a gap are absent.",
        **gpu_asset_kwargs(),
    )
    def token_sequences(
        context: dg.AssetExecutionContext, tokenizer_model: TokenizerModel, ohlcv_candles: dict
    ) -> dg.Output[pd.DataFrame]:
        symbol = context.partition_key
        series = series_by_symbol(ohlcv_candles)
        if symbol not in series:
            raise ValueError(f"no stored ohlcv_candles for {symbol}: materialize its partitions first")
        tokens = encode_candles(tokenizer_model, series[symbol])
        usage = code_usage(tokens["token"].to_numpy(), tokenizer_model.codebook_size) if len(tokens) else {}
        context.log.info(f"{symbol}: {len(series[symbol])} candles → {len(tokens)} tokens")
        metadata = {
            "rows": len(tokens),
            "candles": len(series[symbol]),
            "first_patch_end": format_ms(int(tokens["end_timestamp"].iloc[0])) if len(tokens) else "-",
            "last_patch_end": format_ms(int(tokens["end_timestamp"].iloc[-1])) if len(tokens) else "-",
            "codes_used": usage.get("codes_used", 0),
            "perplexity": dg.MetadataValue.float(float(usage.get("perplexity", 0.0))),
            "latent_dim": tokenizer_model.config.latent_dim,
            "tokenizer_model_name": tokenizer_model.fin_ia_lineage.name,
            "tokenizer_model_version": tokenizer_model.fin_ia_lineage.version,
            "tokenizer_run_id": tokenizer_model.fin_ia_lineage.run_id,
        }
        return dg.Output(tokens, metadata=metadata)

    return [tokenizer_model, token_sequences]
