"""GPU work is declared here and nowhere else.

``gpu_asset_kwargs()`` gives a GPU-worthy asset its Dagster ``pool`` (``gpu``: the instance limits it to the GPUs
present, see dagster_home/dagster.yaml), ``kinds`` and the ``dagster-k8s/config`` op tag that the
``k8s_job_executor`` turns into a pod on the H100 node pool: a ``nvidia.com/gpu`` limit, CPU/memory requests and
limits, a node selector and a toleration for the GPU taint. CPU assets use none of it. Training code picks CUDA when
it is there (``fin_ia_models.utils.device``) and falls back to CPU, so the same asset runs on a laptop.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

GPU_POOL = "gpu"


@dataclass(frozen=True)
class GpuPodSpec:
    """What a GPU step's pod asks Kubernetes for. Defaults fit one H100 80GB on GKE; override by environment."""

    gpus: int = 1  # whole GPUs per step; training uses one device per pod
    cpu: str = "8"  # request = limit: data loading and Lightning workers
    memory: str = "64Gi"  # request = limit: candles + replay of token sequences fit easily
    node_selector_key: str = "cloud.google.com/gke-accelerator"  # GKE's accelerator label
    node_selector_value: str = "nvidia-h100-80gb"  # the H100 node pool

    @classmethod
    def from_env(cls) -> "GpuPodSpec":
        return cls(
            gpus=int(os.environ.get("FIN_IA_GPU_COUNT", "1")),
            cpu=os.environ.get("FIN_IA_GPU_POD_CPU", "8"),
            memory=os.environ.get("FIN_IA_GPU_POD_MEMORY", "64Gi"),
            node_selector_key=os.environ.get("FIN_IA_GPU_NODE_LABEL", "cloud.google.com/gke-accelerator"),
            node_selector_value=os.environ.get("FIN_IA_GPU_NODE_VALUE", "nvidia-h100-80gb"),
        )

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
    """Where a training step checkpoints: keyed by Dagster run id (a retried step keeps it, so it resumes) and asset.

    It lives under FIN_IA_HOME, a local disk or a volume that outlives the pod (see deploy/), not the step's tmp dir.
    """
    return Path(home) / "checkpoints" / context.run.run_id / context.asset_key.to_user_string().replace("/", "__")


def train_resumably(context, home: str, train, *args, checkpoint_every_n_steps: int, **kwargs):
    """Run a library training entry point (``train_tokenizer``, ``train_jepa``) preemption-safe.

    It checkpoints every ``checkpoint_every_n_steps`` and on SIGTERM into ``training_checkpoint_dir``. A spot GPU
    reclaimed mid-run (``TrainingPreempted``) becomes a Dagster retry of the step, which resumes from that checkpoint;
    any other error fails the step at once. After success the resumable state is deleted.
    """
    import dagster as dg

    from fin_ia_models.utils.preemption import TrainingPreempted

    checkpoints = training_checkpoint_dir(home, context)
    try:
        result = train(*args, checkpoint_dir=checkpoints, checkpoint_every_n_steps=checkpoint_every_n_steps, **kwargs)
    except TrainingPreempted as err:
        raise dg.RetryRequested(max_retries=3, seconds_to_wait=30) from err
    shutil.rmtree(checkpoints, ignore_errors=True)
    return result


def gpu_asset_kwargs(spec: GpuPodSpec | None = None) -> dict:
    """Keyword arguments for ``@dg.asset`` that mark it as GPU work."""
    spec = spec or GpuPodSpec.from_env()
    return {"pool": GPU_POOL, "kinds": {"pytorch"}, "op_tags": {"dagster-k8s/config": spec.k8s_config()}}
