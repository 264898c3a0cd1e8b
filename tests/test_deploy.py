"""Static checks of deploy/: the files parse and agree with each other and with the code.

No Docker engine, cluster or helm binary is needed (none exists on the development machine): YAML is parsed with
PyYAML, Dagster instance and workspace files are validated with Dagster's own config schemas, and names, ports,
images and environment variables are cross-checked against the source (fin_ia_pipeline, pyproject.toml, Makefile).
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
HELM = DEPLOY / "helm" / "dagster-values.yaml"
MLFLOW_K8S = DEPLOY / "k8s" / "mlflow.yaml"
COMPOSE_INSTANCE = DEPLOY / "dagster.compose.yaml"
COMPOSE_WORKSPACE = DEPLOY / "workspace.compose.yaml"
DOCKERFILES = {"cpu": DEPLOY / "Dockerfile", "gpu": DEPLOY / "Dockerfile.gpu"}
README = DEPLOY / "README.md"
CODE_MODULE = "fin_ia_pipeline.definitions"

# os.environ.get("X"), env.get("X"), os.environ["X"], os.getenv("X"), dg.EnvVar("X")
_ENV_READ = re.compile(r"""(?:environ|env)\s*(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']|(?:getenv|EnvVar)\(\s*["']([A-Z][A-Z0-9_]*)["']""")


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def env_vars_read_by_code() -> set[str]:
    """Every environment variable name the project's Python code reads (fin_ia_pipeline and fin_ia_models): the
    variables the settings object declares, plus any read directly with os.environ / os.getenv."""
    import dataclasses

    from fin_ia_pipeline.settings import PipelineSettings

    names: set[str] = {f.metadata["env"] for f in dataclasses.fields(PipelineSettings) if "env" in f.metadata}
    for package in ("fin_ia_pipeline", "fin_ia_models"):
        for source in (REPO / package).rglob("*.py"):
            for match in _ENV_READ.finditer(source.read_text()):
                names.add(match.group(1) or match.group(2))
    return names


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1] if " " in text else "") for text in logical]


def dockerfile_cmd(path: Path) -> list[str]:
    cmds = [args for instr, args in dockerfile_instructions(path) if instr == "CMD"]
    assert len(cmds) == 1, f"{path.name}: expected one CMD, found {len(cmds)}"
    return yaml.safe_load(cmds[0])  # exec form is a JSON list


def flag_value(argv: list[str], *flags: str) -> str:
    for i, arg in enumerate(argv[:-1]):
        if arg in flags:
            return argv[i + 1]
    raise AssertionError(f"none of {flags} in {argv}")


def compose_services() -> dict:
    return _load(COMPOSE)["services"]


def compose_env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "compose environment blocks are written as mappings"
    return {k: str(v) for k, v in env.items()}


def compose_default(value: str) -> str:
    """The value compose substitutes when the variable is unset: ${NAME:-default} -> default."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def helm_user_deployment() -> dict:
    deployments = _load(HELM)["dagster-user-deployments"]["deployments"]
    assert len(deployments) == 1
    return deployments[0]


def helm_env() -> dict[str, str]:
    env = helm_user_deployment()["env"]
    return {k: str(v) for k, v in env.items()}


def k8s_docs() -> list[dict]:
    return [doc for doc in yaml.safe_load_all(MLFLOW_K8S.read_text()) if doc]


def fin_ia_services() -> dict:
    """The compose services that run the fin-ia image."""
    return {name: s for name, s in compose_services().items() if str(s.get("image", "")).startswith("fin-ia:")}


# --- parsing and schema validity ---------------------------------------------------------------------------------

def test_every_yaml_file_under_deploy_parses():
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert {COMPOSE, HELM, MLFLOW_K8S, COMPOSE_INSTANCE, COMPOSE_WORKSPACE} <= set(files)
    for path in files:
        docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        assert docs, f"{path} is empty"
        assert all(isinstance(doc, dict) for doc in docs), f"{path}: every document must be a mapping"


def test_instance_files_validate_against_dagster_schema():
    from dagster._core.instance.config import dagster_instance_config_schema, validate_config

    for path in (COMPOSE_INSTANCE, REPO / "dagster_home" / "dagster.yaml"):
        result = validate_config(dagster_instance_config_schema(), _load(path))
        assert result.success, f"{path}: {[e.message for e in result.errors]}"
    assert "postgres" in _load(COMPOSE_INSTANCE)["storage"]


def test_workspaces_validate_against_dagster_schema():
    from dagster._core.workspace.config_schema import ensure_workspace_config

    for path in (COMPOSE_WORKSPACE, REPO / "workspace.yaml"):
        ensure_workspace_config(_load(path), str(path))


def test_k8s_manifests_have_kind_and_name():
    docs = k8s_docs()
    assert {doc["kind"] for doc in docs} >= {"Deployment", "Service"}
    for doc in docs:
        assert doc["apiVersion"] and doc["metadata"]["name"]


# --- the code location: module, ports ----------------------------------------------------------------------------

def test_code_module_exists_and_defines_defs():
    """fin_ia_pipeline.definitions assigns `defs` at module level (parsed, not imported: importing takes seconds)."""
    source = REPO / Path(*CODE_MODULE.split(".")).with_suffix(".py")
    tree = ast.parse(source.read_text())
    assigned = {t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}
    assert "defs" in assigned
    local = _load(REPO / "workspace.yaml")["load_from"][0]["python_module"]
    assert (local["module_name"], local["attribute"]) == (CODE_MODULE, "defs")
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["tool"]["dagster"]["module_name"] == CODE_MODULE


def test_code_server_port_and_module_agree_everywhere():
    ports, modules = {}, {}
    for kind, path in DOCKERFILES.items():
        cmd = dockerfile_cmd(path)
        assert cmd[:3] == ["dagster", "api", "grpc"]
        exposed = [args for instr, args in dockerfile_instructions(path) if instr == "EXPOSE"]
        assert exposed == [flag_value(cmd, "-p", "--port")], f"{path.name}: EXPOSE {exposed} vs CMD {cmd}"
        ports[f"{kind} Dockerfile"] = int(flag_value(cmd, "-p", "--port"))
        modules[f"{kind} Dockerfile"] = flag_value(cmd, "-m", "--module-name")
        assert flag_value(cmd, "-h", "--host") == "0.0.0.0"

    user_code = compose_services()["user_code"]
    ports["compose user_code command"] = int(flag_value(user_code["command"], "-p", "--port"))
    modules["compose user_code command"] = flag_value(user_code["command"], "-m", "--module-name")
    assert str(ports["compose user_code command"]) in [str(p) for p in user_code.get("expose", [])]
    assert user_code["healthcheck"]["test"][-1] == str(ports["compose user_code command"])

    grpc = _load(COMPOSE_WORKSPACE)["load_from"][0]["grpc_server"]
    ports["workspace.compose.yaml"] = int(grpc["port"])
    assert grpc["host"] in compose_services(), f"workspace host {grpc['host']!r} is not a compose service"

    deployment = helm_user_deployment()
    ports["Helm user deployment"] = int(deployment["port"])
    modules["Helm dagsterApiGrpcArgs"] = flag_value(deployment["dagsterApiGrpcArgs"], "-m", "--module-name")

    assert set(ports.values()) == {4000}, ports
    assert set(modules.values()) == {CODE_MODULE}, modules


def test_compose_mounts_point_where_the_commands_look():
    for name, service in fin_ia_services().items():
        if name == "mlflow":
            continue
        mounts = {}
        for volume in service["volumes"]:
            source, target = volume.split(":")[:2]
            mounts[target] = source
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: bind source {source} missing"
        env = compose_env(service)
        assert mounts[env["DAGSTER_HOME"] + "/dagster.yaml"] == "./" + COMPOSE_INSTANCE.name
        command = service.get("command")
        if command and "-w" in command:
            assert mounts[flag_value(command, "-w")] == "./" + COMPOSE_WORKSPACE.name
        storage = env["FIN_IA_STORAGE"]
        assert any(storage.startswith(target + "/") for target, src in mounts.items() if not src.startswith(".")), \
            f"{name}: FIN_IA_STORAGE={storage} is not on a volume"


# --- environment variables ----------------------------------------------------------------------------------------

def test_code_env_scan_finds_known_reads():
    """Guards the regex below: if it stopped matching, the checks that use it would pass vacuously."""
    read = env_vars_read_by_code()
    assert {"FIN_IA_SOURCE", "FIN_IA_STORAGE", "FIN_IA_GPU_NODE_VALUE", "FIN_IA_GPU_COUNT"} <= read


def test_fin_ia_vars_set_in_deploy_are_read_by_the_code():
    read = env_vars_read_by_code()
    configured = {
        **{f"compose {svc}: {k}": k for svc, s in compose_services().items() for k in compose_env(s)},
        **{f"Helm: {k}": k for k in helm_env()},
        **{f"Dockerfile: {k}": k for p in DOCKERFILES.values() for instr, args in dockerfile_instructions(p)
           if instr == "ENV" for k in re.findall(r"(?:^|\s)([A-Z][A-Z0-9_]*)=", args)},
    }
    unknown = sorted(where for where, name in configured.items()
                     if (name.startswith("FIN_IA_") or name == "MLFLOW_TRACKING_URI") and name not in read)
    assert not unknown, f"set in deploy/ but read nowhere in fin_ia_pipeline / fin_ia_models: {unknown}"


def test_every_fin_ia_var_the_code_reads_is_documented():
    documented = set(re.findall(r"`(FIN_IA_[A-Z0-9_]+)`", README.read_text()))
    missing = sorted(name for name in env_vars_read_by_code() if name.startswith("FIN_IA_") and name not in documented)
    assert not missing, f"deploy/README.md's table lacks {missing}"


def test_helm_selects_k8s_executor_object_storage_and_tracking_server():
    env = helm_env()
    assert env["FIN_IA_EXECUTOR"] == "k8s"
    assert urlparse(env["FIN_IA_STORAGE"]).scheme in ("s3", "gs"), "pods share no disk: storage must be a bucket"
    values = _load(HELM)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["enabled"] is True
    assert values["dagster-user-deployments"]["enabled"] is True
    assert helm_user_deployment()["includeConfigInLaunchedRuns"]["enabled"] is True
    assert values["postgresql"]["postgresqlDatabase"] and values["global"]["postgresqlSecretName"]

    service = next(d for d in k8s_docs() if d["kind"] == "Service")
    tracking = urlparse(env["MLFLOW_TRACKING_URI"])
    assert tracking.hostname.split(".")[0] == service["metadata"]["name"]
    assert tracking.port == service["spec"]["ports"][0]["port"] == 5000


def test_mlflow_manifest_uses_postgres_from_a_secret_and_an_object_store():
    deployment = next(d for d in k8s_docs() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    argv = container["command"] + container["args"]
    assert argv[:2] == ["mlflow", "server"]
    assert urlparse(flag_value(argv, "--artifacts-destination")).scheme in ("s3", "gs")
    backend = next(e for e in container["env"] if e["name"] == "MLFLOW_BACKEND_STORE_URI")
    assert "secretKeyRef" in backend["valueFrom"]
    assert int(flag_value(argv, "--port")) == container["ports"][0]["containerPort"] == 5000


def test_gpu_settings_in_helm_produce_the_documented_node_selector():
    from fin_ia_pipeline.compute import GpuPodSpec
    from fin_ia_pipeline.settings import PipelineSettings

    gpu_env = {name: value for name, value in helm_env().items() if name.startswith("FIN_IA_GPU_")}
    config = GpuPodSpec.from_settings(PipelineSettings.from_env(gpu_env)).k8s_config()
    ((label, value),) = config["pod_spec_config"]["node_selector"].items()
    readme = README.read_text()
    assert f"`{label}:\n{value}`" in readme or f"`{label}: {value}`" in readme
    assert f"type={value}" in readme, "the node-pool example must create the accelerator the selector asks for"
    assert config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == helm_env()["FIN_IA_GPU_COUNT"]


# --- images and packages ------------------------------------------------------------------------------------------

def test_dockerfiles_install_existing_extras_and_copy_existing_files():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = set(pyproject["project"]["optional-dependencies"])
    expected = {"cpu": {"k8s"}, "gpu": {"gpu", "k8s"}}
    makefile_torch = re.search(r"^TORCH_SPEC \?= (\S+)", (REPO / "Makefile").read_text(), re.M).group(1)
    for kind, path in DOCKERFILES.items():
        text = path.read_text()
        installed = {e.strip() for group in re.findall(r"""["']?\.\[([a-z0-9_,\- ]+)\]""", text) for e in group.split(",")}
        assert installed == expected[kind], f"{path.name} installs extras {installed}"
        assert installed <= extras, f"{path.name}: extras {installed - extras} not in pyproject.toml"
        assert f'TORCH_SPEC="{makefile_torch}"' in text, f"{path.name}: torch differs from the Makefile's {makefile_torch}"
        for instr, args in dockerfile_instructions(path):
            if instr == "COPY" and "--from=" not in args:
                *sources, _ = shlex.split(args)
                for source in sources:
                    assert (REPO / source).exists(), f"{path.name}: COPY source {source} does not exist"
        assert any(instr == "USER" and args.split()[0] != "root" for instr, args in dockerfile_instructions(path))
    packages = {p.split("*")[0] for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    for kind, path in DOCKERFILES.items():
        copied = {shlex.split(a)[0] for i, a in dockerfile_instructions(path) if i == "COPY" and "--from=" not in a}
        assert packages <= copied, f"{path.name} does not copy {packages - copied}"


def test_image_names_match_the_readme():
    readme = README.read_text()
    built = dict(re.findall(r"docker build -f deploy/(Dockerfile(?:\.gpu)?) -t (\S+) \.", readme))
    assert built == {"Dockerfile": "fin-ia:cpu", "Dockerfile.gpu": "fin-ia:gpu"}, built
    services = fin_ia_services()
    assert {s["image"] for s in services.values()} == {built["Dockerfile"]}
    assert set(services) >= {"user_code", "webserver", "daemon", "mlflow"}
    assert compose_services()["user_code"]["build"]["dockerfile"] == "deploy/Dockerfile"

    pushed = dict((local, remote) for local, remote in re.findall(r"docker tag (\S+) (\S+) && docker push \2", readme))
    image = helm_user_deployment()["image"]
    assert pushed[built["Dockerfile.gpu"]] == f"{image['repository']}:{image['tag']}"
    mlflow_image = next(d for d in k8s_docs() if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert pushed[built["Dockerfile"]] == mlflow_image


# --- compose credentials ------------------------------------------------------------------------------------------

def _env_refs(node) -> set[str]:
    """Names under `env:` keys in a Dagster instance yaml."""
    if isinstance(node, dict):
        return {node["env"]} if set(node) == {"env"} else set().union(*(_env_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_refs(v) for v in node)) if node else set()
    return set()


def test_compose_postgres_credentials_are_consistent():
    services = compose_services()
    postgres = compose_env(services["postgres"])
    pg_db = _load(COMPOSE_INSTANCE)["storage"]["postgres"]["postgres_db"]
    refs = _env_refs(_load(COMPOSE_INSTANCE))
    assert refs == {pg_db[k]["env"] for k in ("hostname", "username", "password", "db_name")}
    for name in ("user_code", "webserver", "daemon"):
        env = compose_env(services[name])
        assert refs <= set(env), f"{name} lacks {refs - set(env)}"
        resolved = {k: compose_default(env[pg_db[k]["env"]]) for k in ("hostname", "username", "password", "db_name")}
        assert resolved["hostname"] in services and services[resolved["hostname"]]["image"].startswith("postgres")
        assert resolved["username"] == compose_default(postgres["POSTGRES_USER"])
        assert resolved["password"] == compose_default(postgres["POSTGRES_PASSWORD"])
        assert resolved["db_name"] == compose_default(postgres["POSTGRES_DB"])
        # the unsubstituted expressions too, so a changed ${VAR} name cannot slip through
        assert env[pg_db["username"]["env"]] == postgres["POSTGRES_USER"]
        assert env[pg_db["password"]["env"]] == postgres["POSTGRES_PASSWORD"]

    # MLflow's backend store: same server and credentials, its own database, created by postgres_init
    backend_uri = compose_env(services["mlflow"])["MLFLOW_BACKEND_STORE_URI"]
    assert backend_uri == f"postgresql://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}@postgres:5432/mlflow"
    mlflow_db = backend_uri.rsplit("/", 1)[1]
    assert mlflow_db != compose_default(postgres["POSTGRES_DB"]), "MLflow and Dagster cannot share one database"
    init = compose_env(services["postgres_init"])
    assert init["PGHOST"] == "postgres" and init["PGPASSWORD"] == postgres["POSTGRES_PASSWORD"]
    assert init["PGUSER"] == postgres["POSTGRES_USER"]
    assert f"CREATE DATABASE {mlflow_db}" in services["postgres_init"]["command"][-1]
    assert services["mlflow"]["depends_on"]["postgres_init"]["condition"] == "service_completed_successfully"

    tracking = urlparse(compose_env(services["user_code"])["MLFLOW_TRACKING_URI"])
    mlflow_argv = services["mlflow"]["command"]
    assert tracking.hostname == "mlflow" and tracking.port == int(flag_value(mlflow_argv, "--port"))
    assert any(p.endswith(f":{tracking.port}:{tracking.port}") for p in services["mlflow"]["ports"])


@pytest.mark.parametrize("name", ["webserver", "daemon"])
def test_compose_dagster_services_share_one_environment(name):
    services = compose_services()
    assert compose_env(services[name]) == compose_env(services["user_code"])


# --- hardening (#16): no default passwords, MLflow behind a login, pinned images, bounded resources, monitoring ------

_REQUIRED = re.compile(r"^\$\{([A-Z_]+):\?([^}]+)\}$")  # compose: stop with the message when the variable is unset
_DIGEST = re.compile(r"^[\w.\-/]+(:[\w.\-]+)?@sha256:[0-9a-f]{64}$")


def _compose_values(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _compose_values(value)
    elif isinstance(node, list):
        for value in node:
            yield from _compose_values(value)
    elif node is not None:
        yield str(node)


def test_compose_has_no_default_password_and_names_the_missing_variable():
    text = COMPOSE.read_text()
    assert not re.search(r"\$\{[A-Z_]*PASSWORD[A-Z_]*:?-", text), "a password with a default value"
    references = re.findall(r"\$\{([A-Z_]*PASSWORD[A-Z_]*)(:?[?-]?)([^}]*)\}", text)
    assert {name for name, _, _ in references} == {"POSTGRES_PASSWORD", "MLFLOW_TRACKING_PASSWORD"}
    for name, op, message in references:
        assert op == ":?" and name in message and "deploy/README.md" in message, (name, op, message)
    services = compose_services()
    for service in services.values():
        for key, value in compose_env(service).items():
            if "PASSWORD" in key and "://" not in value:
                assert _REQUIRED.match(value), f"{key}={value} is not a required ${{VAR:?message}}"
    readme = README.read_text()
    assert "POSTGRES_PASSWORD" in readme and "MLFLOW_TRACKING_PASSWORD" in readme


def test_mlflow_servers_require_a_login_and_the_pipeline_has_one():
    import configparser

    services = compose_services()
    mlflow = services["mlflow"]
    assert flag_value(mlflow["command"], "--app-name") == "basic-auth"
    server_env = compose_env(mlflow)
    mounts = dict(v.split(":")[1::-1] for v in mlflow["volumes"])  # target -> source
    ini = configparser.ConfigParser()
    assert ini.read(DEPLOY / mounts[server_env["MLFLOW_AUTH_CONFIG_PATH"]])
    auth = ini["mlflow"]  # the keys MLflow's basic-auth app reads (mlflow/server/auth/config.py)
    assert "admin_password" not in auth, "the admin password comes from the environment only"
    assert auth["default_permission"] in {"READ", "EDIT", "MANAGE", "NO_PERMISSIONS"}
    assert auth["authorization_function"] == "mlflow.server.auth:authenticate_request_basic_auth"
    db = auth["database_uri"].removeprefix("sqlite:///")
    assert any(db.startswith(v.split(":")[1] + "/") for v in mlflow["volumes"] if not v.startswith(".")), \
        f"user store {db} is not on a volume"
    # the basic-auth app needs Flask-WTF: mlflow's `auth` extra must be in the image that runs the server
    assert re.search(r"mlflow\[auth\]", DOCKERFILES["cpu"].read_text())
    client = compose_env(services["user_code"])
    assert server_env["MLFLOW_AUTH_ADMIN_USERNAME"] == client["MLFLOW_TRACKING_USERNAME"]
    assert server_env["MLFLOW_AUTH_ADMIN_PASSWORD"] == client["MLFLOW_TRACKING_PASSWORD"]

    deployment = next(d for d in k8s_docs() if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert flag_value(container["args"], "--app-name") == "basic-auth"
    env = {e["name"]: e for e in container["env"]}
    secrets = {env[k]["valueFrom"]["secretKeyRef"]["name"] for k in ("MLFLOW_AUTH_ADMIN_USERNAME",
                                                                      "MLFLOW_AUTH_ADMIN_PASSWORD")}
    assert {env[k]["valueFrom"]["secretKeyRef"]["key"] for k in ("MLFLOW_AUTH_ADMIN_USERNAME",
                                                                 "MLFLOW_AUTH_ADMIN_PASSWORD")} == \
        {"MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    assert secrets <= {s["name"] for s in helm_user_deployment()["envSecrets"]}, "the user code lacks the login"
    assert "basic-auth" in README.read_text()


def _from_images(path: Path) -> list[str]:
    args, images, stages = {}, [], set()
    for instr, text in dockerfile_instructions(path):
        if instr == "ARG" and "=" in text:
            name, value = text.split("=", 1)
            args.setdefault(name.strip(), value.strip().strip('"'))
        if instr == "FROM":
            parts = text.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            if image not in stages:
                images.append(image)
            if len(parts) == 3 and parts[1].upper() == "AS":
                stages.add(parts[2])
    return images


def test_base_and_service_images_are_pinned_by_digest():
    for path in DOCKERFILES.values():
        images = _from_images(path)
        assert images, path
        for image in images:
            assert _DIGEST.match(image), f"{path.name}: FROM {image} is not pinned by digest"
    assert len(_from_images(DOCKERFILES["gpu"])) == 2  # devel to build, runtime to run
    for name, service in compose_services().items():
        image = service["image"]
        if not image.startswith("fin-ia:"):  # fin-ia:* is built here, from the pinned bases above
            assert _DIGEST.match(image), f"compose {name}: image {image} is not pinned by digest"


def test_every_compose_service_has_cpu_and_memory_limits():
    for name, service in compose_services().items():
        limits = service.get("deploy", {}).get("resources", {}).get("limits", {})
        assert {"cpus", "memory"} <= set(limits), f"compose {name}: no cpu/memory limit"
        assert re.fullmatch(r"(\$\{\w+:-)?\d+(\.\d+)?\}?", str(limits["cpus"])), limits
        assert re.fullmatch(r"(\$\{\w+:-)?\d+[kmg]\}?", str(limits["memory"])), limits


@pytest.mark.parametrize("path", [COMPOSE_INSTANCE, REPO / "dagster_home" / "dagster.yaml"],
                         ids=["compose", "local"])
def test_instances_monitor_runs_free_dead_slots_and_capture_fin_ia_logs(path):
    config = _load(path)
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 30
    assert 0 < monitoring["poll_interval_seconds"] <= 30
    assert monitoring["start_timeout_seconds"] > 0 and monitoring["max_runtime_seconds"] >= 3600
    assert "fin_ia" in config["python_logs"]["managed_python_loggers"]
    assert config["concurrency"]["pools"]["default_limit"] == 1
    helm = _load(HELM)["dagsterDaemon"]["runMonitoring"]
    assert helm["enabled"] is True and helm["freeSlotsAfterRunEndSeconds"] > 0
