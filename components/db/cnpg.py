"""CnpgCluster: PostgreSQL run by the CloudNativePG operator, on any Kubernetes cluster.

What it installs and declares, and the trap each choice closes (DESIGN.md §5):

- cert-manager, the ``cloudnative-pg`` operator chart (CRDs are chart templates: ``crds.create``)
  and the Barman Cloud Plugin chart in the operator's namespace. Every object the operator's
  webhooks judge ``depends_on`` those releases: a ``Cluster`` sent before the webhook answers is
  rejected on first install.
- With an EKS OIDC provider: an S3 bucket (versioned, encrypted, public access blocked, old versions
  expired) and an IRSA role trusted by exactly ``system:serviceaccount:<ns>:<cluster>`` (CNPG names
  the pods' service account after the Cluster). The ``ObjectStore`` sets
  ``s3Credentials.inheritFromIAMRole`` (without it the plugin reports "missing Azure credentials").
- The ``Cluster`` uses the plugin as WAL archiver (the in-tree ``barmanObjectStore`` is deprecated),
  bootstraps from a basic-auth Secret whose password Pulumi generates (so the app Secret is built
  from known values, and CNPG creates no ``<cluster>-app`` Secret), spreads instances over zones
  (EBS volumes are zonal: a zone loss must not take every copy), and turns the PodDisruptionBudget
  off when there is a single instance (a PDB on a lone primary blocks every node drain).
- A ``ScheduledBackup`` with ``method: plugin`` and a six-field schedule (seconds first).
- Optionally a ``PodMonitor`` (the Cluster's ``enablePodMonitor`` is deprecated) and a replica
  Cluster in a second Kubernetes cluster fed from the primary's object store (cross-region DR).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Optional, Sequence, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..config import CNPG_IMAGES
from ..connection import DatabaseConnection
from ..custom_object import CustomObject
from ..irsa import ROLE_ARN_ANNOTATION, irsa_role
from ..namespaces import namespace_for

PORT = 5432
OPERATOR_NAMESPACE = "cnpg-system"
CERT_MANAGER_NAMESPACE = "cert-manager"

CNPG_CHARTS_REPO = "https://cloudnative-pg.github.io/charts"
#: (chart, version, repository). The versions are the ones whose values schemas the tests check.
OPERATOR_CHART = ("cloudnative-pg", "0.29.0", CNPG_CHARTS_REPO)  # operator 1.30
PLUGIN_CHART = ("plugin-barman-cloud", "0.7.0", CNPG_CHARTS_REPO)
CERT_MANAGER_CHART = ("cert-manager", "v1.19.2", "https://charts.jetstack.io")

BARMAN_PLUGIN = "barman-cloud.cloudnative-pg.io"
CLUSTER_API = "postgresql.cnpg.io/v1"
OBJECT_STORE_API = "barmancloud.cnpg.io/v1"
ZONE_TOPOLOGY_KEY = "topology.kubernetes.io/zone"
#: Pulumi waits on this before the Cluster counts as created (and before anything using it starts).
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}

# The app password avoids quote, backslash, '/', '@' and space: some tools that read the
# basic-auth Secret (psql's .pgpass, shell scripts) mangle them, and URLs percent-encode anyway.
_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"


class CnpgReplicaArgs(TypedDict, total=False):
    provider: k8s.Provider
    """Kubernetes provider of the second (DR) cluster. Required."""
    oidc_provider_arn: pulumi.Input[str]
    """IAM OIDC provider ARN of the DR cluster (its pods read the primary's bucket through IRSA). Required."""
    oidc_issuer: pulumi.Input[str]
    """OIDC issuer of the DR cluster, without ``https://``. Required."""
    namespace: str
    """Namespace in the DR cluster (default: the primary's namespace name)."""
    cluster_name: str
    """Name of the replica Cluster (default ``<primary>-replica``)."""
    instances: int
    """Instances of the replica Cluster (default 1)."""
    storage_class: Optional[str]
    """StorageClass in the DR cluster (default: the primary's)."""
    install_operators: bool
    """Install cert-manager, the operator and the plugin in the DR cluster too (default true)."""


class CnpgClusterArgs(TypedDict, total=False):
    namespace: str
    """Namespace of the Cluster and its objects (default ``pgtiers-db``)."""
    create_namespace: bool
    """Create that namespace (default true)."""
    cluster_name: str
    """Name of the CNPG Cluster (default ``pg``); also its pods' service account and Service prefix."""
    version: int
    """PostgreSQL major (14-18); picks the pinned CNPG image."""
    image: str
    """Override the operand image (keep it pinned, ideally by digest)."""
    database: str
    """Database the app owns (default ``app``)."""
    username: str
    """Role that owns it and that the app logs in as (default ``app``)."""
    instances: int
    """PostgreSQL instances (default 3: one primary, two standbys in other zones)."""
    storage_gb: int
    """Data volume per instance in GiB (default 20)."""
    wal_storage_gb: int
    """WAL volume per instance in GiB (default 10)."""
    storage_class: Optional[str]
    """StorageClass of both volumes (default: the cluster's default class; ``gp3`` on pgtiers' EKS)."""
    zone_spread: Literal["required", "preferred"]
    """Anti-affinity across zones: ``required`` (default with 2+ instances; needs nodes in as many
    zones as instances) or ``preferred``."""
    resources: dict[str, Any]
    """Container resources of each instance (requests/limits)."""
    oidc_provider_arn: Optional[pulumi.Input[str]]
    """EKS IAM OIDC provider ARN. Given: S3 bucket, IRSA role, ObjectStore and scheduled backups."""
    oidc_issuer: Optional[pulumi.Input[str]]
    """EKS OIDC issuer without ``https://`` (required with ``oidc_provider_arn``)."""
    backup_prefix: str
    """Key prefix in the bucket (default ``cnpg``); the IRSA policy reaches only below it."""
    backup_schedule: str
    """Six-field schedule, seconds first (default ``0 0 3 * * *``: daily at 03:00:00)."""
    backup_retention_days: int
    """Days of base backups and WAL kept (default 30)."""
    pod_monitor: bool
    """Create a PodMonitor for the metrics port (default false: needs the Prometheus Operator CRDs)."""
    install_operators: bool
    """Install cert-manager, the operator and the plugin (default true; false when the cluster has them)."""
    install_cert_manager: bool
    """Install cert-manager with the operators (default true; false when the cluster already runs it)."""
    replica: Optional[CnpgReplicaArgs]
    """Cross-region DR: a replica Cluster in a second Kubernetes cluster (needs the AWS backups)."""
    protect: bool
    """Protect the namespace, Cluster, credentials and backup bucket from deletion by Pulumi."""


def six_field_schedule(schedule: str) -> str:
    fields = schedule.split()
    if len(fields) != 6:
        raise ValueError(f"CnpgCluster.backup_schedule: {schedule!r} has {len(fields)} fields; CNPG needs six "
                         "(seconds minutes hours day-of-month month day-of-week), e.g. '0 0 3 * * *'")
    return " ".join(fields)


def install_operators(name: str, parent: pulumi.Resource, *, provider: Optional[k8s.Provider] = None,
                      cert_manager: bool = True, pod_monitor: bool = False) -> list[k8s.helm.v3.Release]:
    """cert-manager, the CNPG operator and the Barman Cloud Plugin; returns the releases to wait on.

    ``helm.v3.Release`` waits until every object of the chart is ready (Helm's ``--wait``), so
    depending on these releases means the operator's and plugin's webhooks answer.
    """
    opts = pulumi.ResourceOptions(parent=parent, provider=provider)
    releases = []
    if cert_manager:
        chart, version, repo = CERT_MANAGER_CHART
        releases.append(k8s.helm.v3.Release(
            f"{name}-cert-manager",
            name="cert-manager", chart=chart, version=version, repository_opts={"repo": repo},
            namespace=CERT_MANAGER_NAMESPACE, create_namespace=True,
            values=cert_manager_values(), opts=opts))
    chart, version, repo = OPERATOR_CHART
    operator = k8s.helm.v3.Release(
        f"{name}-operator",
        name="cnpg", chart=chart, version=version, repository_opts={"repo": repo},
        namespace=OPERATOR_NAMESPACE, create_namespace=True,
        values=operator_values(pod_monitor=pod_monitor), opts=opts)
    chart, version, repo = PLUGIN_CHART
    # The plugin's chart issues its TLS certificates through cert-manager and registers with the
    # operator: both must be up first.
    plugin = k8s.helm.v3.Release(
        f"{name}-barman-cloud",
        name="barman-cloud", chart=chart, version=version, repository_opts={"repo": repo},
        namespace=OPERATOR_NAMESPACE, create_namespace=False,
        values=plugin_values(),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[*releases, operator])))
    return [*releases, operator, plugin]


def cert_manager_values() -> dict[str, Any]:
    return {"crds": {"enabled": True}}


def operator_values(*, pod_monitor: bool = False) -> dict[str, Any]:
    return {
        "crds": {"create": True},
        "config": {"clusterWide": True},
        "monitoring": {"podMonitorEnabled": pod_monitor},
    }


def plugin_values() -> dict[str, Any]:
    return {"crds": {"create": True}}


def _bucket_prefix(name: str) -> str:
    # S3 names: lowercase letters, digits, '-'; bucket_prefix at most 37 characters.
    clean = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "pgtiers"
    return f"{clean[:28].rstrip('-')}-backups-"


def backup_policy(bucket_arn: str, prefix: str, *, read_prefix: Optional[str] = None,
                  write_prefix: Optional[str] = None) -> str:
    """IAM policy for Barman Cloud: this bucket only, objects only below the prefix.

    ListBucket carries no ``s3:prefix`` condition: barman-cloud starts with HeadBucket, which
    sends no prefix and would be denied.
    """
    read_prefix = read_prefix or prefix
    write_prefix = write_prefix or prefix
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Bucket", "Effect": "Allow", "Action": ["s3:ListBucket", "s3:GetBucketLocation"],
             "Resource": bucket_arn},
            {"Sid": "Read", "Effect": "Allow", "Action": ["s3:GetObject"],
             "Resource": f"{bucket_arn}/{read_prefix}/*"},
            {"Sid": "Write", "Effect": "Allow",
             "Action": ["s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
             "Resource": f"{bucket_arn}/{write_prefix}/*"},
        ],
    })


def _storage(size_gb: int, storage_class: Optional[str]) -> dict[str, Any]:
    storage: dict[str, Any] = {"size": f"{size_gb}Gi", "resizeInUseVolumes": True}
    if storage_class:
        storage["storageClass"] = storage_class
    return storage


def _affinity(instances: int, zone_spread: Optional[str]) -> dict[str, Any]:
    return {
        "enablePodAntiAffinity": True,
        "topologyKey": ZONE_TOPOLOGY_KEY,
        "podAntiAffinityType": zone_spread or ("required" if instances > 1 else "preferred"),
    }


def _object_store_spec(destination: pulumi.Input[str], retention_days: Optional[int]) -> dict[str, Any]:
    spec: dict[str, Any] = {"configuration": {
        "destinationPath": destination,
        "s3Credentials": {"inheritFromIAMRole": True},
        "wal": {"compression": "gzip"},
        "data": {"compression": "gzip"},
    }}
    if retention_days is not None:
        spec["retentionPolicy"] = f"{retention_days}d"
    return spec


def _barman_plugin(object_store: pulumi.Input[str], **extra: pulumi.Input[str]) -> dict[str, Any]:
    return {"name": BARMAN_PLUGIN, "isWALArchiver": True, "parameters": {"barmanObjectName": object_store, **extra}}


class CnpgCluster(pulumi.ComponentResource):
    """A CloudNativePG PostgreSQL cluster that yields a ``DatabaseConnection``.

    Example (any cluster; backups and DR need an EKS OIDC provider and an AWS provider)::

        db = CnpgCluster("orders", {"namespace": "orders-db", "instances": 3, "storage_class": "gp3",
                                    "oidc_provider_arn": eks.oidc_provider_arn, "oidc_issuer": eks.oidc_issuer},
                         pulumi.ResourceOptions(providers={"kubernetes": k8s_provider, "aws": aws_provider}))
        AppDatabaseSecret("orders-db", {"connection": db.connection, "namespaces": ["orders"]}, ...)
    """

    connection: pulumi.Output[DatabaseConnection]
    """Secret: ``<cluster>-rw.<ns>.svc``, sslmode=require (CNPG serves TLS with its own CA)."""
    reader_connection: pulumi.Output[DatabaseConnection]
    """Secret: the same credentials through ``<cluster>-ro`` (standbys only; for read-only traffic)."""
    host: pulumi.Output[str]
    reader_host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    namespace: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    service_account: pulumi.Output[str]
    """The pods' service account (named after the Cluster): the IRSA subject."""
    backup_bucket: pulumi.Output[Optional[str]]
    backup_role_arn: pulumi.Output[Optional[str]]
    backup_destination: pulumi.Output[Optional[str]]
    replica_cluster_name: pulumi.Output[Optional[str]]
    password: pulumi.Output[str]
    """Secret."""

    def __init__(self, name: str, args: CnpgClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("pgtiers:index:CnpgCluster", name, None, opts)
        version = args.get("version", 18)
        if "image" not in args and version not in CNPG_IMAGES:
            raise ValueError(f"CnpgCluster.version: {version!r} is not one of {', '.join(map(str, CNPG_IMAGES))}")
        instances = args.get("instances", 3)
        if not isinstance(instances, int) or instances < 1:
            raise ValueError(f"CnpgCluster.instances: {instances!r} is not a positive whole number")
        zone_spread = args.get("zone_spread")
        if zone_spread not in (None, "required", "preferred"):
            raise ValueError(f"CnpgCluster.zone_spread: {zone_spread!r} is not one of required, preferred")
        schedule = six_field_schedule(args.get("backup_schedule", "0 0 3 * * *"))
        with_aws = args.get("oidc_provider_arn") is not None
        if with_aws and args.get("oidc_issuer") is None:
            raise ValueError("CnpgCluster.oidc_issuer: required with oidc_provider_arn (the issuer URL without https://)")
        replica = args.get("replica")
        if replica is not None and not with_aws:
            raise ValueError("CnpgCluster.replica: the DR replica is fed from the S3 backups; give oidc_provider_arn too")
        if replica is not None:
            missing = [k for k in ("provider", "oidc_provider_arn", "oidc_issuer") if replica.get(k) is None]
            if missing:
                raise ValueError(f"CnpgCluster.replica: missing {', '.join(missing)}")

        cluster_name = args.get("cluster_name", "pg")
        namespace_name = args.get("namespace", "pgtiers-db")
        database, username = args.get("database", "app"), args.get("username", "app")
        image = args.get("image") or CNPG_IMAGES[version]
        storage_class = args.get("storage_class")
        protect = bool(args.get("protect", False))
        child = pulumi.ResourceOptions(parent=self)
        data_opts = pulumi.ResourceOptions(parent=self, protect=protect)

        operators: list[pulumi.Resource] = []
        if args.get("install_operators", True):
            operators = install_operators(name, self, cert_manager=args.get("install_cert_manager", True),
                                          pod_monitor=bool(args.get("pod_monitor", False)))
        webhook_opts = pulumi.ResourceOptions(parent=self, depends_on=operators)

        # Deleting a namespace deletes the Cluster in it: protect it with the data.
        namespace = namespace_for(name, namespace_name, args.get("create_namespace", True), data_opts)

        password = random.RandomPassword(f"{name}-password", length=32, special=True,
                                         override_special=_PASSWORD_SPECIALS, opts=data_opts)
        credentials = k8s.core.v1.Secret(
            f"{name}-app-credentials",
            metadata={"name": f"{cluster_name}-app-credentials", "namespace": namespace,
                      # CNPG reloads the role's password when a labelled Secret changes.
                      "labels": {"cnpg.io/reload": "true", "app.kubernetes.io/part-of": "pgtiers"}},
            type="kubernetes.io/basic-auth",
            string_data={"username": username, "password": password.result},
            opts=data_opts,
        )

        plugins: list[dict[str, Any]] = []
        service_account_template: Optional[dict[str, Any]] = None
        bucket_name: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)
        role_arn: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)
        destination: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)
        bucket_arn: pulumi.Output[str] = pulumi.Output.from_input("")
        prefix = args.get("backup_prefix", "cnpg").strip("/")
        retention_days = args.get("backup_retention_days", 30)
        object_store_name = f"{cluster_name}-store"
        cluster_deps: list[pulumi.Resource] = list(operators)
        if with_aws:
            bucket = self._backup_bucket(name, protect, retention_days)
            role = irsa_role(f"{name}-backup-role", oidc_provider_arn=args["oidc_provider_arn"],
                             oidc_issuer=args["oidc_issuer"], namespace=namespace_name,
                             service_account=cluster_name,
                             description=f"Barman Cloud backups of CNPG cluster {namespace_name}/{cluster_name}",
                             opts=child)
            aws.iam.RolePolicy(f"{name}-backup-policy", role=role.id,
                               policy=bucket.arn.apply(lambda arn: backup_policy(arn, prefix)), opts=child)
            bucket_name, role_arn, bucket_arn = bucket.bucket, role.arn, bucket.arn
            destination = bucket.bucket.apply(lambda b: f"s3://{b}/{prefix}")
            store = CustomObject(
                f"{name}-object-store", OBJECT_STORE_API, "ObjectStore",
                metadata={"name": object_store_name, "namespace": namespace},
                spec=_object_store_spec(destination, retention_days),
                opts=webhook_opts)
            cluster_deps.append(store)
            plugins.append(_barman_plugin(store.object_name))
            service_account_template = {"metadata": {"annotations": {ROLE_ARN_ANNOTATION: role.arn}}}

        spec: dict[str, Any] = {
            "instances": instances,
            "imageName": image,
            "primaryUpdateStrategy": "unsupervised",
            "enablePDB": instances > 1,
            "storage": _storage(args.get("storage_gb", 20), storage_class),
            "walStorage": _storage(args.get("wal_storage_gb", 10), storage_class),
            "affinity": _affinity(instances, zone_spread),
            "bootstrap": {"initdb": {"database": database, "owner": username,
                                     "secret": {"name": credentials.metadata.name}}},
        }
        if plugins:
            spec["plugins"] = plugins
        if service_account_template:
            spec["serviceAccountTemplate"] = service_account_template
        if args.get("resources"):
            spec["resources"] = args["resources"]
        cluster = CustomObject(
            f"{name}-cluster", CLUSTER_API, "Cluster",
            metadata={"name": cluster_name, "namespace": namespace, "annotations": dict(WAIT_READY),
                      "labels": {"app.kubernetes.io/part-of": "pgtiers"}},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, protect=protect, depends_on=cluster_deps),
        )

        if with_aws:
            CustomObject(
                f"{name}-scheduled-backup", CLUSTER_API, "ScheduledBackup",
                metadata={"name": f"{cluster_name}-scheduled", "namespace": namespace},
                spec={"schedule": schedule, "cluster": {"name": cluster.object_name}, "method": "plugin",
                      "pluginConfiguration": {"name": BARMAN_PLUGIN},
                      # A first base backup right away: recovery (and a DR replica) needs one.
                      "immediate": True, "backupOwnerReference": "self"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*operators, cluster]))

        if args.get("pod_monitor", False):
            CustomObject(
                f"{name}-pod-monitor", "monitoring.coreos.com/v1", "PodMonitor",
                metadata={"name": cluster_name, "namespace": namespace},
                spec={"selector": {"matchLabels": {"cnpg.io/cluster": cluster_name, "cnpg.io/podRole": "instance"}},
                      "podMetricsEndpoints": [{"port": "metrics"}]},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[cluster]))

        replica_name: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)
        if replica is not None:
            replica_name = self._replica(name, replica, primary=cluster, primary_name=cluster_name,
                                         primary_namespace=namespace_name, image=image, bucket_arn=bucket_arn,
                                         destination=destination, prefix=prefix, retention_days=retention_days,
                                         storage_class=storage_class, args=args, protect=protect)

        self.namespace = namespace
        self.cluster_name = cluster.object_name
        self.service_account = cluster.object_name
        self.host = pulumi.Output.all(cluster.object_name, namespace).apply(lambda a: f"{a[0]}-rw.{a[1]}.svc")
        self.reader_host = pulumi.Output.all(cluster.object_name, namespace).apply(lambda a: f"{a[0]}-ro.{a[1]}.svc")
        self.port = pulumi.Output.from_input(PORT)
        self.database = pulumi.Output.from_input(database)
        self.password = pulumi.Output.secret(password.result)
        self.backup_bucket, self.backup_role_arn, self.backup_destination = bucket_name, role_arn, destination
        self.replica_cluster_name = replica_name

        def contract(host: pulumi.Output[str]) -> pulumi.Output[DatabaseConnection]:
            return pulumi.Output.secret(pulumi.Output.all(host, password.result).apply(
                lambda a: DatabaseConnection(host=a[0], port=PORT, database=database, username=username,
                                             password=a[1], sslmode="require")))

        self.connection = contract(self.host)
        self.reader_connection = contract(self.reader_host)
        self.register_outputs({"host": self.host, "reader_host": self.reader_host, "port": self.port,
                               "database": self.database, "namespace": self.namespace,
                               "cluster_name": self.cluster_name, "backup_bucket": self.backup_bucket,
                               "backup_role_arn": self.backup_role_arn,
                               "replica_cluster_name": self.replica_cluster_name})

    def _backup_bucket(self, name: str, protect: bool, retention_days: int) -> aws.s3.Bucket:
        child = pulumi.ResourceOptions(parent=self)
        # force_destroy stays off: destroying a bucket that still holds backups fails loudly.
        bucket = aws.s3.Bucket(f"{name}-backups", bucket_prefix=_bucket_prefix(name),
                               tags={"pgtiers/purpose": "cnpg-backups"},
                               opts=pulumi.ResourceOptions(parent=self, protect=protect))
        aws.s3.BucketPublicAccessBlock(f"{name}-backups-public-access", bucket=bucket.id, block_public_acls=True,
                                       block_public_policy=True, ignore_public_acls=True,
                                       restrict_public_buckets=True, opts=child)
        aws.s3.BucketVersioning(f"{name}-backups-versioning", bucket=bucket.id,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-backups-encryption", bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}], opts=child)
        # Barman prunes by its retention policy; versioning keeps what it prunes as noncurrent
        # versions (a safety net against a bad delete), which expire a week after the window.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-backups-lifecycle", bucket=bucket.id,
            rules=[{"id": "expire-noncurrent-versions", "status": "Enabled", "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {"noncurrent_days": retention_days + 7},
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7}},
                   {"id": "remove-expired-delete-markers", "status": "Enabled", "filter": {"prefix": ""},
                    "expiration": {"expired_object_delete_marker": True}}],
            opts=child)
        return bucket

    def _replica(self, name: str, replica: CnpgReplicaArgs, *, primary: CustomObject, primary_name: str,
                 primary_namespace: str, image: str, bucket_arn: pulumi.Output[str],
                 destination: pulumi.Output[Optional[str]], prefix: str, retention_days: int,
                 storage_class: Optional[str], args: CnpgClusterArgs, protect: bool) -> pulumi.Output[str]:
        provider = replica["provider"]
        replica_name = replica.get("cluster_name", f"{primary_name}-replica")
        namespace_name = replica.get("namespace", primary_namespace)
        instances = replica.get("instances", 1)
        in_dr = pulumi.ResourceOptions(parent=self, provider=provider)
        operators: list[pulumi.Resource] = []
        if replica.get("install_operators", True):
            operators = install_operators(f"{name}-dr", self, provider=provider,
                                          cert_manager=args.get("install_cert_manager", True))
        ns = k8s.core.v1.Namespace(f"{name}-dr-ns", metadata={"name": namespace_name},
                                   opts=pulumi.ResourceOptions.merge(in_dr, pulumi.ResourceOptions(protect=protect)))

        role = irsa_role(f"{name}-dr-backup-role", oidc_provider_arn=replica["oidc_provider_arn"],
                         oidc_issuer=replica["oidc_issuer"], namespace=namespace_name, service_account=replica_name,
                         description=f"CNPG DR replica {namespace_name}/{replica_name}: reads the primary's backups",
                         opts=pulumi.ResourceOptions(parent=self))
        # Reads everything under the prefix (the primary's WAL and base backups); writes only its
        # own server folder, so a promoted replica can never prune the primary's backups.
        aws.iam.RolePolicy(f"{name}-dr-backup-policy", role=role.id,
                           policy=bucket_arn.apply(lambda arn: backup_policy(
                               arn, prefix, write_prefix=f"{prefix}/{replica_name}")),
                           opts=pulumi.ResourceOptions(parent=self))

        webhook_opts = pulumi.ResourceOptions(parent=self, provider=provider, depends_on=operators)
        # The origin store has no retention policy: only the primary's side prunes its backups.
        origin = CustomObject(f"{name}-dr-origin-store", OBJECT_STORE_API, "ObjectStore",
                              metadata={"name": f"{primary_name}-origin", "namespace": ns.metadata.name},
                              spec=_object_store_spec(destination, None), opts=webhook_opts)
        own = CustomObject(f"{name}-dr-object-store", OBJECT_STORE_API, "ObjectStore",
                           metadata={"name": f"{replica_name}-store", "namespace": ns.metadata.name},
                           spec=_object_store_spec(destination, retention_days), opts=webhook_opts)
        # Recovery needs a completed base backup: take one and wait for it before the replica starts.
        seed = CustomObject(
            f"{name}-seed-backup", CLUSTER_API, "Backup",
            metadata={"name": f"{primary_name}-dr-seed", "namespace": primary.object_namespace,
                      "annotations": {"pulumi.com/waitFor": "jsonpath={.status.phase}=completed"}},
            spec={"cluster": {"name": primary.object_name}, "method": "plugin",
                  "pluginConfiguration": {"name": BARMAN_PLUGIN}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[primary]))
        spec = {
            "instances": instances,
            "imageName": image,
            "enablePDB": instances > 1,
            "storage": _storage(args.get("storage_gb", 20), replica.get("storage_class", storage_class)),
            "walStorage": _storage(args.get("wal_storage_gb", 10), replica.get("storage_class", storage_class)),
            "affinity": _affinity(instances, args.get("zone_spread")),
            "bootstrap": {"recovery": {"source": primary_name}},
            "replica": {"enabled": True, "source": primary_name},
            "externalClusters": [{"name": primary_name, "plugin": {
                "name": BARMAN_PLUGIN, "parameters": {"barmanObjectName": origin.object_name,
                                                      "serverName": primary_name}}}],
            "plugins": [_barman_plugin(own.object_name)],
            "serviceAccountTemplate": {"metadata": {"annotations": {ROLE_ARN_ANNOTATION: role.arn}}},
        }
        cluster = CustomObject(
            f"{name}-dr-cluster", CLUSTER_API, "Cluster",
            metadata={"name": replica_name, "namespace": ns.metadata.name, "annotations": dict(WAIT_READY),
                      "labels": {"app.kubernetes.io/part-of": "pgtiers", "pgtiers/role": "dr-replica"}},
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, provider=provider, protect=protect,
                                        depends_on=[*operators, origin, own, seed]))
        return cluster.object_name


__all__: Sequence[str] = ["CnpgCluster", "CnpgClusterArgs", "CnpgReplicaArgs", "install_operators",
                          "backup_policy", "six_field_schedule", "BARMAN_PLUGIN", "OPERATOR_CHART",
                          "PLUGIN_CHART", "CERT_MANAGER_CHART"]
