"""The prod and staging programs (EKS + Aurora + External Secrets), read from what the engine would see."""

from __future__ import annotations

import json

import pytest

from components.config import ConfigError
from components.connection import SECRET_KEYS
from components.external_secrets import ESO_API_VERSION, ESO_CHART_VERSION, ESO_REPOSITORY, SERVICE_ACCOUNT
from components.fakes import FAKE_PASSWORD
from components.plan import evaluate, plan_document, run_cli, stack_config


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def prod(request):
    return evaluate("prod", preview=request.param)


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def staging(request):
    return evaluate("staging", preview=request.param)


def _aurora(ev):
    return ev.one("aws:rds/cluster:Cluster")


# --- prod ------------------------------------------------------------------------------------------


def test_prod_cluster_has_the_safety_inputs(prod):
    cluster = _aurora(prod)
    i = cluster.inputs
    assert (i["engine"], i["engineMode"], i["engineVersion"]) == ("aurora-postgresql", "provisioned", "16")
    assert i["serverlessv2ScalingConfiguration"]["minCapacity"] >= 0.5
    assert i["storageEncrypted"] is True and i["manageMasterUserPassword"] is True
    assert i["deletionProtection"] is True and i["skipFinalSnapshot"] is False
    assert i["backupRetentionPeriod"] >= 7
    assert i["copyTagsToSnapshot"] is True and i["enabledCloudwatchLogsExports"] == ["postgresql"]
    assert "availabilityZones" not in i and cluster.ignore_changes == ["availabilityZones"]
    if not prod.preview:
        assert i["finalSnapshotIdentifier"].startswith("pgtiers-prod-final-")
        assert i["kmsKeyId"] == i["masterUserSecretKmsKeyId"] == prod.one("aws:kms/key:Key", "pgtiers-prod-key") \
            .inputs.get("arn", i["kmsKeyId"])


def test_prod_protects_cluster_instances_and_key(prod):
    assert _aurora(prod).protect
    instances = prod.by_type("aws:rds/clusterInstance:ClusterInstance")
    assert len(instances) >= 2
    assert all(r.protect and r.inputs["instanceClass"] == "db.serverless" for r in instances)
    assert all(r.inputs["publiclyAccessible"] is False for r in instances)
    assert prod.one("aws:kms/key:Key", "pgtiers-prod-key").protect
    if not prod.preview:
        assert len({r.inputs["availabilityZone"] for r in instances}) == len(instances)


def test_prod_opens_5432_only_to_the_eks_cluster_security_group(prod):
    rules = prod.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert len(rules) == 1
    rule = rules[0]
    assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (5432, 5432, "tcp")
    assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)
    eks = prod.one("eks:index:Cluster")
    sources = rule.property_dependencies["referencedSecurityGroupId"]
    assert eks.urn in sources and all("eks:index:Cluster" in urn for urn in sources)
    if not prod.preview:
        # eksCluster.vpcConfig.clusterSecurityGroupId, the group managed-node-group pods carry.
        assert rule.inputs["referencedSecurityGroupId"].startswith("sg-0eks")
        assert rule.inputs["referencedSecurityGroupId"] != ""


def test_aurora_never_waits_for_eks(prod):
    for type_ in ("aws:rds/cluster:Cluster", "aws:rds/subnetGroup:SubnetGroup", "aws:ec2/securityGroup:SecurityGroup"):
        for r in prod.by_type(type_):
            deps = prod.transitive_dependencies(r.urn)
            types = {prod.get(u).type for u in deps if any(x.urn == u for x in prod.resources)}
            assert not [t for t in types if t.startswith("eks:")], (r.name, types)
            assert "aws:ec2/vpc:Vpc" in types  # the graph was walked: the VPC is there
    cluster_deps = {prod.get(u).type for u in prod.transitive_dependencies(_aurora(prod).urn)
                    if any(x.urn == u for x in prod.resources)}
    assert "aws:ec2/subnet:Subnet" in cluster_deps
    assert "pgtiers:index:EksCluster" not in cluster_deps


def test_prod_has_no_plain_text_secret(prod):
    document = json.dumps(plan_document(prod))
    assert FAKE_PASSWORD not in document
    assert "fake-client-key-data" not in document  # the kubeconfig stays secret


def test_prod_delivers_credentials_through_external_secrets(prod):
    assert not prod.by_type("pgtiers:index:AppDatabaseSecret")
    release = prod.one("kubernetes:helm.sh/v3:Release")
    assert release.inputs["chart"] == "external-secrets" and release.inputs["version"] == ESO_CHART_VERSION
    assert release.inputs["repositoryOpts"] == {"repo": ESO_REPOSITORY}
    assert release.inputs["values"]["installCRDs"] is True
    external = prod.one(f"kubernetes:{ESO_API_VERSION}:ExternalSecret")
    spec = external.inputs["spec"]
    assert spec["refreshInterval"] == "5m"
    assert release.urn in external.dependencies
    assert spec["target"]["name"] == "database" and spec["target"]["creationPolicy"] == "Owner"
    if not prod.preview:
        assert sorted(spec["target"]["template"]["data"]) == sorted(SECRET_KEYS)
        arn = prod.outputs["auroraMasterSecretArn"]
        assert [d["remoteRef"] for d in spec["data"]] == [{"key": arn, "property": "username"},
                                                          {"key": arn, "property": "password"}]
    store = prod.one(f"kubernetes:{ESO_API_VERSION}:SecretStore").inputs["spec"]["provider"]["aws"]
    assert store["service"] == "SecretsManager"
    assert store["auth"] == {"jwt": {"serviceAccountRef": {"name": SERVICE_ACCOUNT}}}


def test_prod_irsa_role_reads_only_that_secret_with_only_its_key(prod):
    role = prod.one("aws:iam/role:Role", "pgtiers-prod-app-db-reader")
    policy = prod.one("aws:iam/rolePolicy:RolePolicy", "pgtiers-prod-app-db-reader")
    if prod.preview:
        return
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert len(trust) == 1 and trust[0]["Action"] == "sts:AssumeRoleWithWebIdentity"
    subjects = [v for k, v in trust[0]["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    assert subjects == [[f"system:serviceaccount:app:{SERVICE_ACCOUNT}"]]
    statements = json.loads(policy.inputs["policy"])["Statement"]
    arn = prod.outputs["auroraMasterSecretArn"]
    key = _aurora(prod).inputs["kmsKeyId"]
    assert {s["Sid"]: s["Resource"] for s in statements} == {"ReadTheDatabaseSecret": arn, "DecryptOnlyThatSecret": key}
    decrypt = next(s for s in statements if s["Action"] == "kms:Decrypt")
    assert decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] == arn
    assert all("*" not in json.dumps(s["Resource"]) for s in statements)


def test_prod_eks_is_api_auth_with_nat_per_zone(prod):
    cluster = prod.one("eks:index:Cluster").inputs
    assert cluster["authenticationMode"] == "API" and cluster["createOidcProvider"] is True
    assert len(prod.by_type("aws:ec2/natGateway:NatGateway")) == 3
    assert prod.one("kubernetes:storage.k8s.io/v1:StorageClass").inputs["reclaimPolicy"] == "Retain"


# --- staging --------------------------------------------------------------------------------------


def test_staging_is_one_paused_instance_behind_one_nat_that_keeps_a_final_snapshot(staging):
    i = _aurora(staging).inputs
    assert i["serverlessv2ScalingConfiguration"] == {"minCapacity": 0, "maxCapacity": 4, "secondsUntilAutoPause": 900}
    assert len(staging.by_type("aws:rds/clusterInstance:ClusterInstance")) == 1
    assert len(staging.by_type("aws:ec2/natGateway:NatGateway")) == 1
    assert i["skipFinalSnapshot"] is False and i["deletionProtection"] is False
    assert not _aurora(staging).protect
    key = staging.one("aws:kms/key:Key", "pgtiers-staging-key")
    assert key.retain_on_delete  # the final snapshot stays restorable after `pulumi destroy`
    assert FAKE_PASSWORD not in json.dumps(plan_document(staging))


# --- bad values in a copy of the prod stack file -----------------------------------------------------

BAD_PROD = [
    ("database", "minAcu", 0.3, "pgtiers:database.minAcu: 0.3 is not a multiple of 0.5"),
    ("database", "maxAcu", 300, "pgtiers:database.maxAcu: 300"),
    ("database", "minAcu", 32, "pgtiers:database.minAcu: 32"),
    ("database", "maxAcu", 0.5, "pgtiers:database.maxAcu: 0.5 is below 1"),
    ("database", "version", "14.11", None),  # with minAcu 0, below
    ("database", "secondsUntilAutoPause", 60, "pgtiers:database.secondsUntilAutoPause: 60 is outside 300-86400"),
    ("database", "identifier", "Prod_DB", "pgtiers:database.identifier: 'Prod_DB' is not an RDS identifier"),
    ("database", "identifier", "prod--db", "pgtiers:database.identifier: 'prod--db' is not an RDS identifier"),
    ("database", "identifier", "prod-db-", "pgtiers:database.identifier: 'prod-db-' is not an RDS identifier"),
    ("database", "username", "admin", "pgtiers:database.username: 'admin' is a name RDS reserves"),
    ("database", "username", "appuser1234567890", "pgtiers:database.username: 'appuser1234567890' is not an Aurora master"),
    ("database", "backupRetentionDays", 3, "pgtiers:database.backupRetentionDays: 3 is below 7"),
    ("database", "deletionProtection", False, "pgtiers:database.deletionProtection: False must be true"),
    ("database", "finalSnapshot", False, "pgtiers:database.finalSnapshot: False must be true"),
    ("database", "maintenanceWindow", "sun:03:00-sun:04:00", "pgtiers:database.maintenanceWindow: 'sun:03:00-sun:04:00' overlaps"),
    ("cluster", "desiredNodes", 10, "pgtiers:cluster.desiredNodes: 10 must lie between"),
]


def _prod_config_with(section: str, key: str, value) -> dict[str, str]:
    config = stack_config("prod")
    data = json.loads(config[f"pgtiers:{section}"])
    data[key] = value
    if key == "version":
        data["minAcu"] = 0
    config[f"pgtiers:{section}"] = json.dumps(data)
    return config


@pytest.mark.parametrize("section,key,value,expected", BAD_PROD, ids=[f"{b[1]}={b[2]}" for b in BAD_PROD])
def test_bad_value_in_prod_stops_with_one_line_naming_the_key(section, key, value, expected):
    with pytest.raises(ConfigError) as caught:
        evaluate("prod", config=_prod_config_with(section, key, value))
    message = str(caught.value)
    assert "\n" not in message
    if expected is None:  # the version rule speaks through minAcu, which the version makes invalid
        assert "needs auto-pause, which Aurora PostgreSQL 14.11 lacks" in message
        expected = "pgtiers:database.minAcu: 0"
    assert message.startswith(expected), message
    assert message.count("pgtiers:") >= 1 and len(message) < 300


def test_offline_plan_exits_zero_for_prod_and_staging(tmp_path, capsys):
    for stack in ("prod", "staging"):
        assert run_cli(stack, tmp_path / stack, preview=False) == 0
        document = json.loads((tmp_path / stack / "plan.json").read_text())
        assert any(r["type"] == "aws:rds/cluster:Cluster" for r in document["resources"])
