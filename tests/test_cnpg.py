"""CnpgCluster on its own (plain providers, no EKS component): every trap of DESIGN.md §5 asserted."""

from __future__ import annotations

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
from components.db.cnpg import BARMAN_PLUGIN, CnpgCluster, backup_policy, six_field_schedule  # noqa: E402
from components.fakes import FAKE_PASSWORD  # noqa: E402
from components.plan import Secret, evaluate, kubernetes_objects, plan_document, unwrap  # noqa: E402
from crd_schemas import chart_schema, check_custom_resource, check_values, crd_schema  # noqa: E402

OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/PRIMARY"
OIDC_ISSUER = "oidc.eks.us-east-1.amazonaws.com/id/PRIMARY"
DR_OIDC_ARN = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-west-2.amazonaws.com/id/DR"
DR_ISSUER = "oidc.eks.us-west-2.amazonaws.com/id/DR"
CNPG_KINDS = {"Cluster", "ScheduledBackup", "Backup", "ObjectStore", "PodMonitor"}


def production_program(**overrides):
    def program():
        primary = k8s.Provider("primary", kubeconfig="{}")
        dr = k8s.Provider("dr", kubeconfig="{}")
        cloud = aws.Provider("aws", region="us-east-1")
        args = {"namespace": "orders-db", "cluster_name": "orders", "instances": 3, "storage_class": "gp3",
                "oidc_provider_arn": OIDC_ARN, "oidc_issuer": OIDC_ISSUER, "pod_monitor": True, "protect": True,
                "replica": {"provider": dr, "oidc_provider_arn": DR_OIDC_ARN, "oidc_issuer": DR_ISSUER}}
        args.update(overrides)
        db = CnpgCluster("orders", args, pulumi.ResourceOptions(providers={"kubernetes": primary, "aws": cloud}))
        AppDatabaseSecret("orders-app", {"connection": db.connection, "namespaces": ["orders"]},
                          pulumi.ResourceOptions(providers={"kubernetes": primary}))
        pulumi.export("url", db.connection.apply(lambda c: c.url()))
        pulumi.export("host", db.host)
        pulumi.export("readerHost", db.reader_host)
    return program


def single_instance_program():
    provider = k8s.Provider("kind", kubeconfig="{}")
    CnpgCluster("dev", {"instances": 1}, pulumi.ResourceOptions(providers={"kubernetes": provider}))


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def prod(request):
    return evaluate("test", preview=request.param, config={}, program=production_program(), project="pgtiers")


@pytest.fixture(scope="module")
def prod_up():
    return evaluate("test", preview=False, config={}, program=production_program(), project="pgtiers")


@pytest.fixture(scope="module")
def single():
    return evaluate("test", preview=False, config={}, program=single_instance_program, project="pgtiers")


def objects(ev, kind, name=None):
    return [(r, m) for r, m in kubernetes_objects(ev)
            if m["kind"] == kind and (name is None or m["metadata"]["name"] == name)]


def one(ev, kind, name=None):
    found = objects(ev, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def test_every_custom_resource_matches_its_crd(prod):
    checked = set()
    for _, manifest in kubernetes_objects(prod):
        if manifest["kind"] in CNPG_KINDS - {"PodMonitor"}:
            check_custom_resource(manifest)
            checked.add(manifest["kind"])
    assert checked == {"Cluster", "ScheduledBackup", "Backup", "ObjectStore"}


def test_pod_monitor_is_the_only_kind_without_a_reference_crd(prod):
    # The Prometheus Operator's CRDs are not in ../shared/reference: check the shape by hand.
    missing = {m["kind"] for _, m in kubernetes_objects(prod)
               if "/" in m["apiVersion"] and "." in m["apiVersion"].split("/")[0]
               and crd_schema(m["apiVersion"], m["kind"]) is None}
    assert missing == {"PodMonitor"}
    _, monitor = one(prod, "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics"}]
    assert monitor["spec"]["selector"]["matchLabels"]["cnpg.io/cluster"] == "orders"


def test_helm_values_match_the_chart_schemas(prod):
    releases = {r.inputs["chart"]: r for r in prod.by_type("kubernetes:helm.sh/v3:Release")}
    assert set(releases) == {"cert-manager", "cloudnative-pg", "plugin-barman-cloud"}
    operator, plugin = releases["cloudnative-pg"], releases["plugin-barman-cloud"]
    check_values(unwrap(operator.inputs["values"]), chart_schema("cnpg-operator-chart.values.schema.json"),
                 "cloudnative-pg")
    check_values(unwrap(plugin.inputs["values"]), chart_schema("plugin-barman-cloud-chart.values.schema.json"),
                 "plugin-barman-cloud")
    assert operator.inputs["values"]["crds"]["create"] is True
    assert operator.inputs["version"].startswith("0.29.")
    assert operator.inputs["repositoryOpts"]["repo"] == "https://cloudnative-pg.github.io/charts"
    assert plugin.inputs["namespace"] == operator.inputs["namespace"], "the plugin must run in the operator's namespace"
    assert releases["cert-manager"].inputs["repositoryOpts"]["repo"] == "https://charts.jetstack.io"
    assert releases["cert-manager"].inputs["values"]["crds"]["enabled"] is True
    for release in releases.values():
        assert release.inputs["version"], f"{release.name} is not pinned"


def test_schema_check_catches_a_misspelt_field():
    # The guard behind the CRD tests: a typo must not validate.
    manifest = {"apiVersion": "postgresql.cnpg.io/v1", "kind": "Cluster",
                "spec": {"instances": 1, "plugins": [{"name": BARMAN_PLUGIN, "isWalArchiver": True}]}}
    with pytest.raises(AssertionError, match="isWalArchiver"):
        check_custom_resource(manifest)


def test_irsa_subject_is_the_service_account_cnpg_creates(prod_up):
    _, cluster = one(prod_up, "Cluster", "orders")
    # CNPG names the pods' service account after the Cluster unless spec.serviceAccountName says otherwise.
    service_account = cluster["spec"].get("serviceAccountName", cluster["metadata"]["name"])
    role = prod_up.one("aws:iam/role:Role", "orders-backup-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    condition = trust["Statement"][0]["Condition"]["StringEquals"]
    assert condition[f"{OIDC_ISSUER}:sub"] == f"system:serviceaccount:orders-db:{service_account}"
    assert condition[f"{OIDC_ISSUER}:aud"] == "sts.amazonaws.com"
    assert trust["Statement"][0]["Principal"]["Federated"] == OIDC_ARN
    annotations = cluster["spec"]["serviceAccountTemplate"]["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam:")


def test_backup_policy_reaches_only_the_bucket_and_prefix(prod_up):
    bucket = prod_up.one("aws:s3/bucket:Bucket")
    policy = json.loads(prod_up.one("aws:iam/rolePolicy:RolePolicy", "orders-backup-policy").inputs["policy"])
    resources = {res for statement in policy["Statement"] for res in [statement["Resource"]]}
    arn = f"arn:aws:s3:::{bucket.inputs['bucketPrefix']}"
    assert all(res.startswith(arn) for res in resources)
    object_resources = {s["Resource"] for s in policy["Statement"] if any(a.endswith("Object") for a in s["Action"])}
    assert object_resources and all(res.endswith("/cnpg/*") for res in object_resources)
    assert all("*" not in action for s in policy["Statement"] for action in s["Action"])


def test_backup_policy_function_scopes_writes():
    policy = json.loads(backup_policy("arn:aws:s3:::b", "cnpg", write_prefix="cnpg/replica"))
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert by_sid["Read"]["Resource"] == "arn:aws:s3:::b/cnpg/*"
    assert by_sid["Write"]["Resource"] == "arn:aws:s3:::b/cnpg/replica/*"


def test_bucket_is_versioned_encrypted_private_and_expires_old_versions(prod_up):
    assert prod_up.one("aws:s3/bucketVersioning:BucketVersioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    sse = prod_up.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration")
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] in ("AES256", "aws:kms")
    block = prod_up.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(block[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                          "restrictPublicBuckets"))
    rules = prod_up.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs["rules"]
    assert any(r.get("noncurrentVersionExpiration", {}).get("noncurrentDays", 0) > 30 for r in rules), \
        "old versions must outlive the 30-day backup window, then expire"
    assert prod_up.one("aws:s3/bucket:Bucket").inputs.get("forceDestroy") is not True


def test_object_store_inherits_the_iam_role_and_has_retention(prod):
    _, store = one(prod, "ObjectStore", "orders-store")
    configuration = store["spec"]["configuration"]
    assert configuration["s3Credentials"] == {"inheritFromIAMRole": True}
    if not prod.preview:
        assert configuration["destinationPath"].startswith("s3://orders-backups-")
        assert configuration["destinationPath"].endswith("/cnpg")
    assert store["spec"]["retentionPolicy"] == "30d"
    assert "serverName" not in configuration, "the plugin rejects serverName in the ObjectStore"


def test_cluster_uses_the_plugin_as_wal_archiver(prod):
    _, cluster = one(prod, "Cluster", "orders")
    spec = cluster["spec"]
    assert spec["plugins"] == [{"name": BARMAN_PLUGIN, "isWALArchiver": True,
                                "parameters": {"barmanObjectName": "orders-store"}}]
    assert "backup" not in spec, "the in-tree barmanObjectStore is deprecated"
    assert "enablePodMonitor" not in spec.get("monitoring", {})
    assert cluster["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_production_cluster_spreads_three_instances_over_zones(prod):
    _, cluster = one(prod, "Cluster", "orders")
    spec = cluster["spec"]
    assert spec["instances"] == 3
    assert spec["enablePDB"] is True
    assert spec["affinity"]["topologyKey"] == "topology.kubernetes.io/zone"
    assert spec["affinity"]["enablePodAntiAffinity"] is True
    assert spec["storage"]["storageClass"] == spec["walStorage"]["storageClass"] == "gp3"
    assert spec["imageName"].startswith("ghcr.io/cloudnative-pg/postgresql:18.")
    assert ":latest" not in spec["imageName"]


def test_single_instance_turns_the_pdb_off(single):
    _, cluster = one(single, "Cluster", "pg")
    assert cluster["spec"]["instances"] == 1
    assert cluster["spec"]["enablePDB"] is False, "a PDB on a lone primary blocks every node drain"
    assert not objects(single, "PodMonitor"), "PodMonitor is off by default (needs the Prometheus Operator)"
    assert not objects(single, "ObjectStore") and not single.by_type("aws:s3/bucket:Bucket")
    for _, manifest in kubernetes_objects(single):
        if manifest["kind"] in CNPG_KINDS:
            check_custom_resource(manifest)


def test_scheduled_backup_uses_the_plugin_and_six_fields(prod):
    _, backup = one(prod, "ScheduledBackup")
    spec = backup["spec"]
    assert spec["method"] == "plugin"
    assert spec["pluginConfiguration"] == {"name": BARMAN_PLUGIN}
    assert len(spec["schedule"].split()) == 6
    assert spec["cluster"]["name"] == "orders"


def test_five_field_schedules_are_refused():
    assert six_field_schedule("0 0 3 * * *") == "0 0 3 * * *"
    with pytest.raises(ValueError, match="six"):
        six_field_schedule("0 3 * * *")


def test_everything_using_webhooks_waits_for_the_operator_and_plugin(prod):
    releases = {r.name: r.urn for r in prod.by_type("kubernetes:helm.sh/v3:Release")}
    for registration, manifest in kubernetes_objects(prod):
        if manifest["kind"] not in CNPG_KINDS - {"PodMonitor"}:
            continue
        prefix = "orders-dr-" if "::dr::" in registration.provider else "orders-"
        waits_for = prod.transitive_dependencies(registration.urn)
        for role in ("operator", "barman-cloud"):
            assert releases[f"{prefix}{role}"] in waits_for, \
                f"{manifest['kind']} {manifest['metadata']['name']} does not wait for {prefix}{role}"


def test_plugin_release_waits_for_cert_manager_and_operator(prod):
    plugin = prod.one("kubernetes:helm.sh/v3:Release", "orders-barman-cloud")
    deps = prod.transitive_dependencies(plugin.urn)
    assert prod.one("kubernetes:helm.sh/v3:Release", "orders-cert-manager").urn in deps
    assert prod.one("kubernetes:helm.sh/v3:Release", "orders-operator").urn in deps


def test_bootstrap_secret_is_basic_auth_with_the_generated_password(prod_up):
    _, cluster = one(prod_up, "Cluster", "orders")
    secret_name = cluster["spec"]["bootstrap"]["initdb"]["secret"]["name"]
    assert secret_name != "orders-app", "a Secret of our own means CNPG creates no <cluster>-app Secret"
    secret = next(r for r in prod_up.by_type("kubernetes:core/v1:Secret")
                  if r.inputs["metadata"]["name"] == secret_name)
    assert secret.inputs["type"] == "kubernetes.io/basic-auth"
    assert isinstance(secret.inputs["stringData"], Secret) or isinstance(secret.inputs["stringData"]["password"], Secret)
    assert unwrap(secret.inputs["stringData"]) == {"username": "app", "password": FAKE_PASSWORD}
    assert cluster["spec"]["bootstrap"]["initdb"]["owner"] == "app"


def test_connection_is_the_rw_service_with_tls(prod_up):
    assert prod_up.outputs["host"] == "orders-rw.orders-db.svc"
    assert prod_up.outputs["readerHost"] == "orders-ro.orders-db.svc"
    url = prod_up.outputs["url"]
    assert isinstance(url, Secret)
    assert url.value.startswith("postgresql://app:") and url.value.endswith("@orders-rw.orders-db.svc:5432/app?sslmode=require")


def test_app_secret_has_the_same_eight_keys(prod):
    app = [r for r in prod.by_type("kubernetes:core/v1:Secret") if r.parent.endswith("orders-app")]
    assert len(app) == 1
    data = app[0].inputs["stringData"]
    assert isinstance(data, Secret), "the app Secret's data must be secret in preview and up"
    if not prod.preview:  # in preview the whole map is still unknown
        assert sorted(data.value) == sorted(SECRET_KEYS)


def test_no_password_in_plain_text(prod_up):
    assert FAKE_PASSWORD not in json.dumps(plan_document(prod_up))


def test_protect_covers_data_and_what_deletes_it(prod):
    protected = {r.name for r in prod.resources if r.protect}
    assert {"orders-cluster", "orders-app-credentials", "orders-password", "orders-ns", "orders-backups",
            "orders-dr-cluster", "orders-dr-ns"} <= protected


def test_dr_replica_follows_the_primary_object_store(prod_up):
    _, replica = one(prod_up, "Cluster", "orders-replica")
    registration = prod_up.one("kubernetes:postgresql.cnpg.io/v1:Cluster", "orders-dr-cluster")
    assert "::dr::" in registration.provider, "the replica belongs in the second cluster"
    spec = replica["spec"]
    assert spec["replica"] == {"enabled": True, "source": "orders"}
    assert spec["bootstrap"] == {"recovery": {"source": "orders"}}
    origin = spec["externalClusters"][0]
    assert origin["name"] == "orders"
    assert origin["plugin"]["parameters"] == {"barmanObjectName": "orders-origin", "serverName": "orders"}
    _, origin_store = one(prod_up, "ObjectStore", "orders-origin")
    _, primary_store = one(prod_up, "ObjectStore", "orders-store")
    assert origin_store["spec"]["configuration"]["destinationPath"] == primary_store["spec"]["configuration"]["destinationPath"]
    assert "retentionPolicy" not in origin_store["spec"], "only the primary prunes its own backups"
    trust = json.loads(prod_up.one("aws:iam/role:Role", "orders-dr-backup-role").inputs["assumeRolePolicy"])
    assert trust["Statement"][0]["Condition"]["StringEquals"][f"{DR_ISSUER}:sub"] == \
        "system:serviceaccount:orders-db:orders-replica"
    seed = prod_up.one("kubernetes:postgresql.cnpg.io/v1:Backup")
    assert seed.urn in prod_up.transitive_dependencies(registration.urn), "recovery needs a completed base backup"
    _, seed_manifest = one(prod_up, "Backup")
    assert seed_manifest["metadata"]["annotations"]["pulumi.com/waitFor"] == "jsonpath={.status.phase}=completed"


@pytest.mark.parametrize("args, message", [
    ({"version": 13}, "version"),
    ({"backup_schedule": "0 3 * * *"}, "six"),
    ({"oidc_provider_arn": OIDC_ARN}, "oidc_issuer"),
    ({"replica": {"provider": None}}, "S3 backups"),
    ({"zone_spread": "sometimes"}, "zone_spread"),
])
def test_bad_arguments_fail_before_anything_registers(args, message):
    def program():
        CnpgCluster("bad", args)

    with pytest.raises(Exception, match=message):
        evaluate("test", config={}, program=program, project="pgtiers")
