"""The reference deployments in deploy/compose and deploy/kubernetes, checked as far as a machine without
a container engine can: the compose file against the compose spec's schema, every Kubernetes manifest
against Kubernetes' own schemas (strict: no unknown fields), nginx's config with `nginx -t`, and the
facts that tie them to the gateway (the config it runs, grace periods, probes, ports, mounted files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from gateway.config_file import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy/compose"
KUBE = ROOT / "deploy/kubernetes"
KUBERNETES_VERSION = "1.30.0"  # the oldest release the manifests promise to fit
ENV = {
    "AGENTGW_KEY": "fleet-test-key-000000",
    "AGENTGW_DATABASE_URL": "postgresql://agentgw:pw-0000@postgres:5432/agentgw",
    "AGENTGW_REDIS_URL": "redis://redis:6379/0",
    "AGENTGW_OTLP_ENDPOINT": "http://otel-collector:4318/v1/traces",
    "AGENTGW_CONSOLE_SECRET": "console-secret-for-the-test-0000000000",
}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((COMPOSE / "compose.yaml").read_text()))


def manifests() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    return [doc for name in kustomization["resources"] for doc in yaml.safe_load_all((KUBE / name).read_text())]


def fleet_config(monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return load_config(COMPOSE / "agentgw.yaml")


def test_the_compose_file_follows_the_compose_spec(tmp_path: Path) -> None:
    check = [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec"]
    result = subprocess.run([*check, str(COMPOSE / "compose.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = compose()
    broken["services"]["lb"]["ports"] = {"8080": 8080}  # the validator does reject what the spec does not allow
    (tmp_path / "compose.yaml").write_text(yaml.safe_dump(broken))
    result = subprocess.run([*check, str(tmp_path / "compose.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode != 0


def test_the_compose_fleet(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose()["services"]
    assert {"gateway-1", "gateway-2", "lb", "redis", "postgres", "otel-collector", "prometheus", "grafana"} <= set(
        services
    )
    config = fleet_config(monkeypatch)
    assert config.ledger.kind == "postgresql" and config.state.url.startswith("redis://")
    assert config.console.session_secret == ENV["AGENTGW_CONSOLE_SECRET"]  # one for every replica
    grace = config.server.graceful_shutdown_seconds
    for name in ("gateway-1", "gateway-2"):
        gateway = services[name]
        assert gateway["stop_grace_period"].endswith("s") and float(gateway["stop_grace_period"][:-1]) > grace
        assert "--workers" in gateway["command"]
        assert set(ENV) <= set(gateway["environment"])
        assert "postgres" in gateway["depends_on"] and "redis" in gateway["depends_on"]
    assert services["gateway-1"]["volumes"][1] != services["gateway-2"]["volumes"][1]  # a spool each
    for service in services.values():  # every file a service mounts is in the repository
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).exists(), source
    scraped = yaml.safe_load((COMPOSE / "prometheus.yml").read_text())["scrape_configs"][0]["static_configs"][0]
    assert scraped["targets"] == ["gateway-1:8080", "gateway-2:8080"]  # each replica, not the load balancer
    collector = yaml.safe_load((COMPOSE / "otel-collector.yaml").read_text())
    for pipeline in collector["service"]["pipelines"].values():
        assert set(pipeline["receivers"]) <= set(collector["receivers"])
        assert set(pipeline["exporters"]) <= set(collector["exporters"])
    assert config.telemetry.tracing.endpoint == ENV["AGENTGW_OTLP_ENDPOINT"]
    assert "4318" in str(collector["receivers"]["otlp"]["protocols"]["http"]["endpoint"])


def test_nginx_accepts_its_config(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if nginx is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (CI must install it: apt-get install nginx-light)")
        pytest.skip("nginx is not installed")
    text = (COMPOSE / "nginx.conf").read_text()
    assert "server gateway-1:8080" in text and "server gateway-2:8080" in text
    # The replicas' names resolve only inside compose's network: check the same file with loopback.
    local = text.replace("gateway-1:8080", "127.0.0.1:18081").replace("gateway-2:8080", "127.0.0.1:18082")
    (tmp_path / "nginx.conf").write_text(local.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;"))
    (tmp_path / "logs").mkdir()
    result = subprocess.run(
        [nginx, "-t", "-q", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf"), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_kubernetes_manifest_follows_kubernetes_schemas() -> None:
    docs = manifests()
    assert {doc["kind"] for doc in docs} == {
        "ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"
    }  # fmt: skip
    secret = yaml.safe_load((KUBE / "secret.example.yaml").read_text())
    for doc in [*docs, secret]:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    broken = {**docs[1], "spec": {**docs[1]["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_deployment(monkeypatch: pytest.MonkeyPatch) -> None:
    by_kind = {doc["kind"]: doc for doc in manifests()}
    config = fleet_config(monkeypatch)
    embedded = by_kind["ConfigMap"]["data"]["agentgw.yaml"]
    assert embedded == (COMPOSE / "agentgw.yaml").read_text()  # the one config both fleets run
    pod = by_kind["Deployment"]["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] > config.server.graceful_shutdown_seconds
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["ports"][0]["containerPort"] == config.server.port
    assert "--workers" in container["args"]
    secret = yaml.safe_load((KUBE / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) == set(ENV) - {"AGENTGW_OTLP_ENDPOINT"}
    assert container["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert str(Path(config.ledger.spool_path).parent) in mounts  # the spool is on a volume
    selector = by_kind["Deployment"]["spec"]["selector"]["matchLabels"]
    assert by_kind["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"] == selector
    assert by_kind["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert by_kind["Service"]["spec"]["selector"] == selector
    (metric,) = by_kind["HorizontalPodAutoscaler"]["spec"]["metrics"]
    assert metric["pods"]["metric"]["name"] == "agentgw_in_flight_requests"  # a series the gateway exports
