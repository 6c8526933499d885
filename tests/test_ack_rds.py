"""AckRdsInstance on its own (plain providers, no EKS component): the ACK traps asserted."""

from __future__ import annotations

import re

import json
import sys
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from components.app_secret import AppDatabaseSecret  # noqa: E402
from components.connection import SECRET_KEYS  # noqa: E402
from components.db.ack_rds import AckRdsInstance  # noqa: E402
from components.fakes import FAKE_PASSWORD  # noqa: E402
from components.plan import Secret, evaluate, kubernetes_objects, plan_document, unwrap  # noqa: E402
from crd_schemas import check_custom_resource  # noqa: E402

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
BASE = {"vpc_id": "vpc-0abc", "private_subnet_ids": ["subnet-a", "subnet-b", "subnet-c"],
        "cluster_security_group_id": "sg-0eks", "oidc_provider_arn": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}",
        "oidc_issuer": ISSUER, "region": "eu-west-1", "identifier": "orders", "namespace": "orders-db"}


def program_with(**overrides):
    def program():
        provider = k8s.Provider("eks", kubeconfig="{}")
        cloud = aws.Provider("aws", region="eu-west-1")
        db = AckRdsInstance("orders", {**BASE, **overrides},
                            pulumi.ResourceOptions(providers={"kubernetes": provider, "aws": cloud}))
        AppDatabaseSecret("orders-app", {"connection": db.connection, "namespaces": ["orders"]},
                          pulumi.ResourceOptions(providers={"kubernetes": provider}))
        pulumi.export("host", db.host)
        pulumi.export("url", db.connection.apply(lambda c: c.url()))
        pulumi.export("export", db.endpoint_export)
    return program


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def prod(request):
    return evaluate("test", preview=request.param, config={}, program=program_with(protect=True), project="pgtiers")


@pytest.fixture(scope="module")
def prod_up():
    return evaluate("test", preview=False, config={}, program=program_with(protect=True), project="pgtiers")


def one(ev, kind):
    found = [(r, m) for r, m in kubernetes_objects(ev) if m["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def test_custom_resources_match_their_crds(prod):
    kinds = set()
    for _, manifest in kubernetes_objects(prod):
        if manifest["apiVersion"].endswith("services.k8s.aws/v1alpha1"):
            check_custom_resource(manifest)
            kinds.add(manifest["kind"])
    assert kinds == {"DBSubnetGroup", "DBInstance", "FieldExport"}


def test_db_instance_spec(prod):
    _, instance = one(prod, "DBInstance")
    spec = instance["spec"]
    assert spec["engine"] == "postgres"
    assert spec["engineVersion"] == "18", "only the major is pinned: AWS minor upgrades are not drift"
    assert spec["dbInstanceClass"] == "db.t4g.medium"
    assert spec["allocatedStorage"] == 20 and spec["maxAllocatedStorage"] == 100
    assert spec["multiAZ"] is True and spec["storageEncrypted"] is True
    assert spec["publiclyAccessible"] is False
    assert spec["deletionProtection"] is True
    assert spec["backupRetentionPeriod"] >= 7
    assert spec["masterUserPassword"] == {"namespace": "orders-db", "name": "orders-master-credentials",
                                          "key": "password"}
    assert spec["dbSubnetGroupRef"] == {"from": {"name": "orders-subnets"}}


def test_delete_takes_a_final_snapshot(prod):
    _, instance = one(prod, "DBInstance")
    annotations = instance["metadata"]["annotations"]
    # ACK's default is to SKIP the final snapshot; the exact keys come from rds-controller's apis/v1alpha1.
    assert annotations["rds.services.k8s.aws/skip-final-snapshot"] == "false"
    # Unique per instance (a random suffix kept in state); unknown until that suffix exists.
    final = annotations["rds.services.k8s.aws/final-db-snapshot-identifier"]
    assert final == "[unknown]" if prod.preview else re.fullmatch(r"orders-final-[0-9a-f]{8}", final), final
    assert annotations["rds.services.k8s.aws/delete-automated-backups"] == "false"
    assert annotations["services.k8s.aws/deletion-policy"] == "retain"
    assert annotations["pulumi.com/waitFor"] == "jsonpath={.status.dbInstanceStatus}=available"


def test_password_secret_is_opaque_with_the_generated_password(prod_up):
    _, instance = one(prod_up, "DBInstance")
    ref = instance["spec"]["masterUserPassword"]
    secret = next(r for r in prod_up.by_type("kubernetes:core/v1:Secret")
                  if r.inputs["metadata"]["name"] == ref["name"])
    # The ACK runtime reads only Opaque Secrets ("SecretTypeNotSupported" otherwise).
    assert secret.inputs["type"] == "Opaque"
    data = unwrap(secret.inputs["stringData"])
    assert data[ref["key"]] == FAKE_PASSWORD and data["username"] == "app"
    password = prod_up.one("random:index/randomPassword:RandomPassword")
    assert not set(password.inputs["overrideSpecial"]) & set('/"@ '), "RDS refuses these in a master password"
    assert secret.protect and password.protect


def test_field_export_target_exists_first_and_kind_is_lowercase(prod):
    registration, export = one(prod, "FieldExport")
    spec = export["spec"]
    assert spec["to"]["kind"] in ("configmap", "secret")
    assert spec["from"] == {"path": ".status.endpoint.address",
                            "resource": {"group": "rds.services.k8s.aws", "kind": "DBInstance", "name": "orders"}}
    target = next(r for r in prod.by_type("kubernetes:core/v1:ConfigMap")
                  if r.inputs["metadata"]["name"] == spec["to"]["name"])
    assert target.urn in prod.transitive_dependencies(registration.urn)
    # Same namespace: ACK is turning cross-namespace exports off by default.
    assert spec["to"]["namespace"] == export["metadata"]["namespace"] == target.inputs["metadata"]["namespace"]


def test_field_export_into_a_secret():
    ev = evaluate("test", config={}, program=program_with(endpoint_export="secret"), project="pgtiers")
    registration, export = one(ev, "FieldExport")
    assert export["spec"]["to"]["kind"] == "secret"
    target = next(r for r in ev.by_type("kubernetes:core/v1:Secret")
                  if r.inputs["metadata"]["name"] == export["spec"]["to"]["name"])
    assert target.urn in ev.transitive_dependencies(registration.urn)
    check_custom_resource(export)


def test_controller_chart_and_irsa(prod_up):
    release = prod_up.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "oci://public.ecr.aws/aws-controllers-k8s/rds-chart"
    assert release.inputs["version"] == "1.11.1"
    assert release.inputs["namespace"] == "ack-system"
    values = unwrap(release.inputs["values"])
    assert values["aws"]["region"] == "eu-west-1"
    assert values["serviceAccount"]["name"] == "ack-rds-controller"
    role = next(r for r in prod_up.by_type("aws:iam/role:Role") if r.name == "orders-ack-rds-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition[f"{ISSUER}:sub"] == "system:serviceaccount:ack-system:ack-rds-controller"
    assert values["serviceAccount"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam:")
    attachment = prod_up.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert attachment.inputs["policyArn"].endswith(":iam::aws:policy/AmazonRDSFullAccess")
    for kind in ("DBSubnetGroup", "DBInstance", "FieldExport"):
        registration, _ = one(prod_up, kind)
        assert release.urn in prod_up.transitive_dependencies(registration.urn), f"{kind} must wait for the controller"


def test_security_group_admits_only_the_cluster_on_5432(prod):
    rules = prod.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert len(rules) == 1
    rule = rules[0].inputs
    assert rule["referencedSecurityGroupId"] == "sg-0eks"
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule and "cidrIpv6" not in rule
    group = prod.one("aws:ec2/securityGroup:SecurityGroup")
    assert group.inputs["vpcId"] == "vpc-0abc" and not group.inputs.get("ingress")
    _, subnets = one(prod, "DBSubnetGroup")
    assert subnets["spec"]["subnetIDs"] == BASE["private_subnet_ids"]


def test_connection_and_app_secret(prod_up):
    assert prod_up.outputs["host"] == "orders.c9akciq32.us-east-1.rds.amazonaws.com"
    url = prod_up.outputs["url"]
    assert isinstance(url, Secret) and url.value.endswith("rds.amazonaws.com:5432/app?sslmode=require")
    app = [r for r in prod_up.by_type("kubernetes:core/v1:Secret") if r.parent.endswith("orders-app")]
    assert sorted(unwrap(app[0].inputs["stringData"])) == sorted(SECRET_KEYS)
    assert prod_up.outputs["export"] == "configmap/orders-db/orders-endpoint"
    assert FAKE_PASSWORD not in json.dumps(plan_document(prod_up))


def test_without_protect_the_instance_can_be_deleted_but_still_snapshots():
    ev = evaluate("test", config={}, program=program_with(), project="pgtiers")
    _, instance = one(ev, "DBInstance")
    assert instance["spec"]["deletionProtection"] is False
    assert instance["metadata"]["annotations"]["rds.services.k8s.aws/skip-final-snapshot"] == "false"
    assert "services.k8s.aws/deletion-policy" not in instance["metadata"]["annotations"]
    assert not ev.one("kubernetes:rds.services.k8s.aws/v1alpha1:DBInstance").protect


@pytest.mark.parametrize("overrides, message", [
    ({"version": 13}, "version"),
    ({"identifier": "Orders_DB"}, "identifier"),
    ({"max_storage_gb": 20}, "max_storage_gb"),
    ({"protect": True, "backup_retention_days": 3}, "below 7"),
    ({"endpoint_export": "ConfigMap"}, "endpoint_export"),
    ({"region": None}, "region"),
])
def test_bad_arguments_fail_before_anything_registers(overrides, message):
    with pytest.raises(Exception, match=message):
        evaluate("test", config={}, program=program_with(**overrides), project="pgtiers")
