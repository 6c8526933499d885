"""AuroraServerlessDb on its own (a hand-made VPC, as a team would import it), its argument rules,
its connection, and the ESO templates that must render the same eight keys as the contract."""

from __future__ import annotations

import json
import re
import runpy
from urllib.parse import quote_plus

import pulumi
import pulumi_aws as aws
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.connection import SECRET_KEYS, DatabaseConnection
from components.db.aurora import AuroraServerlessDb
from components.db.aurora_rules import AuroraArgumentError
from components.external_secrets import secret_templates
from components.fakes import FAKE_PASSWORD
from components.plan import Secret, evaluate, plan_document

from conftest import PROJECT

REGION = {"aws:region": "eu-west-1"}
EXAMPLE = PROJECT / "examples" / "aurora_standalone.py"


def _example() -> None:
    runpy.run_path(str(EXAMPLE), run_name="__main__")


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def standalone(request):
    return evaluate("example", preview=request.param, config=REGION, program=_example)


def _vpc(zones=("eu-west-1a", "eu-west-1b")):
    vpc = aws.ec2.Vpc("net", cidr_block="10.9.0.0/16")
    subnets = [aws.ec2.Subnet(f"net-{z}", vpc_id=vpc.id, cidr_block=f"10.9.{i}.0/24", availability_zone=z)
               for i, z in enumerate(zones)]
    clients = aws.ec2.SecurityGroup("clients", vpc_id=vpc.id, description="clients")
    return vpc, subnets, clients


def _db_args(**overrides):
    vpc, subnets, clients = _vpc()
    return {"vpc_id": vpc.id, "subnet_ids": [s.id for s in subnets], "allowed_security_group_ids": [clients.id],
            **overrides}


# --- the example program, as a team would use the component -------------------------------------


def test_example_builds_a_database_and_no_kubernetes(standalone):
    types = [r.type for r in standalone.resources]
    assert types.count("pgtiers:index:AuroraServerlessDb") == 1
    assert types.count("aws:rds/cluster:Cluster") == 1
    assert types.count("aws:rds/clusterInstance:ClusterInstance") == 2
    assert not [t for t in types if t.startswith(("eks:", "kubernetes:", "pulumi:providers:kubernetes"))]
    if not standalone.preview:
        assert standalone.outputs["writer"].startswith("orders-db.cluster-")
        assert standalone.outputs["masterSecretArn"].startswith("arn:aws:secretsmanager:eu-west-1:")


def test_cluster_is_serverless_v2_encrypted_with_a_rotating_customer_key(standalone):
    cluster = standalone.one("aws:rds/cluster:Cluster").inputs
    assert cluster["engine"] == "aurora-postgresql" and cluster["engineMode"] == "provisioned"
    assert cluster["engineVersion"] == "16"  # the major only: AWS minor upgrades are no diff
    assert cluster["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 8}
    assert cluster["storageEncrypted"] is True
    key = standalone.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True
    if not standalone.preview:
        assert cluster["kmsKeyId"].startswith("arn:aws:kms:") and cluster["kmsKeyId"].endswith(
            cluster["masterUserSecretKmsKeyId"].split("/")[-1])
    assert cluster["manageMasterUserPassword"] is True and "masterPassword" not in cluster
    assert cluster["copyTagsToSnapshot"] is True
    assert cluster["enabledCloudwatchLogsExports"] == ["postgresql"]
    assert cluster["deletionProtection"] is True


def test_availability_zones_are_never_set_and_their_changes_ignored(standalone):
    cluster = standalone.one("aws:rds/cluster:Cluster")
    assert "availabilityZones" not in cluster.inputs
    assert cluster.ignore_changes == ["availabilityZones"]


def test_final_snapshot_is_kept_under_a_unique_name_that_is_stable_across_runs(standalone):
    cluster = standalone.one("aws:rds/cluster:Cluster").inputs
    assert cluster["skipFinalSnapshot"] is False
    suffix = standalone.one("random:index/randomId:RandomId")
    assert suffix.name == "orders-db-final-snapshot"
    if not standalone.preview:
        assert re.fullmatch(r"orders-db-final-[0-9a-f]{8}", cluster["finalSnapshotIdentifier"])
        again = evaluate("example", config=REGION, program=_example)
        assert again.one("aws:rds/cluster:Cluster").inputs["finalSnapshotIdentifier"] == cluster["finalSnapshotIdentifier"]


def test_data_bearing_resources_are_protected_and_the_key_outlives_a_destroy(standalone):
    assert standalone.one("aws:rds/cluster:Cluster").protect
    assert all(i.protect for i in standalone.by_type("aws:rds/clusterInstance:ClusterInstance"))
    key = standalone.one("aws:kms/key:Key")
    assert key.protect and key.retain_on_delete  # the final snapshot is encrypted with it
    assert not standalone.one("aws:rds/subnetGroup:SubnetGroup").protect


def test_parameter_group_follows_the_major_and_forces_tls(standalone):
    params = standalone.one("aws:rds/clusterParameterGroup:ClusterParameterGroup")
    assert params.inputs["family"] == "aurora-postgresql16"
    assert {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"} in params.inputs["parameters"]
    if not standalone.preview:
        assert standalone.one("aws:rds/cluster:Cluster").inputs["dbClusterParameterGroupName"].startswith("orders-db-params")


def test_log_group_exists_before_the_cluster_with_a_retention(standalone):
    log = standalone.one("aws:cloudwatch/logGroup:LogGroup")
    assert log.inputs["name"] == "/aws/rds/cluster/orders-db/postgresql"
    assert log.inputs["retentionInDays"] == 30
    assert log.urn in standalone.one("aws:rds/cluster:Cluster").dependencies


def test_instances_are_private_serverless_in_different_zones_with_promotion_tiers(standalone):
    instances = sorted(standalone.by_type("aws:rds/clusterInstance:ClusterInstance"), key=lambda r: r.name)
    assert [i.inputs["instanceClass"] for i in instances] == ["db.serverless"] * 2
    assert all(i.inputs["publiclyAccessible"] is False for i in instances)
    assert [i.inputs["promotionTier"] for i in instances] == [0, 1]
    assert [i.inputs["identifier"] for i in instances] == ["orders-db-1", "orders-db-2"]
    if not standalone.preview:
        assert [i.inputs["availabilityZone"] for i in instances] == ["eu-west-1a", "eu-west-1b"]


def test_postgres_port_is_open_only_to_the_named_security_group(standalone):
    sg = standalone.one("aws:ec2/securityGroup:SecurityGroup", "orders-db-sg")
    assert "ingress" not in sg.inputs and "egress" not in sg.inputs
    rules = standalone.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    assert len(rules) == 1
    rule = rules[0].inputs
    assert (rule["fromPort"], rule["toPort"], rule["ipProtocol"]) == (5432, 5432, "tcp")
    assert "cidrIpv4" not in rule and "cidrIpv6" not in rule
    app = standalone.one("aws:ec2/securityGroup:SecurityGroup", "orders-app")
    assert app.urn in rules[0].property_dependencies["referencedSecurityGroupId"]


def test_database_depends_on_network_pieces_only(standalone):
    cluster = standalone.one("aws:rds/cluster:Cluster")
    deps = {standalone.get(u).type for u in standalone.transitive_dependencies(cluster.urn)
            if any(r.urn == u for r in standalone.resources)}
    assert "aws:ec2/subnet:Subnet" in deps and "aws:ec2/vpc:Vpc" in deps
    assert "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule" not in deps


def test_no_password_reaches_the_plan(standalone):
    assert FAKE_PASSWORD not in json.dumps(plan_document(standalone))


# --- the connection ----------------------------------------------------------------------------


def _connection_program(**overrides):
    def program():
        db = AuroraServerlessDb("db", _db_args(**overrides))
        pulumi.export("connection", db.connection.apply(lambda c: {"host": c.host, "user": c.username,
                                                                   "password": c.password, "url": c.url()}))
        pulumi.export("secretArn", db.master_secret_arn)
    return program


def test_connection_password_comes_from_the_managed_secret_and_stays_secret():
    ev = evaluate("t", config=REGION, program=_connection_program(master_username="owner"))
    conn = ev.outputs["connection"]
    assert isinstance(conn, Secret)
    assert conn.value["password"] == FAKE_PASSWORD and conn.value["user"] == "owner"
    assert conn.value["host"] == ev.one("aws:rds/cluster:Cluster").inputs["clusterIdentifier"] + \
        ".cluster-cfake0example.eu-west-1.rds.amazonaws.com"
    assert conn.value["url"].endswith("?sslmode=require")
    assert ev.outputs["secretArn"].startswith("arn:aws:secretsmanager:")


def test_direct_mode_generates_a_password_kept_secret_in_the_state():
    ev = evaluate("t", config=REGION, program=_connection_program(manage_master_user_password=False))
    cluster = ev.one("aws:rds/cluster:Cluster").inputs
    assert "manageMasterUserPassword" not in cluster
    assert cluster["masterPassword"] == Secret(FAKE_PASSWORD)
    password = ev.one("random:index/randomPassword:RandomPassword").inputs
    assert not set("/@\"' ") & set(password["overrideSpecial"])  # RDS refuses these characters
    assert ev.outputs["connection"].value["password"] == FAKE_PASSWORD
    assert ev.outputs["secretArn"] is None


# --- argument rules: each stops the component before anything registers --------------------------

BAD = [
    ({"min_acu": 0.3}, "min_acu", "not a multiple of 0.5"),
    ({"max_acu": 4.2}, "max_acu", "not a multiple of 0.5"),
    ({"min_acu": -0.5}, "min_acu", "outside 0-256"),
    ({"max_acu": 256.5}, "max_acu", "outside 0-256"),
    ({"min_acu": 8, "max_acu": 4}, "min_acu", "above max_acu"),
    ({"max_acu": 0.5, "min_acu": 0.5}, "max_acu", "below 1"),
    ({"min_acu": 0, "engine_version": "15.6"}, "min_acu", "run 15.7 or later"),
    ({"min_acu": 0, "engine_version": "13.14"}, "min_acu", "run 13.15 or later"),
    ({"min_acu": 0, "seconds_until_auto_pause": 299}, "seconds_until_auto_pause", "outside 300-86400"),
    ({"min_acu": 0, "seconds_until_auto_pause": 86401}, "seconds_until_auto_pause", "outside 300-86400"),
    ({"seconds_until_auto_pause": 600}, "seconds_until_auto_pause", "only applies when min_acu is 0"),
    ({"identifier": "1orders"}, "identifier", "not an RDS identifier"),
    ({"identifier": "Orders"}, "identifier", "not an RDS identifier"),
    ({"identifier": "orders--db"}, "identifier", "not an RDS identifier"),
    ({"identifier": "orders-"}, "identifier", "not an RDS identifier"),
    ({"identifier": "o" * 64}, "identifier", "not an RDS identifier"),
    ({"identifier": "o" * 61}, "identifier", "longer than 60"),
    ({"master_username": "9app"}, "master_username", "not an Aurora master user name"),
    ({"master_username": "app_user"}, "master_username", "not an Aurora master user name"),
    ({"master_username": "a" * 17}, "master_username", "not an Aurora master user name"),
    ({"master_username": "admin"}, "master_username", "reserves"),
    ({"master_username": "user"}, "master_username", "reserves"),
    ({"engine_version": "12"}, "engine_version", "not a supported Aurora PostgreSQL major"),
    ({"engine_version": "sixteen"}, "engine_version", "not an Aurora PostgreSQL version"),
    ({"instances": 0}, "instances", "outside 1-16"),
    ({"backup_retention_days": 36}, "backup_retention_days", "outside 1-35"),
    ({"preferred_backup_window": "3am"}, "preferred_backup_window", "not a UTC window"),
    ({"preferred_maintenance_window": "sun:03:30-sun:04:30"}, "preferred_maintenance_window", "overlaps"),
    ({"log_retention_days": 10}, "log_retention_days", "not a CloudWatch Logs retention"),
    ({"monitoring_interval": 2}, "monitoring_interval", "not one of"),
]


@pytest.mark.parametrize("overrides,field,words", BAD, ids=[f"{b[1]}={list(b[0].values())[-1]}" for b in BAD])
def test_bad_argument_stops_before_anything_registers(overrides, field, words):
    raised = []

    def program():
        try:
            AuroraServerlessDb("orders", {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], **overrides})
        except AuroraArgumentError as exc:
            raised.append(exc)

    ev = evaluate("t", config=REGION, program=program)
    assert ev.resources == []
    assert len(raised) == 1
    message = str(raised[0])
    assert message.startswith(f"AuroraServerlessDb.{field}: ") and words in message
    assert "\n" not in message


def test_good_edge_values_pass():
    def program():
        AuroraServerlessDb("orders", {"vpc_id": "vpc-1", "subnet_ids": ["subnet-a", "subnet-b"], "min_acu": 0,
                                      "max_acu": 256, "seconds_until_auto_pause": 86400, "engine_version": "16.3",
                                      "identifier": "o" * 60, "master_username": "postgres"})

    ev = evaluate("t", config=REGION, program=program)
    scaling = ev.one("aws:rds/cluster:Cluster").inputs["serverlessv2ScalingConfiguration"]
    assert scaling == {"minCapacity": 0, "maxCapacity": 256, "secondsUntilAutoPause": 86400}


# --- External Secrets templates render exactly the contract's eight keys -------------------------


def _render_go_template(template: str, values: dict[str, str]) -> str:
    """The two template forms ``secret_templates`` emits, evaluated like text/template + sprig would:
    ``urlquery`` is Go's url.QueryEscape (== Python's quote_plus), ``replace`` is strings.Replace."""
    def expand(match: re.Match) -> str:
        field, pipeline = match.group(1), match.group(2)
        value = values[field]
        if pipeline:
            assert pipeline.strip() == '| urlquery | replace "+" "%20"', pipeline
            value = quote_plus(value, safe="").replace("+", "%20")
        return value

    rendered = re.sub(r"\{\{ \.(\w+)( \|[^}]*)? \}\}", expand, template)
    assert "{{" not in rendered
    return rendered


PASSWORDS = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(password=PASSWORDS, username=st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True))
def test_eso_templates_render_what_the_contract_renders(password, username):
    host = "db.cluster-x.eu-west-1.rds.amazonaws.com"
    templates = secret_templates(host, 5432, "app", "require")
    assert list(templates) == list(SECRET_KEYS)
    rendered = {k: _render_go_template(v, {"username": username, "password": password}) for k, v in templates.items()}
    expected = DatabaseConnection(host=host, port=5432, database="app", username=username, password=password,
                                  sslmode="require").secret_data()
    assert rendered == expected


def test_eso_templates_for_the_fake_password():
    rendered = {k: _render_go_template(v, {"username": "app", "password": FAKE_PASSWORD})
                for k, v in secret_templates("h", 5432, "app", "require").items()}
    assert rendered["DATABASE_URL"] == DatabaseConnection("h", 5432, "app", "app", FAKE_PASSWORD).url()
    assert "%20" in rendered["DATABASE_URL"] and "+" not in rendered["DATABASE_URL"].split("@")[0]
