"""The k8s (EKS + cnpg) and gitops (EKS + ack-rds) stacks, as ``pulumi up`` and ``pulumi preview`` see them."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from components.connection import SECRET_KEYS  # noqa: E402
from components.db.cnpg import BARMAN_PLUGIN  # noqa: E402
from components.fakes import FAKE_PASSWORD  # noqa: E402
from components.plan import Secret, evaluate, kubernetes_objects, plan_document, unwrap  # noqa: E402
from crd_schemas import chart_schema, check_custom_resource, check_values, crd_schema  # noqa: E402

CHART_SCHEMAS = {"cloudnative-pg": "cnpg-operator-chart.values.schema.json",
                 "plugin-barman-cloud": "plugin-barman-cloud-chart.values.schema.json"}
#: Charts whose values schema is not in ../shared/reference: their values are asserted by hand.
CHARTS_WITHOUT_REFERENCE_SCHEMA = {"cert-manager", "oci://public.ecr.aws/aws-controllers-k8s/rds-chart"}


@pytest.fixture(scope="module", params=[("k8s", False), ("k8s", True), ("gitops", False), ("gitops", True)],
                ids=["k8s-up", "k8s-preview", "gitops-up", "gitops-preview"])
def stack(request):
    name, preview = request.param
    return evaluate(name, preview=preview)


@pytest.fixture(scope="module")
def k8s_up():
    return evaluate("k8s", preview=False)


@pytest.fixture(scope="module")
def gitops_up():
    return evaluate("gitops", preview=False)


def manifests(ev, kind):
    return [(r, m) for r, m in kubernetes_objects(ev) if m["kind"] == kind]


def test_every_custom_resource_validates_against_its_crd(stack):
    # Custom groups have a dot and are not Kubernetes' own *.k8s.io groups.
    custom = [m for _, m in kubernetes_objects(stack) if "/" in m["apiVersion"]
              and "." in m["apiVersion"].split("/")[0] and not m["apiVersion"].split("/")[0].endswith(".k8s.io")]
    assert custom, "the stack declared no custom resources"
    for manifest in custom:
        assert crd_schema(manifest["apiVersion"], manifest["kind"]) is not None, manifest["kind"]
        check_custom_resource(manifest)


def test_every_helm_values_object_matches_its_chart_schema(stack):
    releases = stack.by_type("kubernetes:helm.sh/v3:Release")
    assert releases
    for release in releases:
        chart = release.inputs["chart"]
        assert release.inputs["version"], f"{chart} is not pinned"
        if chart in CHART_SCHEMAS:
            check_values(unwrap(release.inputs["values"]), chart_schema(CHART_SCHEMAS[chart]), chart)
        else:
            assert chart in CHARTS_WITHOUT_REFERENCE_SCHEMA, f"{chart}: no schema and not known to lack one"


def test_app_secret_has_the_eight_keys_and_stays_secret(stack):
    app = [r for r in stack.by_type("kubernetes:core/v1:Secret") if r.inputs["metadata"].get("namespace") == "app"]
    assert len(app) == 1
    data = app[0].inputs["stringData"]
    assert isinstance(data, Secret)
    if not stack.preview:
        assert sorted(data.value) == sorted(SECRET_KEYS)


def test_no_plain_text_secret_in_the_plan(stack):
    document = json.dumps(plan_document(stack))
    assert FAKE_PASSWORD not in document
    assert "fake-client-key-data" not in document
    assert isinstance(stack.outputs["kubeconfig"], Secret)


def test_k8s_cnpg_traps(k8s_up):
    (_, cluster), = manifests(k8s_up, "Cluster")
    spec = cluster["spec"]
    role = next(r for r in k8s_up.by_type("aws:iam/role:Role") if r.name.endswith("-db-backup-role"))
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subjects = [v for k, v in trust["Statement"][0]["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    service_account = spec.get("serviceAccountName", cluster["metadata"]["name"])
    assert subjects == [f"system:serviceaccount:{cluster['metadata']['namespace']}:{service_account}"]
    assert spec["serviceAccountTemplate"]["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == \
        k8s_up.outputs["backupRoleArn"]

    (_, store), = manifests(k8s_up, "ObjectStore")
    assert store["spec"]["configuration"]["s3Credentials"]["inheritFromIAMRole"] is True
    assert store["spec"]["configuration"]["destinationPath"] == k8s_up.outputs["backupDestination"]
    assert spec["plugins"][0]["isWALArchiver"] is True

    (_, backup), = manifests(k8s_up, "ScheduledBackup")
    assert backup["spec"]["method"] == "plugin"
    assert backup["spec"]["pluginConfiguration"]["name"] == BARMAN_PLUGIN
    assert len(backup["spec"]["schedule"].split()) == 6

    assert spec["instances"] == 3 and spec["enablePDB"] is True
    assert spec["affinity"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["storage"]["storageClass"] == spec["walStorage"]["storageClass"] == "gp3"


def test_k8s_webhook_users_wait_for_operator_plugin_and_storage_class(k8s_up):
    operator = next(r for r in k8s_up.by_type("kubernetes:helm.sh/v3:Release") if r.inputs["chart"] == "cloudnative-pg")
    plugin = next(r for r in k8s_up.by_type("kubernetes:helm.sh/v3:Release")
                  if r.inputs["chart"] == "plugin-barman-cloud")
    gp3 = k8s_up.one("kubernetes:storage.k8s.io/v1:StorageClass")
    for kind in ("Cluster", "ObjectStore", "ScheduledBackup"):
        (registration, _), = manifests(k8s_up, kind)
        deps = k8s_up.transitive_dependencies(registration.urn)
        assert operator.urn in deps and plugin.urn in deps, f"{kind} would race the operator's webhook"
    (cluster, _), = manifests(k8s_up, "Cluster")
    assert gp3.urn in k8s_up.transitive_dependencies(cluster.urn), "volumes need the gp3 class to exist"
    assert cluster.protect, "Pulumi.k8s.yaml protects the data"


def test_gitops_ack_traps(gitops_up):
    (instance_reg, instance), = manifests(gitops_up, "DBInstance")
    annotations = instance["metadata"]["annotations"]
    assert annotations["rds.services.k8s.aws/skip-final-snapshot"] == "false"
    assert annotations["rds.services.k8s.aws/final-db-snapshot-identifier"]
    spec = instance["spec"]
    assert spec["deletionProtection"] is True and spec["backupRetentionPeriod"] >= 7
    assert spec["publiclyAccessible"] is False and spec["multiAZ"] is True and spec["storageEncrypted"] is True
    assert spec["engineVersion"] == "17"
    assert instance_reg.protect

    (export_reg, export), = manifests(gitops_up, "FieldExport")
    assert export["spec"]["to"]["kind"] == "configmap"
    target = next(r for r in gitops_up.by_type("kubernetes:core/v1:ConfigMap")
                  if r.inputs["metadata"]["name"] == export["spec"]["to"]["name"])
    assert target.urn in gitops_up.transitive_dependencies(export_reg.urn)

    release = gitops_up.one("kubernetes:helm.sh/v3:Release")
    role = next(r for r in gitops_up.by_type("aws:iam/role:Role") if r.name.endswith("-ack-rds-role"))
    trust = json.loads(role.inputs["assumeRolePolicy"])
    subjects = [v for k, v in trust["Statement"][0]["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == ["system:serviceaccount:ack-system:ack-rds-controller"]
    assert unwrap(release.inputs["values"])["aws"]["region"] == "eu-west-1"

    eks_cluster_sg = next(r for r in gitops_up.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
                          if r.name.endswith("-db-sg-from-eks"))
    assert eks_cluster_sg.inputs["referencedSecurityGroupId"].startswith("sg-")
    assert eks_cluster_sg.inputs["fromPort"] == eks_cluster_sg.inputs["toPort"] == 5432
    assert gitops_up.outputs["databaseHost"].endswith(".rds.amazonaws.com")


@pytest.mark.parametrize("stack_name", ["k8s", "gitops"])
def test_plan_cli_exits_zero(stack_name, tmp_path, capsys):
    from components.__main__ import main

    assert main(["plan", "--stack", stack_name, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "plan.json").exists() and list((tmp_path / "manifests").glob("*.yaml"))


def test_protect_off_is_refused_to_lower_rds_backups_only_in_production():
    from components.config import ConfigError, parse_settings

    base = {"cluster": {"type": "eks", "name": "x"}, "database": {"tier": "ack-rds", "backupRetentionDays": 3}}
    assert parse_settings(base).database.backup_retention_days == 3
    with pytest.raises(ConfigError, match=r"pgtiers:database.backupRetentionDays: 3 is below 7"):
        parse_settings({**base, "protect": True})


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_cnpg_example_runs_on_a_plain_provider(preview):
    example = PROJECT / "examples" / "cnpg_on_any_cluster.py"
    ev = evaluate("example", preview=preview, config={},
                  program=lambda: runpy.run_path(str(example), run_name="__main__"))
    (registration, cluster), = manifests(ev, "Cluster")
    assert registration.provider and "::existing::" in registration.provider
    assert cluster["spec"]["enablePDB"] is False and not ev.by_type("aws:s3/bucket:Bucket")
    check_custom_resource(cluster)
