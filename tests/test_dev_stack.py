"""The whole dev program (kind + local + app Secret), in preview and up mode, and its offline plan."""

from __future__ import annotations

import json
import subprocess
import sys

import kubernetes_validate
import pytest
import yaml

from components.config import KIND_KUBERNETES_VERSION
from components.connection import SECRET_KEYS
from components.fakes import FAKE_KEY_MARKER, FAKE_PASSWORD
from components.plan import Secret, evaluate, iter_secret_values, kubernetes_objects, plan_document, write_plan

from conftest import PROJECT


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def dev(request):
    return evaluate("dev", preview=request.param)


def test_lists_cluster_password_statefulset_services_and_app_secret(dev):
    types = [r.type for r in dev.resources]
    assert "pgtiers:index:KindCluster" in types
    assert types.count("pulumi-python:dynamic:Resource") == 1
    assert types.count("random:index/randomPassword:RandomPassword") == 1
    assert types.count("kubernetes:apps/v1:StatefulSet") == 1
    services = {r.name: r.inputs["spec"] for r in dev.by_type("kubernetes:core/v1:Service")}
    assert services["pgtiers-dev-db-hl"]["clusterIP"] == "None"  # headless, for the StatefulSet
    assert services["pgtiers-dev-db-svc"]["type"] == "ClusterIP"
    assert services["pgtiers-dev-db-nodeport"]["type"] == "NodePort"
    app_secrets = [r for r in dev.by_type("kubernetes:core/v1:Secret")
                   if r.parent.endswith("pgtiers:index:AppDatabaseSecret::pgtiers-dev-app-db")]
    assert [s.inputs["metadata"]["namespace"] for s in app_secrets] == ["app"]
    data = app_secrets[0].inputs["stringData"]
    assert isinstance(data, Secret)
    if not dev.preview:  # in preview the whole map is unknown until the database exists
        assert sorted(data.value) == sorted(SECRET_KEYS)


def test_every_kubernetes_resource_uses_the_kind_provider(dev):
    provider = dev.one("pulumi:providers:kubernetes")
    kind = dev.one("pulumi-python:dynamic:Resource")
    assert provider.parent == dev.one("pgtiers:index:KindCluster").urn
    assert kind.urn in provider.dependencies  # built from the kind cluster's kubeconfig
    for r in dev.resources:
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider.rsplit("::", 1)[0] == provider.urn, r.name


def test_nodeport_is_published_by_kind(dev):
    kind = dev.one("pulumi-python:dynamic:Resource")
    config = yaml.safe_load(kind.inputs["config"])
    nodeport = dev.one("kubernetes:core/v1:Service", "pgtiers-dev-db-nodeport").inputs["spec"]["ports"][0]["nodePort"]
    mapping = config["nodes"][0]["extraPortMappings"][0]
    assert mapping["containerPort"] == nodeport == 30432 and mapping["hostPort"] == 15432
    assert kind.inputs["node_image"].startswith("kindest/node:v1.")


def test_no_secret_in_plain_text_anywhere(dev, tmp_path):
    secrets = set(iter_secret_values(dev))
    if not dev.preview:
        assert any(FAKE_PASSWORD in s for s in secrets)
    paths = write_plan(dev, tmp_path)
    texts = [paths["plan"].read_text(), paths["architecture"].read_text()]
    texts += [p.read_text() for p in paths["manifests"].glob("*.yaml")]
    blob = "\n".join(texts)
    for needle in (FAKE_PASSWORD, FAKE_KEY_MARKER, "postgresql://"):
        assert needle not in blob
    # Host, port and names ride inside secrets too but are not credentials; these are.
    credentials = [s for s in secrets if FAKE_PASSWORD in s or FAKE_KEY_MARKER in s or "://" in s]
    assert credentials or dev.preview
    for secret in credentials:
        assert secret not in blob


def test_outputs_hide_the_kubeconfig_and_urls(dev):
    out = dev.outputs
    assert isinstance(out["kubeconfig"], Secret) and isinstance(out["laptopDatabaseUrl"], Secret)
    assert out["appSecrets"] == ["app/database"] and out["clusterName"] == "pgtiers-dev"
    assert out["tier"] == "local" and out["laptopPort"] == 15432
    if not dev.preview:
        assert out["databaseHost"].endswith(".pgtiers-db.svc.cluster.local")
        assert out["databasePort"] == 5432 and out["databaseName"] == "app"
        assert isinstance(out["databaseHost"], str)  # not secret: host/port/name are not credentials


def test_nothing_is_protected_in_dev(dev):
    assert not [r.name for r in dev.resources if r.protect]


def test_plan_document_shape(dev):
    doc = plan_document(dev)
    assert doc["project"] == "pgtiers" and doc["stack"] == "dev"
    keys = {"urn", "type", "name", "parent", "custom", "provider", "protect", "retainOnDelete", "dependencies", "inputs"}
    assert all(set(r) == keys for r in doc["resources"])
    json.dumps(doc)  # serialisable as written


def test_every_manifest_validates_against_the_kind_nodes_kubernetes(dev):
    objects = kubernetes_objects(dev)
    assert len(objects) >= 7
    for registration, manifest in objects:
        manifest = json.loads(json.dumps(manifest))
        if manifest["kind"] == "Secret":
            # Values are redacted to "[secret]"; the schema wants a map of strings, which it still is.
            assert all(v == "[secret]" for v in manifest.get("stringData", {}).values())
        metadata = manifest.setdefault("metadata", {})
        metadata.setdefault("name", registration.name)  # auto-named by the provider
        if dev.preview:
            _replace_unknowns(manifest)
        kubernetes_validate.validate(manifest, f"{KIND_KUBERNETES_VERSION}.0", strict=True)


def _replace_unknowns(node):
    # In preview some names are unknown until the engine creates their owners.
    if isinstance(node, dict):
        for k, v in node.items():
            node[k] = "placeholder" if v == "[unknown]" else _replace_unknowns(v)
    elif isinstance(node, list):
        return [_replace_unknowns(v) for v in node]
    return node


def test_plan_command_writes_files_and_prints_a_tree(tmp_path):
    done = subprocess.run([sys.executable, "-m", "components", "plan", "--stack", "dev", "--out", str(tmp_path)],
                          capture_output=True, text=True, cwd=PROJECT)
    assert done.returncode == 0, done.stderr
    assert "kubernetes:apps/v1:StatefulSet" in done.stdout
    assert (tmp_path / "plan.json").exists() and (tmp_path / "architecture.mmd").exists()
    mmd = (tmp_path / "architecture.mmd").read_text()
    assert mmd.startswith("flowchart LR") and "KindCluster" in mmd and "envFrom" in mmd
    assert len(list((tmp_path / "manifests").glob("*.yaml"))) >= 7
