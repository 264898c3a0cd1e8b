"""GPU work declared in one place (fin_ia_pipeline.compute) becomes an H100 pod through dagster-k8s's own code.

The pod spec is built with dagster-k8s's ``get_user_defined_k8s_config`` and ``construct_dagster_k8s_job`` — what
``k8s_job_executor`` calls for every step — from the op tags of the real asset definitions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

dagster_k8s_job = pytest.importorskip("dagster_k8s.job", reason="dagster-k8s (the k8s extra) is not installed")

from fin_ia_pipeline.compute import GpuPodSpec, gpu_asset_kwargs  # noqa: E402
from fin_ia_pipeline.definitions import build_definitions, executor_for  # noqa: E402
from fin_ia_pipeline.settings import PipelineSettings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GPU_ASSETS = ("tokenizer_model", "token_sequences", "jepa_encoder", "jepa_embeddings")


def step_pod(defs, asset: str):
    op = defs.resolve_assets_def(asset).op
    user_config = dagster_k8s_job.get_user_defined_k8s_config(op.tags)
    job_config = dagster_k8s_job.DagsterK8sJobConfig(job_image="fin-ia:gpu", dagster_home="/opt/dagster/dagster_home")
    job = dagster_k8s_job.construct_dagster_k8s_job(job_config, ["dagster", "api", "execute_step"],
                                                    f"dagster-step-{asset.replace('_', '-')}", user_config)
    return job.spec.template.spec


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    return build_definitions(PipelineSettings(home=str(tmp_path_factory.mktemp("k8s"))))


@pytest.mark.parametrize("asset", GPU_ASSETS)
def test_gpu_asset_pod_gets_a_gpu_the_h100_pool_and_the_toleration(defs, asset):
    pod = step_pod(defs, asset)
    (container,) = pod.containers
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert container.resources.requests["nvidia.com/gpu"] == "1"
    assert container.resources.limits["memory"] == "64Gi" and container.resources.requests["cpu"] == "8"
    assert pod.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-h100-80gb"}
    assert any(t.key == "nvidia.com/gpu" and t.effect == "NoSchedule" for t in pod.tolerations)
    assert defs.resolve_assets_def(asset).op.pool == "gpu"


def test_cpu_asset_pod_gets_none_of_it(defs):
    pod = step_pod(defs, "ohlcv_candles")
    (container,) = pod.containers
    assert not (container.resources and container.resources.limits and "nvidia.com/gpu" in container.resources.limits)
    assert not pod.node_selector and not pod.tolerations
    assert defs.resolve_assets_def("ohlcv_candles").op.pool is None


def test_pod_spec_is_configurable_from_the_environment():
    settings = PipelineSettings.from_env({"FIN_IA_GPU_NODE_VALUE": "nvidia-h200-141gb", "FIN_IA_GPU_COUNT": "2"})
    kwargs = gpu_asset_kwargs(settings)
    config = kwargs["op_tags"]["dagster-k8s/config"]
    assert config["pod_spec_config"]["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-h200-141gb"}
    assert config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert GpuPodSpec.from_settings(PipelineSettings()).gpus == 1  # the default is untouched
    assert "gpu" in kwargs["kinds"] and kwargs["tags"] == {"fin_ia/compute": "gpu"}  # visible in graph and catalog


def test_nothing_outside_compute_mentions_gpus():
    """One source of truth: no other pipeline module names the GPU pool, the k8s GPU resource or the H100 pool."""
    offenders = []
    for path in (REPO / "fin_ia_pipeline").rglob("*.py"):
        if path.name == "compute.py":
            continue
        text = path.read_text()
        for word in ("nvidia.com/gpu", "gke-accelerator", "pool=", "gpu_pool", "dagster-k8s/config"):
            if word in text.lower():
                offenders.append(f"{path.relative_to(REPO)}: {word}")
    assert not offenders, offenders


def test_executor_choice():
    import dagster as dg
    from dagster_k8s import k8s_job_executor

    assert executor_for(PipelineSettings(executor="k8s")) is k8s_job_executor
    assert executor_for(PipelineSettings()) is dg.in_process_executor
    assert executor_for(PipelineSettings(executor="multiprocess")) is dg.multiprocess_executor
    with pytest.raises(ValueError, match="FIN_IA_EXECUTOR"):
        PipelineSettings(executor="slurm")


def test_local_instance_limits_the_gpu_pool():
    import yaml

    config = yaml.safe_load((REPO / "dagster_home" / "dagster.yaml").read_text())
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "op"}


def test_resumable_training_retries_only_preemption_and_cleans_up_after_success(tmp_path):
    """The shared preemption wrapper: TrainingPreempted → a Dagster retry (the checkpoint stays for the resume);
    any other error propagates unchanged and keeps the checkpoint too (a retry after e.g. an MLflow outage resumes
    instead of retraining); only a block that succeeds removes the resumable state. Keyed by the root run, so a
    re-execution of a failed run finds it."""
    import types

    import dagster as dg

    from fin_ia_models.utils.preemption import TrainingPreempted
    from fin_ia_pipeline.compute import resumable_training, training_checkpoint_dir

    context = types.SimpleNamespace(run=types.SimpleNamespace(run_id="run-1", root_run_id=None),
                                    asset_key=dg.AssetKey("tokenizer_model"))
    where = training_checkpoint_dir(str(tmp_path), context)
    with pytest.raises(dg.RetryRequested):
        with resumable_training(context, str(tmp_path)) as checkpoint_dir:
            checkpoint_dir.mkdir(parents=True)
            (checkpoint_dir / "last.ckpt").write_text("state")
            raise TrainingPreempted(checkpoint_dir / "last.ckpt", 7)
    assert (where / "last.ckpt").exists()
    with pytest.raises(ValueError, match="tracking store down"):
        with resumable_training(context, str(tmp_path)) as checkpoint_dir:
            raise ValueError("tracking store down")
    assert (where / "last.ckpt").exists()
    reexecution = types.SimpleNamespace(run=types.SimpleNamespace(run_id="run-2", root_run_id="run-1"),
                                        asset_key=dg.AssetKey("tokenizer_model"))
    with resumable_training(reexecution, str(tmp_path)) as checkpoint_dir:
        assert checkpoint_dir == where and (checkpoint_dir / "last.ckpt").exists()
    assert not where.exists()
