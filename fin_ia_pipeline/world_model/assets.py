"""Strate II assets: ``jepa_encoder`` (Fin-JEPA trained on token sequences) and ``jepa_embeddings`` (per symbol)."""

import tempfile

import dagster as dg
import numpy as np
import pandas as pd
import torch

from fin_ia_models.config import time_split_for
from fin_ia_models.data.schema import format_ms
from fin_ia_models.evaluation.plots import loss_curve_png, markdown_image
from fin_ia_models.tokenizer.model import TokenizerModel
from fin_ia_models.world_model.config import ExoClockConfig, jepa_profile
from fin_ia_models.world_model.embed import embed_sequence
from fin_ia_models.world_model.jepa import FinJEPA
from fin_ia_models.world_model.report import probe_scores
from fin_ia_models.world_model.sequences import latent_columns
from fin_ia_models.world_model.train import train_jepa
from fin_ia_models.tracking.datasets import dataset_ref
from fin_ia_models.tracking.runs import flatten
from fin_ia_pipeline.compute import gpu_asset_kwargs, train_resumably
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tokenizer.candles import series_by_symbol
from fin_ia_pipeline.tracking.resource import MlflowResource, model_metadata
from fin_ia_pipeline.world_model.inputs import exo_by_symbol, in_window, tokens_by_symbol

WORLD_MODEL = "world_model"
CANDLES = dg.AssetKey("ohlcv_candles")


class JepaEncoderConfig(dg.Config):
    """Run config of ``jepa_encoder``; unset fields take the pipeline settings."""

    profile: str | None = None  # "demo" or "full"; default FIN_IA_PROFILE
    seed: int | None = None  # default FIN_IA_SEED
    exo_clock: bool = True  # v6: dt modulated by realized volatility and volume; False = v1 plain Mamba-2 clock
    use_latents: bool = True  # feed Strate I's continuous latents next to the token embedding
    max_steps: int | None = None  # override the profile's optimizer steps (quick runs)
    seq_len: int | None = None  # override the profile's training window length in tokens (short histories)
    checkpoint_every_n_steps: int = 200  # resumable checkpoint cadence (and one on SIGTERM, always)


def _extras(frame: pd.DataFrame, exo: pd.DataFrame | None, config, length: int) -> tuple:
    """(latents, exo) tensors of the first ``length`` rows of ``frame``, as the context encoder takes them."""
    latents = None
    if config.n_latent:
        latents = torch.as_tensor(frame.filter(like="latent_").to_numpy(np.float32)[None, :length])
    exo_t = None
    if exo is not None:
        exo_t = torch.as_tensor(exo[["exo_vol", "exo_volume"]].to_numpy(np.float32)[None, :length])
    return latents, exo_t


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
        **gpu_asset_kwargs(),
    )
    def jepa_encoder(
        context: dg.AssetExecutionContext, config: JepaEncoderConfig, mlflow: MlflowResource, token_sequences: dict,
        tokenizer_model: TokenizerModel, ohlcv_candles: dict,
    ) -> dg.Output[FinJEPA]:
        profile = config.profile or settings.profile
        seed = settings.seed if config.seed is None else config.seed
        split = settings.time_split() if profile == settings.profile else time_split_for(profile)
        tokens = tokens_by_symbol(token_sequences)
        n_latent = len(latent_columns(next(iter(tokens.values())))) if config.use_latents else 0
        base = jepa_profile(profile)
        overrides = {"vocab_size": tokenizer_model.codebook_size, "n_latent": n_latent,
                     "mixer": base.mixer.__class__(**{**base.mixer.__dict__,
                                                      "exo": ExoClockConfig(enabled=config.exo_clock)})}
        if config.max_steps is not None:
            overrides["max_steps"] = config.max_steps
        if config.seq_len is not None:
            overrides["seq_len"] = config.seq_len
        jepa_config = jepa_profile(profile, **overrides)
        candles = series_by_symbol(ohlcv_candles)
        exo = exo_by_symbol(tokens, candles, tokenizer_model.config.patch_len) if config.exo_clock else None
        train_start, _ = split.range_ms("train")
        _, train_end = split.range_ms("val")
        train_tokens = {s: in_window(f, train_start, train_end) for s, f in tokens.items()}
        context.log.info(f"training Fin-JEPA ({profile}, exo-clock {'on' if config.exo_clock else 'off'}) on "
                         + ", ".join(f"{s}: {len(f)} tokens" for s, f in train_tokens.items()))
        with tempfile.TemporaryDirectory() as tmp:
            result = train_resumably(context, settings.home, train_jepa,
                                     train_tokens, jepa_config, seed, tmp, exo=exo,
                                     checkpoint_every_n_steps=config.checkpoint_every_n_steps)
        scores = probe_scores(result.model, tokens, exo, candles, split)
        context.log.info("probes on the test window: " + ", ".join(f"{k}={v:.4g}" for k, v in scores.items()))
        tok = tokenizer_model.fin_ia_lineage
        storage = str(settings.storage_root)
        test_start, test_end = split.range_ms("test")
        first_symbol = next(iter(train_tokens))
        first = train_tokens[first_symbol]
        example_tokens = first["token"].to_numpy(np.int64)[None, : min(32, len(first))].copy()  # (1, L), writable
        first_exo = None if exo is None else exo[first_symbol]
        with torch.no_grad():
            example_out = result.model.context_encoder(torch.as_tensor(example_tokens),
                                                       *_extras(first, first_exo, jepa_config, example_tokens.shape[1]))
        logged = mlflow.log_model(
            context, experiment="fin-ia-jepa", model_name="fin-ia-jepa", model=result.model,
            params={**flatten(jepa_config), "seed": str(seed), "profile": profile, **flatten(split, "split.")},
            history=result.history,
            final_metrics={**{f"probe_{k}": v for k, v in scores.items()},
                           **{f"collapse_{k}": v for k, v in result.collapse.as_dict().items()},
                           "tokens_per_s": result.tokens_per_s},
            datasets=[
                dataset_ref("token_sequences", train_tokens, "end_timestamp", settings.timeframe,
                            storage + "/frames/token_sequences", "training",
                            {"tokenizer_model": f"{tok.name}/{tok.version}"}),
                dataset_ref("token_sequences", {s: in_window(f, test_start, test_end) for s, f in tokens.items()},
                            "end_timestamp", settings.timeframe, storage + "/frames/token_sequences", "evaluation",
                            {"tokenizer_model": f"{tok.name}/{tok.version}"}),
                dataset_ref("ohlcv_candles", candles, "timestamp", settings.timeframe, storage + "/ohlcv_candles",
                            "exo_signals_and_probe_targets"),
            ],
            upstream=[tok], input_example=example_tokens, output_example=example_out.numpy(),
        )
        curve = loss_curve_png(result.history, ["loss", "jepa"], "Fin-JEPA training loss", xlabel="step")
        metadata = {
            "profile": profile,
            "seed": seed,
            "device": result.device,
            "exo_clock": config.exo_clock,
            "train_window": f"{split.train_start} … {split.val_end}",
            "test_window": f"{split.test_start} … {split.test_end}",
            "steps": jepa_config.max_steps,
            "tokens_per_s": dg.MetadataValue.float(round(result.tokens_per_s, 1)),
            "final_loss": dg.MetadataValue.float(result.history[-1]["loss"]),
            **{f"collapse_{k}": dg.MetadataValue.float(float(v)) for k, v in result.collapse.as_dict().items()},
            **{f"probe_{k}": dg.MetadataValue.float(float(v)) for k, v in scores.items()},
            "loss_curve": dg.MetadataValue.md(markdown_image(curve, "loss curve")),
            "tokenizer_model_version": f"{tok.name}/{tok.version}",
            **model_metadata(logged),
        }
        return dg.Output(result.model, metadata=metadata)

    @dg.asset(
        group_name=WORLD_MODEL,
        partitions_def=symbol_partitions,
        ins={"jepa_encoder": dg.AssetIn(), "token_sequences": dg.AssetIn(), "tokenizer_model": dg.AssetIn(),
             "ohlcv_candles": symbol_candles},
        io_manager_key="frame_io_manager",
        code_version="1",
        automation_condition=dg.AutomationCondition.eager(),
        description="Per-token context embedding of the symbol's token sequence; causal: row t uses tokens ≤ t.",
        **gpu_asset_kwargs(),
    )
    def jepa_embeddings(
        context: dg.AssetExecutionContext, jepa_encoder: FinJEPA, token_sequences: pd.DataFrame,
        tokenizer_model: TokenizerModel, ohlcv_candles: dict,
    ) -> dg.Output[pd.DataFrame]:
        symbol = context.partition_key
        exo = None
        if jepa_encoder.config.mixer.exo.enabled:
            candles = series_by_symbol(ohlcv_candles)
            exo = exo_by_symbol({symbol: token_sequences}, candles, tokenizer_model.config.patch_len)[symbol]
        emb = embed_sequence(jepa_encoder, token_sequences, exo)
        context.log.info(f"{symbol}: {len(emb)} embeddings of width {jepa_encoder.config.mixer.d_model}")
        return dg.Output(emb, metadata={
            "rows": len(emb),
            "dim": jepa_encoder.config.mixer.d_model,
            "first_end": format_ms(int(emb["end_timestamp"].iloc[0])) if len(emb) else "-",
            "last_end": format_ms(int(emb["end_timestamp"].iloc[-1])) if len(emb) else "-",
            "jepa_model_version": f"{jepa_encoder.fin_ia_lineage.name}/{jepa_encoder.fin_ia_lineage.version}",
            "tokenizer_model_version": f"{tokenizer_model.fin_ia_lineage.name}/{tokenizer_model.fin_ia_lineage.version}",
        })

    return [jepa_encoder, jepa_embeddings]

