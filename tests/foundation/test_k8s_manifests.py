"""The Kubernetes files (docker/k8s: a kustomize base and two overlays) are checked as far as this
machine allows without a cluster: a small kustomize renderer builds each overlay (and is compared
with `kubectl kustomize` where kubectl is installed), `kubernetes-validate --strict` checks every
built object of a built-in kind, the prometheus-operator objects are checked against their CRDs'
schemas (tests/schemas/, from prometheus-operator), and the campwatch settings they carry validate.
What they must do: the sidecar sees the pod's GPU and no other, pod name and namespace come through
the downward API, history survives a restart (PVC or PostgreSQL with the password from a Secret)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agent.config import load_settings
from agent.exporters import alerts as pack

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "docker" / "k8s"
SCHEMAS = ROOT / "tests" / "schemas"
OVERLAYS = ("sqlite-pvc", "postgres")
CRD_KINDS = {"ServiceMonitor": "servicemonitor-v1.json", "PrometheusRule": "prometheusrule-v1.json"}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources", "patches"}


# --- a small kustomize: resources (files, directories) and strategic-merge patches from files ---

def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge as kustomize applies it to these files: maps merge, null deletes a key, lists of
    named maps merge by name (the patch's items first, in its order, as kustomize emits them), other
    lists are replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _merge(out[key], value)
            else:
                out[key] = value
        return out
    if (isinstance(base, list) and isinstance(patch, list) and patch
            and all(isinstance(i, dict) and "name" in i for i in base + patch)):
        originals = {i["name"]: i for i in base}
        patched = [_merge(originals[i["name"]], i) if i["name"] in originals else i for i in patch]
        touched = {i["name"] for i in patch}
        return patched + [i for i in base if i["name"] not in touched]
    return patch


def build(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - KUSTOMIZATION_KEYS
    assert not unsupported, f"{folder}: the test's renderer does not implement {unsupported}"
    docs: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = folder / entry
        docs += build(path) if path.is_dir() else [d for d in yaml.safe_load_all(path.read_text()) if d]
    for patch_entry in kustomization.get("patches", []):
        assert set(patch_entry) == {"path"}, "only file patches are supported"
        patch = yaml.safe_load((folder / patch_entry["path"]).read_text())
        target = [d for d in docs if d["kind"] == patch["kind"] and d["metadata"]["name"] == patch["metadata"]["name"]]
        assert len(target) == 1, f"patch {patch_entry['path']} matches {len(target)} objects"
        docs[docs.index(target[0])] = _merge(target[0], patch)
    return docs


def objects(overlay: str) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in build(K8S / "overlays" / overlay)}


def pod_spec(overlay: str) -> dict[str, Any]:
    spec: dict[str, Any] = objects(overlay)["Deployment/llm"]["spec"]["template"]["spec"]
    return spec


def container(overlay: str, name: str) -> dict[str, Any]:
    return next(c for c in pod_spec(overlay)["containers"] if c["name"] == name)


def env(overlay: str) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(overlay, "campwatch")["env"]}


# --- the renderer itself ---

def test_strategic_merge_deletes_on_null_and_merges_named_lists() -> None:
    base = {"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "configMap": {"name": "x"}}], "n": 1}
    patch = {"volumes": [{"name": "a", "emptyDir": None, "persistentVolumeClaim": {"claimName": "p"}},
                         {"name": "c", "emptyDir": {}}]}
    assert _merge(base, patch) == {"n": 1, "volumes": [
        {"name": "a", "persistentVolumeClaim": {"claimName": "p"}}, {"name": "c", "emptyDir": {}},
        {"name": "b", "configMap": {"name": "x"}}]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_renderer_builds_what_kubectl_kustomize_builds(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (the structural checks below still run)")
    built = subprocess.run([kubectl, "kustomize", str(K8S / "overlays" / overlay)], capture_output=True,
                           text=True, timeout=60)
    assert built.returncode == 0, built.stderr
    theirs = {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(built.stdout) if d}
    assert theirs == objects(overlay)


# --- validation ---

def _kubernetes_validate() -> str:
    found = shutil.which("kubernetes-validate") or str(Path(sys.executable).parent / "kubernetes-validate")
    if not Path(found).exists():
        if os.environ.get("CI"):
            pytest.fail("kubernetes-validate is required in CI (the dev extra installs it)")
        pytest.skip("kubernetes-validate not installed (pip install kubernetes-validate)")
    return found


def _validate(paths: list[Path], version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_kubernetes_validate(), "--strict", "--quiet", "-k", version, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("version", ["1.34.0", "1.37.0"])
def test_every_built_object_passes_kubernetes_validate_strict(tmp_path: Path, version: str) -> None:
    # 1.34 is the first release with resource.k8s.io/v1 (DRA) generally available.
    paths = []
    for folder in (K8S / "base", *(K8S / "overlays" / o for o in OVERLAYS)):
        docs = [d for d in build(folder) if d["kind"] not in CRD_KINDS]
        path = tmp_path / f"{folder.name}.yaml"
        path.write_text(yaml.safe_dump_all(docs))
        paths.append(path)
    result = _validate(paths, version)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_strict_rejects_a_misspelt_field(tmp_path: Path) -> None:
    deployment = copy.deepcopy(objects("sqlite-pvc")["Deployment/llm"])
    deployment["spec"]["template"]["spec"]["containers"][1]["volumeMount"] = []
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(deployment))
    result = _validate([path], "1.37.0")
    assert result.returncode != 0 and "volumeMount" in result.stdout + result.stderr


def _unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the CRD schema does not declare (the API server would silently prune them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    if isinstance(value, dict) and "properties" in schema:
        out = [f"{path}.{k}" for k in value if k not in schema["properties"]]
        for k, v in value.items():
            if k in schema["properties"]:
                out += _unknown_fields(v, schema["properties"][k], f"{path}.{k}")
        return out
    if isinstance(value, list) and "items" in schema:
        return [f for i, v in enumerate(value) for f in _unknown_fields(v, schema["items"], f"{path}[{i}]")]
    return []


def _crd_problems(doc: dict[str, Any]) -> list[str]:
    schema = json.loads((SCHEMAS / CRD_KINDS[doc["kind"]]).read_text())
    errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    return errors + [f"unknown field {f}" for f in _unknown_fields(doc, schema)]


def test_service_monitor_and_prometheus_rule_match_their_crd_schemas() -> None:
    custom = [d for d in build(K8S / "base") if d["kind"] in CRD_KINDS]
    assert sorted(d["kind"] for d in custom) == ["PrometheusRule", "ServiceMonitor"]
    for doc in custom:
        assert _crd_problems(doc) == [], doc["kind"]


def test_the_crd_check_catches_an_unknown_field_and_a_wrong_type() -> None:
    monitor = copy.deepcopy(next(d for d in build(K8S / "base") if d["kind"] == "ServiceMonitor"))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    monitor["spec"]["endpoints"][0]["port"] = 18400
    problems = _crd_problems(monitor)
    assert any("intervall" in p for p in problems) and any("18400" in p for p in problems)


# --- what the manifests must do ---

@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sidecar_sees_the_pods_gpu_and_no_other(overlay: str) -> None:
    spec = pod_spec(overlay)
    everyone = [e for c in spec["containers"] for e in c.get("env", [])]
    assert [e for e in everyone if e["name"] in {"NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"}] == []
    claims = {c["name"]: [r["name"] for r in c["resources"].get("claims", [])] for c in spec["containers"]}
    assert claims == {"vllm": ["gpu"], "campwatch": ["gpu"]}
    assert spec["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": "llm-gpu"}]
    template = objects(overlay)["ResourceClaimTemplate/llm-gpu"]["spec"]["spec"]["devices"]["requests"]
    assert template == [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 1}}]
    assert "nvidia.com/gpu" not in json.dumps(spec)


def test_the_image_leaves_gpu_visibility_to_whoever_starts_it() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    lines = [line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")]
    assert not any("NVIDIA_VISIBLE_DEVICES" in line for line in lines)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_name_and_namespace_come_through_the_downward_api(overlay: str) -> None:
    values = env(overlay)
    assert values["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert values["POD_NAMESPACE"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    names = [e["name"] for e in container(overlay, "campwatch")["env"]]
    assert values["CAMPWATCH_HOST"] == "$(POD_NAME)"
    assert names.index("POD_NAME") < names.index("CAMPWATCH_HOST"), "$(VAR) expands only earlier variables"


def test_sqlite_overlay_keeps_history_on_a_persistent_volume_claim(tmp_path: Path) -> None:
    built = objects("sqlite-pvc")
    data = next(v for v in pod_spec("sqlite-pvc")["volumes"] if v["name"] == "data")
    assert data == {"name": "data", "persistentVolumeClaim": {"claimName": "campwatch-data"}}
    assert built["PersistentVolumeClaim/campwatch-data"]["spec"]["accessModes"] == ["ReadWriteOnce"]
    deployment = built["Deployment/llm"]["spec"]
    assert deployment["replicas"] == 1 and deployment["strategy"] == {"type": "Recreate"}
    mounts = {m["name"]: m["mountPath"] for m in container("sqlite-pvc", "campwatch")["volumeMounts"]}
    settings = _settings("sqlite-pvc", tmp_path)
    assert settings.store.url.get_secret_value() == f"sqlite:///{mounts['data']}/campwatch.db"


def test_postgres_overlay_takes_the_password_from_a_secret_and_never_from_the_url(tmp_path: Path) -> None:
    values = env("postgres")
    assert values["PGPASSWORD"] == {"secretKeyRef": {"name": "campwatch-postgres", "key": "password"}}
    url = values["CAMPWATCH_STORE__URL"]
    settings = _settings("postgres", tmp_path)
    assert settings.store.url.get_secret_value() == url
    from sqlalchemy.engine import make_url
    assert make_url(url).password is None and make_url(url).get_backend_name() == "postgresql"
    assert "Secret" not in {d["kind"] for d in build(K8S / "overlays" / "postgres")}, "no secret ships"


def _settings(overlay: str, tmp: Path) -> Any:
    """The settings campwatch resolves in the pod: the ConfigMap's file, then the container's env."""
    text = objects(overlay)["ConfigMap/campwatch-config"]["data"]["campwatch.toml"]
    tomllib.loads(text)
    (tmp / "campwatch.toml").write_text(text)
    plain = {k: v for k, v in env(overlay).items() if k.startswith("CAMPWATCH_") and isinstance(v, str)
             and k not in {"CAMPWATCH_CONFIG", "CAMPWATCH_HOST"}}
    return load_settings(tmp / "campwatch.toml", environ=plain)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_port_agrees_across_config_container_service_and_monitor(overlay: str, tmp_path: Path) -> None:
    built = objects(overlay)
    settings = _settings(overlay, tmp_path)
    ports = {p["name"]: p["containerPort"] for p in container(overlay, "campwatch")["ports"]}
    service = built["Service/campwatch-metrics"]
    monitor = built["ServiceMonitor/campwatch"]["spec"]
    assert settings.metrics.port == ports["metrics"] == service["spec"]["ports"][0]["port"] == 18400
    assert settings.proxy.upstream == "http://127.0.0.1:8000" and ports["proxy"] == 8001
    assert monitor["endpoints"][0]["port"] == "metrics"
    assert monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service["metadata"]["labels"][monitor["jobLabel"]] == pack.SIDECAR_JOB, "the alerts' job label"
    assert pod_spec(overlay)["shareProcessNamespace"] is True
