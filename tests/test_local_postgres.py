"""LocalPostgres and AppDatabaseSecret on their own, under mocks."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import AppDatabaseSecret, LocalPostgres
from components.config import POSTGRES_IMAGES
from components.connection import SECRET_KEYS, DatabaseConnection
from components.fakes import FAKE_PASSWORD
from components.plan import Secret, evaluate, unwrap


def run(args, preview=False, protect_app=False):
    captured = {}

    def program():
        provider = k8s.Provider("any", kubeconfig="fake")
        opts = pulumi.ResourceOptions(providers={"kubernetes": provider})
        db = LocalPostgres("db", args, opts)
        AppDatabaseSecret("app", {"connection": db.connection, "namespaces": ["web", "jobs"]}, opts)
        db.connection.apply(lambda c: captured.setdefault("connection", c))
        pulumi.export("connection", db.connection.apply(lambda c: c.url()))

    ev = evaluate("unit", preview=preview, program=program, config={})
    return ev, captured


def container(ev):
    sts = ev.one("kubernetes:apps/v1:StatefulSet")
    return sts, sts.inputs["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize("version", sorted(POSTGRES_IMAGES))
def test_official_image_pinned_per_major_and_data_mounted_at_the_parent(version):
    ev, _ = run({"version": version})
    _, c = container(ev)
    assert c["image"] == POSTGRES_IMAGES[version]
    assert c["image"].startswith("postgres:") and "bitnami" not in c["image"]
    assert c["image"].split(":")[1].startswith(f"{version}.")  # a minor pinned, not a floating major
    assert c["volumeMounts"] == [{"name": "data", "mountPath": "/var/lib/postgresql"}]


def test_probes_resources_and_volume():
    ev, _ = run({"storage_gb": 7})
    sts, c = container(ev)
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["exec"]["command"][0] == "pg_isready"
    assert c["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    claim = sts.inputs["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "7Gi"
    assert sts.inputs["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"


def test_password_comes_from_random_and_never_appears_in_plain_text():
    ev, captured = run({})
    ev.one("random:index/randomPassword:RandomPassword")
    _, c = container(ev)
    assert c["envFrom"][0]["secretRef"]["name"]
    assert FAKE_PASSWORD not in str(c)
    creds = ev.one("kubernetes:core/v1:Secret", "db-credentials")
    assert isinstance(creds.inputs["stringData"], Secret)
    assert captured["connection"].password == FAKE_PASSWORD
    assert captured["connection"].sslmode == "disable"


def test_connection_is_secret_and_points_at_the_cluster_ip_service():
    ev, captured = run({"namespace": "data"})
    assert isinstance(ev.outputs["connection"], Secret)
    conn: DatabaseConnection = captured["connection"]
    svc = ev.one("kubernetes:core/v1:Service", "db-svc")
    assert svc.inputs["spec"]["type"] == "ClusterIP"
    assert conn.host.endswith(".data.svc.cluster.local") and conn.port == 5432


def test_node_port_is_optional():
    ev, _ = run({"node_port": None})
    assert not [r for r in ev.by_type("kubernetes:core/v1:Service") if r.name == "db-nodeport"]
    ev, _ = run({"node_port": 30999})
    assert ev.one("kubernetes:core/v1:Service", "db-nodeport").inputs["spec"]["ports"][0]["nodePort"] == 30999


def test_protect_marks_the_statefulset_and_password():
    ev, _ = run({"protect": True})
    assert ev.one("kubernetes:apps/v1:StatefulSet").protect
    assert ev.one("random:index/randomPassword:RandomPassword").protect
    ev, _ = run({})
    assert not ev.one("kubernetes:apps/v1:StatefulSet").protect


@pytest.mark.parametrize("args,message", [
    ({"version": 12}, "LocalPostgres.version: 12 is not one of"),
    ({"node_port": 80}, "LocalPostgres.node_port: 80 is outside the NodePort range"),
])
def test_bad_args_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        run(args)


def test_app_secret_in_each_namespace_has_the_eight_keys():
    ev, captured = run({})
    secrets = [r for r in ev.by_type("kubernetes:core/v1:Secret") if r.parent.endswith("AppDatabaseSecret::app")]
    assert sorted(s.inputs["metadata"]["namespace"] for s in secrets) == ["jobs", "web"]
    for s in secrets:
        data = s.inputs["stringData"]
        assert isinstance(data, Secret)
        assert sorted(unwrap(data)) == sorted(SECRET_KEYS)
        assert unwrap(data)["DATABASE_URL"] == captured["connection"].url()


def test_app_secret_requires_a_namespace():
    with pytest.raises(ValueError, match="AppDatabaseSecret.namespaces"):
        evaluate("unit", config={}, program=lambda: AppDatabaseSecret("x", {"connection": DatabaseConnection(
            "h", 5432, "d", "u", "p"), "namespaces": []}))


def test_the_database_namespace_is_protected_with_the_data():
    # Deleting the namespace would delete the volume claim in it, whatever the StatefulSet says.
    ev, _ = run({"protect": True})
    assert ev.one("kubernetes:core/v1:Namespace", "db-ns").protect


def test_app_namespaces_survive_a_rename_or_destroy():
    def program():
        provider = k8s.Provider("any", kubeconfig="fake")
        AppDatabaseSecret("app", {"connection": DatabaseConnection("h", 5432, "d", "u", "p"),
                                  "namespaces": ["web"], "create_namespaces": True},
                          pulumi.ResourceOptions(providers={"kubernetes": provider}))

    ev = evaluate("unit", program=program, config={})
    namespace = ev.one("kubernetes:core/v1:Namespace")
    assert namespace.retain_on_delete and not ev.one("kubernetes:core/v1:Secret").retain_on_delete
