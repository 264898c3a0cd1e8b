"""GPU work is declared here and nowhere else.

``gpu_asset_kwargs(settings)`` gives a GPU-worthy asset its Dagster ``pool`` (``gpu``: the instance limits it to the
GPUs present, see dagster_home/dagster.yaml), the kind ``gpu`` (shown on the asset in the graph and the catalog),
the tag ``fin_ia/compute=gpu`` and the ``dagster-k8s/config`` op tag that the ``k8s_job_executor`` turns into a pod on
the H100 node pool: a ``nvidia.com/gpu`` limit, CPU/memory requests and limits, a node selector and a toleration for
the GPU taint. CPU assets use none of it. Training code picks CUDA when it is there (``fin_ia_models.utils.device``)
and falls back to CPU, so the same asset runs on a laptop.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GPU_POOL = "gpu"
GPU_KIND = "gpu"


@dataclass(frozen=True)
class GpuPodSpec:
    """What a GPU step's pod asks Kubernetes for. The defaults fit one H100 80GB on GKE; the pipeline settings
    (FIN_IA_GPU_*) carry the values a deployment chooses."""

    gpus: int = 1  # whole GPUs per step; training uses one device per pod
    cpu: str = "8"  # request = limit: data loading and Lightning workers
    memory: str = "64Gi"  # request = limit: candles + replay of token sequences fit easily
    node_selector_key: str = "cloud.google.com/gke-accelerator"  # GKE's accelerator label
    node_selector_value: str = "nvidia-h100-80gb"  # the H100 node pool

    @classmethod
    def from_settings(cls, settings) -> "GpuPodSpec":
        return cls(settings.gpu_count, settings.gpu_pod_cpu, settings.gpu_pod_memory, settings.gpu_node_label,
                   settings.gpu_node_value)

    def k8s_config(self) -> dict:
        resources = {"cpu": self.cpu, "memory": self.memory, "nvidia.com/gpu": str(self.gpus)}
        return {
            "container_config": {"resources": {"requests": dict(resources), "limits": dict(resources)}},
            "pod_spec_config": {
                "node_selector": {self.node_selector_key: self.node_selector_value},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            },
        }


def training_checkpoint_dir(home: str, context) -> Path:
    """Where a training step checkpoints: keyed by the Dagster run (its root run, so a retried step and a
    re-execution of a failed run both find it and resume) and the asset.

    It lives under FIN_IA_HOME, a local disk or a volume that outlives the pod (see deploy/), not the step's tmp dir.
    """
    run_id = getattr(context.run, "root_run_id", None) or context.run.run_id
    return Path(home) / "checkpoints" / run_id / context.asset_key.to_user_string().replace("/", "__")


@contextmanager
def resumable_training(context, home: str):
    """Yield the step's checkpoint folder for a library training entry point (``checkpoint_dir=...``).

    A spot GPU reclaimed mid-run (``TrainingPreempted``, raised after a checkpoint on SIGTERM) becomes a Dagster
    retry of the step, which resumes from that checkpoint; any other error fails the step at once and keeps the
    checkpoint too (a retry after e.g. an unreachable tracking server resumes a finished training instead of
    training again). Only when the whole block succeeds — trained AND logged — is the resumable state deleted.
    """
    import dagster as dg

    from fin_ia_models.utils.preemption import TrainingPreempted

    checkpoints = training_checkpoint_dir(home, context)
    try:
        yield checkpoints
    except TrainingPreempted as err:
        raise dg.RetryRequested(max_retries=3, seconds_to_wait=30) from err
    shutil.rmtree(checkpoints, ignore_errors=True)


def gpu_asset_kwargs(settings, kinds: tuple[str, ...] = ("pytorch",)) -> dict:
    """Keyword arguments for ``@dg.asset`` that mark it as GPU work (plus the asset's own ``kinds``)."""
    return {"pool": GPU_POOL, "kinds": {*kinds, GPU_KIND}, "tags": {"fin_ia/compute": GPU_KIND},
            "op_tags": {"dagster-k8s/config": GpuPodSpec.from_settings(settings).k8s_config()}}
