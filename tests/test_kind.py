"""KindCluster's dynamic provider against a fake kind CLI on PATH, and the component under mocks."""

from __future__ import annotations

import json
from pathlib import Path

import dill
import pytest
import yaml
from pulumi.dynamic.dynamic import serialize_provider

from components.cluster.kind import KindError, KindProvider, kind_config
from components.plan import Secret, evaluate

FAKEBIN = Path(__file__).parent / "fakebin"


@pytest.fixture
def kind(tmp_path, monkeypatch):
    """A fake kind on PATH, an empty HOME (to prove ~/.kube/config is never written)."""
    monkeypatch.setenv("PATH", f"{FAKEBIN}:{__import__('os').environ['PATH']}")
    monkeypatch.setenv("FAKE_KIND_STATE", str(tmp_path / "kind"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    state = tmp_path / "kind"

    def calls():
        path = state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    return state, calls


PROPS = {"resource_kind": "kind-cluster", "name": "dev", "node_image": "kindest/node:v1.33.1",
         "config": kind_config([{"container_port": 30432, "host_port": 15432}]), "kind_binary": "kind"}


def test_create_then_rerun_adopts_instead_of_failing(kind, tmp_path):
    state, calls = kind
    first = KindProvider().create(dict(PROPS))
    assert first.id == "dev" and first.outs["adopted"] is False
    assert "client-key-data: SECRET-KEY-dev" in first.outs["kubeconfig"]
    again = KindProvider().create(dict(PROPS))  # e.g. state lost, or the cluster made by hand
    assert again.id == "dev" and again.outs["adopted"] is True
    creates = [c for c in calls() if c[:2] == ["create", "cluster"]]
    assert len(creates) == 1
    assert creates[0][creates[0].index("--image") + 1] == "kindest/node:v1.33.1"
    assert "--kubeconfig" in creates[0]
    assert not (tmp_path / "home" / ".kube").exists()


def test_refresh_notices_a_cluster_deleted_outside_pulumi(kind):
    state, _ = kind
    KindProvider().create(dict(PROPS))
    assert KindProvider().read("dev", dict(PROPS)).id == "dev"
    (state / "clusters" / "dev").unlink()
    gone = KindProvider().read("dev", dict(PROPS))
    assert gone.id == "" and gone.outs == {}


def test_delete_is_clean_even_when_already_gone(kind, tmp_path):
    _, calls = kind
    KindProvider().create(dict(PROPS))
    KindProvider().delete("dev", dict(PROPS))
    KindProvider().delete("dev", dict(PROPS))
    deletes = [c for c in calls() if c[:2] == ["delete", "cluster"]]
    assert len(deletes) == 1 and "--kubeconfig" in deletes[0]
    assert not (tmp_path / "home" / ".kube").exists()


def test_cli_failure_is_reported_with_kinds_message(kind, monkeypatch):
    monkeypatch.setenv("FAKE_KIND_FAIL_CREATE", "1")
    with pytest.raises(KindError, match="docker not running"):
        KindProvider().create(dict(PROPS))


def test_missing_kind_binary_says_how_to_install(kind):
    with pytest.raises(KindError, match="not on PATH"):
        KindProvider().create({**PROPS, "kind_binary": "kind-does-not-exist"})


def test_changes_that_need_a_new_cluster_replace_it():
    provider = KindProvider()
    assert provider.diff("dev", PROPS, dict(PROPS)).changes is False
    diff = provider.diff("dev", PROPS, {**PROPS, "node_image": "kindest/node:v1.34.0"})
    assert diff.replaces == ["node_image"] and diff.delete_before_replace is True


def test_check_rejects_unpinned_images():
    result = KindProvider().check({}, {**PROPS, "node_image": "kindest/node"})
    assert [f.property for f in result.failures] == ["node_image"]


def test_provider_pickles_to_plain_state():
    restored = dill.loads(__import__("base64").b64decode(serialize_provider(KindProvider())))
    assert isinstance(restored, KindProvider) and vars(restored) == {}


def test_kind_config_maps_the_nodeport_to_loopback_and_keeps_data_on_the_host():
    config = yaml.safe_load(kind_config([{"container_port": 30432, "host_port": 15432}], "/srv/pgtiers"))
    node = config["nodes"][0]
    assert node["extraPortMappings"] == [{"containerPort": 30432, "hostPort": 15432,
                                          "listenAddress": "127.0.0.1", "protocol": "TCP"}]
    assert node["extraMounts"] == [{"hostPath": "/srv/pgtiers", "containerPath": "/var/local-path-provisioner"}]


@pytest.mark.parametrize("preview", [False, True])
def test_component_builds_a_provider_from_the_secret_kubeconfig(preview):
    import pulumi_kubernetes as k8s

    from components.cluster.kind import KindCluster

    def program():
        cluster = KindCluster("dev", {"name": "pgtiers-dev"})
        k8s.core.v1.Namespace("ns", metadata={"name": "x"}, opts=__import__("pulumi").ResourceOptions(provider=cluster.provider))

    ev = evaluate("dev", preview=preview, program=program, config={})
    dynamic = ev.one("pulumi-python:dynamic:Resource")
    assert "kubeconfig" in dynamic.additional_secret_outputs
    provider = ev.one("pulumi:providers:kubernetes")
    assert provider.parent == ev.one("pgtiers:index:KindCluster").urn
    # A vanished kind cluster (a finished CI runner) must not block destroy/refresh.
    assert provider.inputs["deleteUnreachable"] in (True, "true")
    if not preview:
        assert isinstance(provider.inputs["kubeconfig"], Secret)
    assert ev.one("kubernetes:core/v1:Namespace").provider.startswith(provider.urn)
