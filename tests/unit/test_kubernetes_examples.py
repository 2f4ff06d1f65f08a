"""examples/kubernetes/ holds manifests people copy: every one is parsed and checked against
partman itself (the config map's partman.toml by partman's own settings loader, each
container's command by the CLI's own parser, each probe against the routes the app serves),
and secrets are referenced, never written in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from fastapi.testclient import TestClient

from partman.cli.root import app as cli_app
from partman.model.service_options import ServiceOptions
from partman.service import Fleet, Member
from partman.settings import Settings, parse

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"
SECRET_WORDS = re.compile(r"dsn|token|password|secret", re.IGNORECASE)


def manifests() -> list[dict[str, Any]]:
    found = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append({**doc, "_file": path.name})
    return found


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [m for m in manifests() if m["kind"] == kind]


def pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for m in manifests():
        if m["kind"] == "Deployment":
            yield m["metadata"]["name"], m["spec"]["template"]["spec"]
        elif m["kind"] == "CronJob":
            yield m["metadata"]["name"], m["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    """Each variable the container gets, with a stand-in value (what the Secret would give)."""
    return {e["name"]: f"<{e['name']}>" for e in container.get("env", [])}


def config_text() -> str:
    (config,) = of_kind("ConfigMap")
    return str(config["data"]["partman.toml"])


def settings_for(container: dict[str, Any]) -> Settings:
    env = {**env_of(container), **{k: "dbname=x" for k in env_of(container) if "DSN" in k}}
    return parse(config_text(), file="partman.toml", environ=env)


def command_of(container: dict[str, Any]) -> list[str]:
    return [*container.get("command", []), *container.get("args", [])]


def parsed(argv: list[str]) -> tuple[list[str], dict[str, Any]]:
    """`argv` read by the CLI's own parser: the command path and its options (a typo, an
    unknown option or a missing value fails here as it would in the pod)."""
    assert argv[0] == "partman", argv
    command: Any = typer.main.get_command(cli_app)
    ctx = command.make_context("partman", argv[1:])
    path = []
    while hasattr(command, "resolve_command"):  # a group: the next word is its command
        words = [*getattr(ctx, "_protected_args", []), *ctx.args]
        name, sub, rest = command.resolve_command(ctx, words)
        assert sub is not None and name is not None
        path.append(name)
        command = sub
        ctx = sub.make_context(name, rest, parent=ctx)
    return path, dict(ctx.params)


def test_every_manifest_parses_and_names_its_kind() -> None:
    found = manifests()
    kinds = sorted(m["kind"] for m in found)
    assert kinds == ["ConfigMap", "CronJob", "Deployment", "PodDisruptionBudget", "Service"]
    for m in found:
        assert m["apiVersion"] and m["metadata"]["name"], m["_file"]


def test_the_config_maps_partman_toml_loads_with_partmans_own_loader() -> None:
    for _, pod in pod_specs():
        (container,) = pod["containers"]
        found = settings_for(container)
        assert found.problems_for(*(["service"] if "run" in command_of(container) else [])) == ()
        assert [d.name for d in found.databases] == ["orders", "billing"]
        orders, billing = found.databases
        assert [t.qualified_name for t in orders.tables] == ["app.events", "app.order_lines"]
        assert [t.qualified_name for t in billing.tables] == ["app.events"]


def test_each_container_runs_a_real_partman_command_on_the_mounted_config() -> None:
    commands = {}
    for name, pod in pod_specs():
        (container,) = pod["containers"]
        path, params = parsed(command_of(container))
        commands[name] = path
        (mount,) = container["volumeMounts"]
        assert str(params["config"]) == f"{mount['mountPath']}/partman.toml"
        (volume,) = pod["volumes"]
        assert volume["name"] == mount["name"]
        assert volume["configMap"]["name"] == of_kind("ConfigMap")[0]["metadata"]["name"]
        if path == ["apply"]:
            assert params["yes"] is True, "a CronJob has no terminal: apply needs --yes"
    assert commands == {"partman": ["run"], "partman-apply": ["apply"]}


def test_secrets_are_referenced_never_written_in() -> None:
    assert of_kind("Secret") == []
    for _, pod in pod_specs():
        (container,) = pod["containers"]
        for e in container["env"]:
            if SECRET_WORDS.search(e["name"]):
                assert "value" not in e, e
                assert e["valueFrom"]["secretKeyRef"]["name"] == "partman", e
    text = config_text()
    assert "postgresql://" not in text and "password" not in text.lower()
    assert re.search(r'^token = "\$\{PARTMAN_TOKEN\}"', text, re.MULTILINE)


def test_every_variable_the_config_names_is_set_by_the_pods_that_need_it() -> None:
    text = config_text()
    dsn_vars = set(re.findall(r'dsn_env = "([A-Z_]+)"', text))
    assert dsn_vars == {"ORDERS_DSN", "BILLING_DSN"}
    for _, pod in pod_specs():
        (container,) = pod["containers"]
        assert dsn_vars <= set(env_of(container))
        if parsed(command_of(container))[0] == ["run"]:
            assert set(re.findall(r"\$\{([A-Z_]+)\}", text)) <= set(env_of(container))


@pytest.fixture
def deployment_app() -> Iterator[tuple[dict[str, Any], Fleet]]:
    """The Deployment's container and the app `partman run` serves for its config (databases
    nobody answers: the routes are what matters, pools connect lazily)."""
    (deployment,) = of_kind("Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    found = settings_for(container)
    options = ServiceOptions(**found.service)
    members = [Member(d.name, "host=127.0.0.1 port=1 connect_timeout=1") for d in found.fleet()]
    fleet = Fleet(members, config=found.config, options=options)
    try:
        yield container, fleet
    finally:
        fleet.close()


def test_the_probes_point_at_routes_the_app_serves_on_the_port_it_listens_on(
    deployment_app: tuple[dict[str, Any], Fleet],
) -> None:
    container, fleet = deployment_app
    client = TestClient(fleet.app)  # not entered: no lifespan, no scheduler
    (port,) = container["ports"]
    assert port["containerPort"] == fleet.options.port
    assert fleet.options.host == "0.0.0.0"
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        get = container[probe]["httpGet"]
        answer = client.get(get["path"])
        assert answer.status_code == 200, (probe, get["path"], answer.text)
        assert get["port"] in (port["name"], port["containerPort"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ready = client.get("/readyz").json()  # nobody answers the DSNs: ready, and says why not
    assert ready["databases_not_ready"] == ["billing", "orders"]


def test_the_deployment_is_replicated_with_a_service_and_a_disruption_budget() -> None:
    (deployment,) = of_kind("Deployment")
    assert deployment["spec"]["replicas"] == 2
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    (service,) = of_kind("Service")
    (pdb,) = of_kind("PodDisruptionBudget")
    for selector in (service["spec"]["selector"], pdb["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert pdb["spec"]["minAvailable"] == 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] == container["ports"][0]["name"]
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_cronjob_never_overlaps_and_ends_before_the_next_run() -> None:
    (cron,) = of_kind("CronJob")
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["schedule"] == "*/10 * * * *"
    job = cron["spec"]["jobTemplate"]["spec"]
    assert 0 < job["activeDeadlineSeconds"] < 600
    assert job["template"]["spec"]["restartPolicy"] == "Never"
