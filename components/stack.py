"""Composition: settings → cluster → database tier → app Secret → stack outputs.

Each step is one function per cluster type or tier, picked from a table, so adding a tier
touches this file in one place. Nothing here reads config: ``__main__.py`` passes the settings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable, Optional

import pulumi
import pulumi_kubernetes as k8s

from .app_secret import AppDatabaseSecret
from .cluster.kind import KindCluster
from .config import ConfigError, StackSettings
from .connection import DatabaseConnection
from .db.local import LocalPostgres
from .migrations import AtlasMigrations, ConnectivityCheck
from .seed import SeedData

# The cloud tiers' modules load pulumi_aws and pulumi_eks (about half a second of imports):
# each tier function imports its own, so `pulumi up -s dev` never pays for AWS.


@dataclasses.dataclass
class Cluster:
    """What the rest of the stack needs from whichever cluster was built."""

    name: pulumi.Output[str]
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    component: pulumi.ComponentResource


@dataclasses.dataclass
class Database:
    """What the rest of the stack needs from whichever tier was built."""

    connection: pulumi.Output[DatabaseConnection]
    component: pulumi.ComponentResource
    outputs: dict[str, Any]
    """Tier-specific stack outputs (no plain-text secrets)."""
    app_secret_names: Optional[pulumi.Output[list[str]]] = None
    """Set when the tier delivers the app Secret itself (e.g. kept in sync by External Secrets);
    ``build`` then writes no ``AppDatabaseSecret``."""
    app_secret: Optional[pulumi.Resource] = None
    """The component that delivers the app Secret when the tier does it; what runs against the
    database from the app namespaces (migrations, checks) waits for it."""


def _kind_cluster(settings: StackSettings) -> Cluster:
    cfg = settings.cluster
    db = settings.database
    mappings = []
    if getattr(db, "node_port", None) is not None:
        mappings.append({"container_port": db.node_port, "host_port": db.host_port})
    kind = KindCluster(cfg.name, {"name": cfg.name, "node_image": cfg.node_image,
                                  "port_mappings": mappings, "data_dir": cfg.data_dir})
    return Cluster(kind.cluster_name, kind.provider, kind.kubeconfig, kind)


def _local_database(settings: StackSettings, cluster: Cluster) -> Database:
    cfg = settings.database
    db = LocalPostgres(
        f"{settings.cluster.name}-db",
        {"namespace": cfg.namespace, "version": cfg.version, "database": cfg.name, "username": cfg.username,
         "storage_gb": cfg.storage_gb, "node_port": cfg.node_port, "protect": settings.protect},
        pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
    )
    outputs: dict[str, Any] = {}
    if cfg.node_port is not None:
        # From the laptop: kind publishes the NodePort on 127.0.0.1:<hostPort>.
        outputs["laptopHost"] = "127.0.0.1"
        outputs["laptopPort"] = cfg.host_port
        outputs["laptopDatabaseUrl"] = pulumi.Output.secret(db.connection.apply(
            lambda c: dataclasses.replace(c, host="127.0.0.1", port=cfg.host_port).url()))
    return Database(db.connection, db, outputs)


def _neon_database(settings: StackSettings, cluster: Cluster) -> Database:
    from .db.neon import NeonBranchDb

    cfg = settings.database
    db = NeonBranchDb(
        f"{settings.cluster.name}-neon",
        {"project_id": cfg.project_id, "branch_name": cfg.branch_name, "parent_branch": cfg.parent_branch,
         "database": cfg.name, "role": cfg.username, "schema_only": cfg.schema_only,
         "ttl_seconds": cfg.ttl_seconds, "min_cu": cfg.min_cu, "max_cu": cfg.max_cu,
         "suspend_timeout_seconds": cfg.suspend_timeout_seconds, "api_url": cfg.api_url},
        # A PR branch is disposable by design; `protect` still guards it when a stack asks.
        pulumi.ResourceOptions(protect=settings.protect),
    )
    outputs = {"neonBranchId": db.branch_id, "neonBranchName": cfg.branch_name, "neonExpiresAt": db.expires_at,
               "neonPooledHost": db.pooled_host,
               "databaseUrl": db.database_url, "databaseUrlDirect": db.direct_url}  # both secret
    return Database(db.connection, db, outputs)


CLUSTERS: dict[str, Callable[[StackSettings], Cluster]] = {"kind": _kind_cluster}
TIERS: dict[str, Callable[[StackSettings, Cluster], Database]] = {"local": _local_database,
                                                                 "neon": _neon_database}


# --- Kubernetes-native tiers: cnpg (any cluster; backups and IRSA on EKS) and ack-rds (EKS) ---


def _cnpg_database(settings: StackSettings, cluster: Cluster) -> Database:
    from .db.cnpg import CnpgCluster

    cfg = settings.database
    # EKS exposes IRSA and its gp3 class; on kind these are absent and the cluster runs without
    # object-store backups (a laptop database is disposable).
    host = cluster.component
    oidc_provider_arn = getattr(host, "oidc_provider_arn", None)
    db = CnpgCluster(
        f"{settings.cluster.name}-db",
        {"namespace": cfg.namespace, "cluster_name": cfg.cluster_name, "version": cfg.version, "database": cfg.name,
         "username": cfg.username, "instances": cfg.instances, "storage_gb": cfg.storage_gb,
         "wal_storage_gb": cfg.wal_storage_gb, "storage_class": cfg.storage_class or getattr(host, "storage_class", None),
         "oidc_provider_arn": oidc_provider_arn, "oidc_issuer": getattr(host, "oidc_issuer", None),
         "backup_schedule": cfg.backup_schedule, "backup_retention_days": cfg.backup_retention_days,
         "pod_monitor": cfg.pod_monitor, "protect": settings.protect},
        pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
    )
    outputs: dict[str, Any] = {"cnpgCluster": db.cluster_name, "databaseReaderHost": db.reader_host}
    if oidc_provider_arn is not None:
        outputs.update({"backupBucket": db.backup_bucket, "backupDestination": db.backup_destination,
                        "backupRoleArn": db.backup_role_arn})
    return Database(db.connection, db, outputs)


def _region_of_issuer(issuer: str) -> str:
    # oidc.eks.<region>.amazonaws.com/id/<id>: the cluster's own region, with no extra lookup.
    return issuer.removeprefix("https://").split(".")[2]


def _ack_rds_database(settings: StackSettings, cluster: Cluster) -> Database:
    from .db.ack_rds import AckRdsInstance

    cfg = settings.database
    eks = cluster.component
    db = AckRdsInstance(
        f"{settings.cluster.name}-db",
        {"vpc_id": eks.vpc_id, "private_subnet_ids": eks.private_subnet_ids,
         "cluster_security_group_id": eks.cluster_security_group_id, "oidc_provider_arn": eks.oidc_provider_arn,
         "oidc_issuer": eks.oidc_issuer, "region": eks.oidc_issuer.apply(_region_of_issuer),
         "namespace": cfg.namespace, "identifier": f"{settings.cluster.name}-{cfg.name}".replace("_", "-"),
         "version": cfg.version, "database": cfg.name, "username": cfg.username,
         "instance_class": cfg.instance_class, "storage_gb": cfg.storage_gb, "max_storage_gb": cfg.max_storage_gb,
         "multi_az": cfg.multi_az, "backup_retention_days": cfg.backup_retention_days,
         "endpoint_export": cfg.endpoint_export, "protect": settings.protect},
        pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
    )
    return Database(db.connection, db, {"rdsInstance": db.identifier, "rdsEndpointExport": db.endpoint_export,
                                        "rdsSecurityGroupId": db.security_group_id})


TIERS["cnpg"] = _cnpg_database
TIERS["ack-rds"] = _ack_rds_database


# --- production tier on AWS: EKS cluster, Aurora, rotation-safe credentials --------------------



def _eks_cluster(settings: StackSettings) -> Cluster:
    from .cluster.eks import EksCluster

    cfg = settings.cluster
    eks = EksCluster(cfg.name, {
        "cluster_name": cfg.name, "kubernetes_version": cfg.kubernetes_version, "vpc_cidr": cfg.vpc_cidr,
        "availability_zones": list(cfg.availability_zones or []), "nat": cfg.nat_gateways,
        "instance_types": list(cfg.instance_types), "min_nodes": cfg.min_nodes, "desired_nodes": cfg.desired_nodes,
        "max_nodes": cfg.max_nodes, "node_disk_gb": cfg.node_disk_gb, "capacity_type": cfg.capacity_type,
        "public_access_cidrs": list(cfg.public_access_cidrs), "admin_role_arns": list(cfg.admin_role_arns),
        # A protected stack keeps a volume whose claim was deleted by mistake.
        "volume_reclaim_policy": "Retain" if settings.protect else "Delete",
        "protect": settings.protect, "tags": {"pgtiers:stack": pulumi.get_stack()},
    })
    return Cluster(eks.cluster_name, eks.provider, eks.kubeconfig, eks)


def _aurora_database(settings: StackSettings, cluster: Cluster) -> Database:
    from .cluster.eks import EksCluster
    from .db.aurora import AuroraServerlessDb
    from .external_secrets import DatabaseSecretSync, ExternalSecretsOperator

    cfg = settings.database
    eks = cluster.component
    if not isinstance(eks, EksCluster):  # config.TIER_CLUSTERS admits aurora on eks only
        raise TypeError(f"the aurora tier needs an EksCluster, not {type(eks).__name__}")
    rotated = cfg.credentials == "external-secrets"
    db = AuroraServerlessDb(cfg.identifier, {
        "vpc_id": eks.vpc_id, "subnet_ids": eks.private_subnet_ids,
        # Managed-node-group pods carry the EKS cluster security group, not the node group's.
        "allowed_security_group_ids": [eks.cluster_security_group_id],
        "identifier": cfg.identifier, "engine_version": str(cfg.version), "database_name": cfg.name,
        "master_username": cfg.username, "manage_master_user_password": rotated,
        "min_acu": cfg.min_acu, "max_acu": cfg.max_acu, "seconds_until_auto_pause": cfg.seconds_until_auto_pause,
        "instances": cfg.instances, "backup_retention_days": cfg.backup_retention_days,
        "preferred_backup_window": cfg.backup_window, "preferred_maintenance_window": cfg.maintenance_window,
        "kms_key_arn": cfg.kms_key_arn, "deletion_protection": cfg.deletion_protection,
        "final_snapshot": cfg.final_snapshot, "performance_insights": cfg.performance_insights,
        "performance_insights_retention_days": cfg.performance_insights_retention_days,
        "monitoring_interval": cfg.monitoring_interval, "log_retention_days": cfg.log_retention_days,
        "iam_database_authentication": cfg.iam_authentication, "protect": settings.protect,
        "tags": {"pgtiers:stack": pulumi.get_stack(), **cfg.tags},
    })
    outputs: dict[str, Any] = {
        "vpcId": eks.vpc_id, "auroraClusterIdentifier": db.cluster_identifier,
        "auroraWriterEndpoint": db.writer_endpoint, "auroraReaderEndpoint": db.reader_endpoint,
        "auroraSecurityGroupId": db.security_group_id, "credentialsDelivery": cfg.credentials,
    }
    secret_names, sync = None, None
    if rotated:
        outputs["auroraMasterSecretArn"] = db.master_secret_arn
        on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
        operator = ExternalSecretsOperator(f"{settings.cluster.name}-eso", {}, on_cluster)
        app = settings.app
        sync = DatabaseSecretSync(f"{settings.cluster.name}-app-db", {
            "secret_arn": db.master_secret_arn, "kms_key_arn": db.kms_key_arn, "host": db.writer_endpoint,
            "database": cfg.name, "oidc_provider_arn": eks.oidc_provider_arn, "oidc_issuer": eks.oidc_issuer,
            "namespaces": list(app.namespaces), "secret_name": app.secret_name,
            "create_namespaces": app.create_namespaces, "refresh_interval": cfg.refresh_interval,
            "operator": operator, "tags": {"pgtiers:stack": pulumi.get_stack()},
        }, on_cluster)
        secret_names = sync.secret_names
    return Database(db.connection, db, outputs, app_secret_names=secret_names, app_secret=sync)


CLUSTERS["eks"] = _eks_cluster
TIERS["aurora"] = _aurora_database


def build(settings: StackSettings) -> Optional[AppDatabaseSecret]:
    """The whole stack. A component refusing its input (every component validates before it
    registers anything) becomes a one-line ``ConfigError``: to the person running ``pulumi up``
    it is a mistake in their settings or files, not a crash."""
    try:
        return _build(settings)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _build(settings: StackSettings) -> Optional[AppDatabaseSecret]:
    cluster = CLUSTERS[settings.cluster.type](settings)
    database = TIERS[settings.database.tier](settings, cluster)
    app = settings.app
    secret: Optional[AppDatabaseSecret] = None
    secret_names = database.app_secret_names
    if secret_names is None:
        secret = AppDatabaseSecret(
            f"{settings.cluster.name}-app-db",
            {"connection": database.connection, "namespaces": list(app.namespaces), "secret_name": app.secret_name,
             "create_namespaces": app.create_namespaces},
            pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
        )
        secret_names = secret.secret_names
    _schema_and_checks(settings, cluster, database, secret or database.app_secret)
    pulumi.export("clusterName", cluster.name)
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
    pulumi.export("tier", settings.database.tier)
    # Host, port and name are not secret; the password never leaves the Secret.
    pulumi.export("databaseHost", pulumi.Output.unsecret(database.connection.apply(lambda c: c.host)))
    pulumi.export("databasePort", pulumi.Output.unsecret(database.connection.apply(lambda c: c.port)))
    pulumi.export("databaseName", pulumi.Output.unsecret(database.connection.apply(lambda c: c.database)))
    pulumi.export("appSecrets", secret_names)
    for key, value in database.outputs.items():
        pulumi.export(key, value)
    return secret


# --- schema and proof: migrations, seed data, connectivity check -------------------------------


def _project_path(relative: str) -> str:
    # Pulumi runs the program in the project directory (where Pulumi.yaml is), and so does the
    # offline plan: paths in the settings are relative to it, not to this package.
    return str(Path.cwd() / relative)

#: ConnectivityCheck adds a 10-character hash to its name; Kubernetes names stop at 63.
_CHECK_NAME_LIMIT = 52


def _schema_and_checks(settings: StackSettings, cluster: Cluster, database: Database,
                       app_secret: Optional[pulumi.Resource]) -> None:
    """Runs from the app namespaces, only after the database and the app Secret are ready.

    Each Job's name carries a run key, so a new database behind the same Secret name (a sandbox or
    CI branch re-created after its TTL, a moved host) gets migrations, seed rows and a check again.
    """
    from .jobs import postgres_major, short_hash

    app, migrations = settings.app, settings.migrations
    on_cluster = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
    gates = [r for r in (app_secret,) if r is not None]
    first_namespace = app.namespaces[0]  # one schema per database: migrate once, not per namespace
    # The server major, whatever form the tier takes it in (Aurora accepts "16.4"); the components
    # pick the psql client from it, the newest pinned one when that major has no image of its own.
    major = postgres_major(settings.database.version, "pgtiers:database.version")
    # Which database the schema and the seed rows live in: host, port, database, user. None of it
    # is secret (the stack exports host, port and database in plain text), so unsecret the hash.
    database_key = pulumi.Output.unsecret(database.connection.apply(
        lambda c: short_hash(c.host, str(c.port), c.database, c.username)))
    if migrations.enabled:
        schema = AtlasMigrations("schema", {
            "namespace": first_namespace, "secret_name": app.secret_name,
            "migrations_dir": _project_path(migrations.dir), "mode": migrations.mode,
            "run_key": database_key, "depends_on": [database.component, *gates]}, on_cluster)
        if migrations.seed:
            SeedData("seed", {"namespace": first_namespace, "secret_name": app.secret_name,
                              "seed_file": _project_path(migrations.seed), "version": major,
                              "run_key": database_key, "depends_on": [schema]}, on_cluster)
    check = app.connectivity_check if app.connectivity_check is not None else settings.cluster.type == "kind"
    if check:
        # Everything the check proves, password and sslmode included, so any change to the Secret's
        # data (a new host, a rotated password) is checked again. Unsecret, because it ends up in a
        # Kubernetes object name: it is secret-derived, but 10 hex digits (40 bits) of a SHA-256 over
        # data holding a random password (32 characters, about 190 bits, where pgtiers generates it)
        # reveal nothing usable: some 2^150 passwords share any such digest, so it confirms no guess.
        secret_key = pulumi.Output.unsecret(database.connection.apply(
            lambda c: short_hash(*(f"{k}={v}" for k, v in sorted(c.secret_data().items())))))
        for i, namespace in enumerate(app.namespaces):
            name = f"dbcheck-{namespace}" if len(f"dbcheck-{namespace}") <= _CHECK_NAME_LIMIT else f"dbcheck-{i}"
            ConnectivityCheck(name, {"namespace": namespace, "secret_name": app.secret_name,
                                     "version": major, "run_key": secret_key,
                                     "depends_on": [database.component, *gates]}, on_cluster)
