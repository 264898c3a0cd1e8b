"""Strate IV assets: ``ppo_agent`` (PPO, stable-baselines3) and ``cvar_planner_agent`` (TD-MPC2-style MPPI planner
optimising the CVaR 5 % over the multiverse's futures), trained on every symbol's training window and chosen on its
validation window. Each is one MLflow run, registered as ``fin-ia-agent-ppo`` / ``fin-ia-agent-cvar`` (alias
``candidate``) with lineage to the multiverse, Fin-JEPA and tokenizer versions that made its inputs.

Bodies only wire: the work is ``fin_ia_models.agents.stage`` (imported inside the bodies)."""


import dagster as dg

from fin_ia_models.tracking.runs import flatten
from fin_ia_pipeline.agents.inputs import chain_versions, lineage_metadata, upstream_models
from fin_ia_pipeline.compute import gpu_asset_kwargs
from fin_ia_pipeline.settings import PipelineSettings
from fin_ia_pipeline.tracking.resource import MlflowResource
from fin_ia_pipeline.training import ModelStage, TrainingRunConfig, train_and_register

AGENTS = "agents"
PPO_STAGE = ModelStage.named("agent-ppo", kind="ppo_policy")
CVAR_STAGE = ModelStage.named("agent-cvar", kind="cvar_planner")
AGENT_STAGES = {"ppo_agent": PPO_STAGE, "cvar_planner_agent": CVAR_STAGE}
CANDLES = dg.AssetKey("ohlcv_candles")


class PPOAgentConfig(TrainingRunConfig):
    """Run config of ``ppo_agent``; unset fields take the pipeline settings and the profile's sizes."""

    total_timesteps: int | None = None  # override the profile's env steps (quick runs)


class CVaRAgentConfig(TrainingRunConfig):
    """Run config of ``cvar_planner_agent``; unset fields take the pipeline settings and the profile's sizes."""

    max_steps: int | None = None  # override the profile's gradient steps
    eval_every_n_steps: int | None = None  # override the profile's validation cadence


def agent_trials(tracking_uri: str):
    """Every agent training run so far (``fin_ia_models.tracking.trials``) in the agent experiments that exist."""
    from fin_ia_models.agents.stage import TRIAL_METRIC
    from fin_ia_models.tracking.runs import mlflow_client
    from fin_ia_models.tracking.trials import trial_sharpes

    client = mlflow_client(tracking_uri)
    names = [s.experiment for s in AGENT_STAGES.values() if client.get_experiment_by_name(s.experiment) is not None]
    if not names:
        raise ValueError(f"no agent experiment ({', '.join(s.experiment for s in AGENT_STAGES.values())}) at "
                         f"{tracking_uri}: train an agent first")
    return trial_sharpes(tracking_uri, names, TRIAL_METRIC)


def _progress(context: dg.AssetExecutionContext, name: str):
    """A history-row callback that puts the training's progress in the Dagster run log."""
    def log(row: dict) -> None:
        at = (f"{int(row['timesteps'])} env steps, {int(row['episodes'])} episodes, mean episode reward "
              f"{row['train_mean_episode_reward']:.4f}" if "timesteps" in row
              else f"step {int(row['step'])}, critic loss {row['critic_loss']:.4f}")
        context.log.info(f"{name}: {at}; validation net reward {row['val_net_reward']:+.4f}, Sharpe "
                         f"{row['val_sharpe']:.2f}, CVaR5% {row['val_cvar05']:.5f}"
                         + (" (best so far)" if row.get("kept") else ""))
    return log


def build_agent_assets(settings: PipelineSettings) -> list[dg.AssetsDefinition]:
    all_candles = dg.AssetIn(key=CANDLES, metadata={"allow_missing_partitions": True})
    ins = {"jepa_embeddings": dg.AssetIn(), "multiverse_trajectories": dg.AssetIn(), "ohlcv_candles": all_candles}

    def train(context, config, mlflow: MlflowResource, stage: ModelStage, fit, model_config, jepa_embeddings,
              multiverse_trajectories, ohlcv_candles) -> dg.Output:
        from fin_ia_models.agents.stage import agent_windows
        from fin_ia_models.data.series import series_by_symbol

        profile, seed, split = config.resolve(settings)
        versions = chain_versions(context.instance, multiverse_trajectories)
        windows = agent_windows(jepa_embeddings, multiverse_trajectories, series_by_symbol(ohlcv_candles), split)
        output = train_and_register(
            context, settings.home, mlflow, stage, fit, upstream=upstream_models(mlflow.tracking_uri, versions),
            facts={"profile": profile, **flatten(split, "split."), **lineage_metadata(versions)},
            checkpoint_every_n_steps=config.checkpoint_every_n_steps, windows=windows, split=split,
            config=model_config, seed=seed, log=_progress(context, context.asset_key.to_user_string()))
        trials = agent_trials(mlflow.tracking_uri)  # after the run ended: it counts itself
        context.log.info(f"{trials.n} agent training runs so far in {', '.join(s.experiment for s in AGENT_STAGES.values())}"
                         + (f" ({trials.n_unfinished} unfinished)" if trials.n_unfinished else ""))
        return dg.Output(output.value, metadata={**output.metadata, "trials_so_far": trials.n,
                                                 "unfinished_trials": trials.n_unfinished})

    @dg.asset(
        group_name=AGENTS, ins=ins, io_manager_key="model_io_manager", code_version="1",
        description="Strate IV: PPO (stable-baselines3) on the latent trading env over every symbol's training "
        "window (JEPA embedding, multiverse summary, past returns, position → target position in [−1, 1], 10 + 5 "
        "bps costs), parameters chosen on validation; registered as the SB3 policy's tensors (no pickle).",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "mlflow")),
    )
    def ppo_agent(context: dg.AssetExecutionContext, config: PPOAgentConfig, mlflow: MlflowResource,
                  jepa_embeddings: dict, multiverse_trajectories: dict, ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.agents.profiles import ppo_profile
        from fin_ia_models.agents.stage import fit_ppo_agent

        profile = config.resolve(settings)[0]
        overrides = {} if config.total_timesteps is None else {"total_timesteps": config.total_timesteps}
        return train(context, config, mlflow, PPO_STAGE, fit_ppo_agent, ppo_profile(profile, **overrides),
                     jepa_embeddings, multiverse_trajectories, ohlcv_candles)

    @dg.asset(
        group_name=AGENTS, ins=ins, io_manager_key="model_io_manager", code_version="1",
        description="Strate IV: TD-MPC2-style MPPI planner whose rollouts are the multiverse's sampled futures and "
        "whose objective is their CVaR 5 %, with quantile critics (TD) and a policy prior, trained on every symbol's "
        "training window, chosen on validation.",
        **gpu_asset_kwargs(settings, kinds=("pytorch", "mlflow")),
    )
    def cvar_planner_agent(context: dg.AssetExecutionContext, config: CVaRAgentConfig, mlflow: MlflowResource,
                           jepa_embeddings: dict, multiverse_trajectories: dict, ohlcv_candles: dict) -> dg.Output:
        from fin_ia_models.agents.profiles import cvar_planner_profile
        from fin_ia_models.agents.stage import fit_cvar_planner_agent

        profile = config.resolve(settings)[0]
        overrides = {k: v for k, v in (("max_steps", config.max_steps),
                                       ("eval_every_n_steps", config.eval_every_n_steps)) if v is not None}
        return train(context, config, mlflow, CVAR_STAGE, fit_cvar_planner_agent,
                     cvar_planner_profile(profile, **overrides), jepa_embeddings, multiverse_trajectories,
                     ohlcv_candles)

    return [ppo_agent, cvar_planner_agent]
