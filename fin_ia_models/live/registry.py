"""Load the ``ModelStack`` of a registered agent: the agent version named by ``NAME@ALIAS`` / ``NAME/VERSION``, and
the exact multiverse, Fin-JEPA and tokenizer versions of its lineage (``fin_ia.upstream.{i}.model`` tags, walked by
``tracking.lineage.resolve_lineage``). Every file goes through ``load_registered_model`` (SHA-256 checked, any
registered kind), so a new agent kind works here as soon as it is in ``MODEL_KINDS``. A Fin-JEPA or tokenizer absent
from the tags is taken from the versions the multiverse recorded it was trained on; a disagreement is an error."""

from __future__ import annotations

from fin_ia_models.live.stack import ModelStack
from fin_ia_models.tracking.lineage import ModelNode, resolve_lineage
from fin_ia_models.tracking.runs import load_registered_model


class StackError(ValueError):
    """The lineage of an agent does not give one consistent tokenizer / Fin-JEPA / multiverse / agent stack."""


def _walk(node: ModelNode) -> list[ModelNode]:
    out, todo, seen = [], list(node.upstream), set()
    while todo:
        item = todo.pop(0)
        key = f"{item.name}/{item.version}"
        if key not in seen:
            seen.add(key)
            out.append(item)
            todo.extend(item.upstream)
    return out


def _role(model) -> str | None:
    from fin_ia_models.multiverse.model import MultiverseModel
    from fin_ia_models.tokenizer.model import TokenizerModel
    from fin_ia_models.world_model.jepa import FinJEPA

    for role, cls in (("multiverse", MultiverseModel), ("jepa", FinJEPA), ("tokenizer", TokenizerModel)):
        if isinstance(model, cls):
            return role
    return None


def load_stack(tracking_uri: str, spec: str, seed: int = 0, n_futures: int | None = None) -> ModelStack:
    """The stack of the agent ``spec`` (module docstring); ``seed``: the multiverse sampling seed of the batch path."""
    root = resolve_lineage(tracking_uri, spec)
    agent = load_registered_model(tracking_uri, f"models:/{root.name}/{root.version}")
    if not hasattr(agent, "act") or not hasattr(agent, "normalizer"):
        raise StackError(f"{root.name}/{root.version} ({type(agent).__name__}) is not a trading agent")
    models, versions = {}, {"agent": f"{root.name}/{root.version}"}
    for node in _walk(root):
        model = load_registered_model(tracking_uri, f"models:/{node.name}/{node.version}")
        role = _role(model)
        if role is None:
            continue
        if role in models and versions[role] != f"{node.name}/{node.version}":
            raise StackError(f"the lineage of {spec} holds two {role} versions: {versions[role]} and "
                             f"{node.name}/{node.version}")
        models[role], versions[role] = model, f"{node.name}/{node.version}"
    if "multiverse" not in models:
        raise StackError(f"no multiverse in the lineage of {spec} ({versions['agent']}): register the agent with "
                         "its multiverse as an upstream model")
    mv = models["multiverse"].config
    for role, recorded in (("tokenizer", mv.tokenizer_version), ("jepa", mv.jepa_version)):
        if role not in models:
            models[role] = load_registered_model(tracking_uri, f"models:/{recorded}")
            versions[role] = recorded
        elif versions[role] != recorded:
            raise StackError(f"{spec}: the lineage's {role} {versions[role]} is not the {recorded} its multiverse "
                             f"{versions['multiverse']} was trained on")
    return ModelStack(models["tokenizer"], models["jepa"], models["multiverse"], agent, seed=seed,
                      n_futures=n_futures, versions=versions)


def shadow_specs(tracking_uri: str, names: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """(role, "name/version") of each registered agent ``names``: its @champion and, when it is another version,
    its @candidate. Names not registered, or without those aliases, are left out (the caller says so)."""
    from mlflow.exceptions import MlflowException

    from fin_ia_models.tracking.runs import mlflow_client

    client = mlflow_client(tracking_uri)
    out: list[tuple[str, str]] = []
    for name in names:
        found = {}
        for role in ("champion", "candidate"):
            try:
                found[role] = str(client.get_model_version_by_alias(name, role).version)
            except MlflowException:  # no such model or alias: nothing to shadow for this role
                continue
        if "champion" in found:
            out.append(("champion", f"{name}/{found['champion']}"))
        if "candidate" in found and found.get("candidate") != found.get("champion"):
            out.append(("candidate", f"{name}/{found['candidate']}"))
    return out
