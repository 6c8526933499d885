"""Stack settings: the ``pgtiers:*`` config keys, parsed into typed, validated objects.

Every mistake in a stack file (unknown key, wrong type, value out of range, missing key, a tier
the chosen cluster can't host) becomes one ``ConfigError`` whose message names the full key
path, the bad value and what is allowed, before any resource is registered. ``ConfigError`` is
a ``pulumi.RunError``, so ``pulumi up`` prints the sentence without a Python traceback.

Keys inside the objects are camelCase, like the rest of Pulumi's YAML.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal, Mapping, Optional, Union, get_args, get_origin

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "pgtiers"

TIERS = ("local", "neon", "aurora", "cnpg", "ack-rds")
CLUSTER_TYPES = ("kind", "eks")

#: Which cluster types can host each tier (a local Postgres on EKS is the cnpg tier's job;
#: Aurora and ACK need a VPC and IRSA, which only EKS gives).
TIER_CLUSTERS: dict[str, tuple[str, ...]] = {
    "local": ("kind",),
    "neon": ("kind", "eks"),
    "aurora": ("eks",),
    "cnpg": ("kind", "eks"),
    "ack-rds": ("eks",),
}

#: Tiers this version of pgtiers can build. The others parse, then stop with a clear sentence.
BUILT_TIERS: tuple[str, ...] = ("local", "neon", "cnpg", "ack-rds", "aurora")
BUILT_CLUSTERS: tuple[str, ...] = ("kind", "eks")

#: Official ``postgres`` image tags, pinned per major (Debian bookworm variants).
POSTGRES_IMAGES: dict[int, str] = {
    14: "postgres:14.20-bookworm",
    15: "postgres:15.15-bookworm",
    16: "postgres:16.11-bookworm",
    17: "postgres:17.7-bookworm",
    18: "postgres:18.1-bookworm",
}

#: kind node image, pinned; the Kubernetes version the dev manifests are validated against.
KIND_NODE_IMAGE = "kindest/node:v1.33.1"
KIND_KUBERNETES_VERSION = "1.33"


class ConfigError(pulumi.RunError):
    """A stack setting is wrong. The message is one sentence meant for the person at the keyboard."""


# --- field rules ------------------------------------------------------------------------------

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_PG_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _rule(pattern: re.Pattern[str], what: str):
    def check(value: str) -> str:
        if not pattern.match(value):
            raise ValueError(what)
        return value

    return AfterValidator(check)


DnsLabel = Annotated[
    str,
    _rule(_DNS_LABEL, "is not a Kubernetes name (lowercase letters, digits and '-', "
          "starting and ending with a letter or digit, at most 63 characters)"),
]
DnsSubdomain = Annotated[
    str,
    _rule(_DNS_SUBDOMAIN, "is not a Kubernetes object name (lowercase letters, digits, '-' "
          "and '.', at most 253 characters)"),
]
PgIdentifier = Annotated[
    str,
    _rule(_PG_IDENTIFIER, "is not a plain PostgreSQL identifier (lowercase letters, digits "
          "and '_', starting with a letter or '_', at most 63 characters)"),
]
NodePort = Annotated[int, Field(ge=30000, le=32767, strict=True)]
HostPort = Annotated[int, Field(ge=1, le=65535, strict=True)]


class _Settings(BaseModel):
    # strict: a string where a number belongs is a mistake, not something to coerce.
    model_config = ConfigDict(
        extra="forbid", frozen=True, strict=True, alias_generator=to_camel, populate_by_name=False
    )


# --- cluster ----------------------------------------------------------------------------------


class KindClusterSettings(_Settings):
    """``pgtiers:cluster`` with ``type: kind``: a local kind cluster in Docker."""

    type: Literal["kind"]
    name: DnsLabel
    """Name of the kind cluster (its kubeconfig context is ``kind-<name>``)."""
    node_image: str = KIND_NODE_IMAGE
    """kind node image, pinned."""
    data_dir: Optional[str] = None
    """Host directory mapped to the node's local-path volumes so data survives recreating the cluster."""


# --- cluster: eks (production tier) -----------------------------------------------------------

_KUBERNETES_MINOR = re.compile(r"^1\.\d{2}$")
_EC2_INSTANCE_TYPE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_IAM_PRINCIPAL_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
_IPV4_CIDR = re.compile(r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$")
_AWS_ZONE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d[a-z]$")

KubernetesMinor = Annotated[str, _rule(_KUBERNETES_MINOR, "is not a Kubernetes minor version such as \"1.34\"")]
Ec2InstanceType = Annotated[str, _rule(_EC2_INSTANCE_TYPE, "is not an EC2 instance type (e.g. m7i.large)")]
IamPrincipalArn = Annotated[str, _rule(_IAM_PRINCIPAL_ARN, "is not an IAM role or user ARN")]
_KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+$")
KmsKeyArn = Annotated[str, _rule(_KMS_KEY_ARN, "is not a KMS key or alias ARN (arn:aws:kms:<region>:<account>:key/<id>)")]
Ipv4Cidr = Annotated[str, _rule(_IPV4_CIDR, "is not an IPv4 CIDR such as 10.0.0.0/16")]
AwsZone = Annotated[str, _rule(_AWS_ZONE, "is not an availability zone name such as eu-west-1a")]


class EksClusterSettings(_Settings):
    """``pgtiers:cluster`` with ``type: eks``: an Amazon EKS cluster in a VPC of its own."""

    type: Literal["eks"]
    name: DnsLabel
    """Name of the EKS cluster (changing it replaces the cluster); also names its AWS resources."""
    kubernetes_version: KubernetesMinor = "1.34"
    """Kubernetes minor of the control plane and nodes."""
    vpc_cidr: Ipv4Cidr = "10.0.0.0/16"
    """IPv4 range of the new VPC, a /16 to /20."""
    availability_zones: Optional[Annotated[list[AwsZone], Field(min_length=2, max_length=3)]] = None
    """Two or three zones; null for the region's first three."""
    nat_gateways: Literal["per-az", "single"] = "per-az"
    """``per-az`` survives the loss of a zone; ``single`` saves two NAT gateways (non-production)."""
    instance_types: Annotated[list[Ec2InstanceType], Field(min_length=1)] = ["m7i.large"]
    """EC2 instance types of the managed node group."""
    min_nodes: Annotated[int, Field(ge=1, le=100, strict=True)] = 2
    """Fewest nodes."""
    desired_nodes: Annotated[int, Field(ge=1, le=100, strict=True)] = 2
    """Nodes at creation."""
    max_nodes: Annotated[int, Field(ge=1, le=100, strict=True)] = 4
    """Most nodes."""
    node_disk_gb: Annotated[int, Field(ge=20, le=1000, strict=True)] = 50
    """Root volume per node in GiB."""
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    """On-demand or Spot nodes."""
    public_access_cidrs: Annotated[list[Ipv4Cidr], Field(min_length=1)] = ["0.0.0.0/0"]
    """Networks that may reach the public Kubernetes API endpoint (IAM still authenticates)."""
    admin_role_arns: list[IamPrincipalArn] = []
    """IAM roles or users given cluster-admin through EKS access entries (the creator always is)."""

    @model_validator(mode="after")
    def _consistent(self) -> "EksClusterSettings":
        import ipaddress

        try:
            network = ipaddress.ip_network(self.vpc_cidr)
        except ValueError:
            raise _FieldError("vpcCidr", self.vpc_cidr, "is not a network address (host bits set?)") from None
        if not 16 <= network.prefixlen <= 20:
            raise _FieldError("vpcCidr", self.vpc_cidr, "must be a /16 to /20 (pods take VPC addresses)")
        if not self.min_nodes <= self.desired_nodes <= self.max_nodes:
            raise _FieldError("desiredNodes", self.desired_nodes, f"must lie between minNodes ({self.min_nodes}) "
                              f"and maxNodes ({self.max_nodes})")
        return self


ClusterSettings = Annotated[Union[KindClusterSettings, EksClusterSettings], Field(discriminator="type")]


# --- database ---------------------------------------------------------------------------------


class _DatabaseCommon(_Settings):
    name: PgIdentifier = "app"
    """Name of the database the app owns."""
    version: Annotated[int, Field(strict=True)] = 18
    """PostgreSQL major version."""
    username: PgIdentifier = "app"
    """Role the app logs in as."""


class LocalDatabaseSettings(_DatabaseCommon):
    """``pgtiers:database`` with ``tier: local``: a disposable Postgres inside the cluster."""

    tier: Literal["local"]
    namespace: DnsLabel = "pgtiers-db"
    """Namespace of the Postgres StatefulSet."""
    storage_gb: Annotated[int, Field(ge=1, le=1000, strict=True)] = 5
    """Size of the data volume in GiB."""
    node_port: Optional[NodePort] = 30432
    """NodePort for psql from the laptop (30000-32767), or null for none."""
    host_port: HostPort = 15432
    """Port on the laptop that kind maps to ``nodePort``."""

    @model_validator(mode="after")
    def _supported_version(self) -> "LocalDatabaseSettings":
        if self.version not in POSTGRES_IMAGES:
            raise _FieldError("version", self.version, f"is not a supported PostgreSQL major; "
                              f"allowed: {', '.join(map(str, POSTGRES_IMAGES))}")
        return self


# --- database: the Kubernetes-native tiers (cnpg, ack-rds) -------------------------------------

#: CloudNativePG operand images, pinned per major. The "minimal" flavour carries no Barman: backups
#: run in the Barman Cloud Plugin's sidecar. CNPG rebuilds these tags weekly for OS fixes; pin a
#: digest through ``CnpgCluster``'s ``image`` argument where byte-for-byte repeatability matters.
CNPG_IMAGES: dict[int, str] = {
    14: "ghcr.io/cloudnative-pg/postgresql:14.22-minimal-trixie",
    15: "ghcr.io/cloudnative-pg/postgresql:15.17-minimal-trixie",
    16: "ghcr.io/cloudnative-pg/postgresql:16.13-minimal-trixie",
    17: "ghcr.io/cloudnative-pg/postgresql:17.9-minimal-trixie",
    18: "ghcr.io/cloudnative-pg/postgresql:18.3-minimal-trixie",
}

#: PostgreSQL majors RDS offers; the DBInstance pins only the major so AWS minor upgrades never
#: look like drift.
RDS_POSTGRES_MAJORS: tuple[int, ...] = (14, 15, 16, 17, 18)

# CNPG's ScheduledBackup takes six fields, seconds first; a five-field crontab line would be read
# with every field shifted one place (minutes as seconds, hours as minutes...).
_SIX_FIELD_CRON = re.compile(r"^\S+( \S+){5}$")
_RDS_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")

SixFieldCron = Annotated[
    str,
    _rule(_SIX_FIELD_CRON, "is not a six-field schedule (seconds minutes hours day-of-month month "
          "day-of-week, e.g. '0 0 3 * * *')"),
]
RdsInstanceClass = Annotated[
    str, _rule(_RDS_INSTANCE_CLASS, "is not an RDS instance class (e.g. db.t4g.medium, db.m7g.large)"),
]


class CnpgDatabaseSettings(_DatabaseCommon):
    """``pgtiers:database`` with ``tier: cnpg``: a CloudNativePG cluster inside the Kubernetes cluster."""

    tier: Literal["cnpg"]
    namespace: DnsLabel = "pgtiers-db"
    """Namespace of the CNPG Cluster, its Secrets and its backups' service account."""
    cluster_name: DnsLabel = "pg"
    """Name of the CNPG ``Cluster``: its Services are ``<name>-rw``/``-ro``/``-r`` and its pods' service account is ``<name>``."""
    instances: Annotated[int, Field(ge=1, le=9, strict=True)] = 3
    """PostgreSQL instances (1 primary + standbys); 3 spreads them over three zones."""
    storage_gb: Annotated[int, Field(ge=1, le=16000, strict=True)] = 20
    """Data volume per instance in GiB."""
    wal_storage_gb: Annotated[int, Field(ge=1, le=16000, strict=True)] = 10
    """Separate WAL volume per instance in GiB (a full WAL disk then cannot fill the data disk)."""
    storage_class: Optional[DnsSubdomain] = None
    """StorageClass of both volumes; null for the cluster's own (``gp3`` on EKS)."""
    backup_schedule: SixFieldCron = "0 0 3 * * *"
    """Base backup schedule, six fields with seconds first (default 03:00:00 daily)."""
    backup_retention_days: Annotated[int, Field(ge=1, le=3650, strict=True)] = 30
    """Days of base backups and WAL to keep in the object store."""
    pod_monitor: Annotated[bool, Field(strict=True)] = False
    """Create a Prometheus Operator ``PodMonitor`` (needs its CRD in the cluster)."""

    @model_validator(mode="after")
    def _supported_version(self) -> "CnpgDatabaseSettings":
        if self.version not in CNPG_IMAGES:
            raise _FieldError("version", self.version, f"is not a PostgreSQL major with a pinned CloudNativePG "
                              f"image; allowed: {', '.join(map(str, CNPG_IMAGES))}")
        return self


class AckRdsDatabaseSettings(_DatabaseCommon):
    """``pgtiers:database`` with ``tier: ack-rds``: an RDS instance declared as a Kubernetes object (AWS ACK)."""

    tier: Literal["ack-rds"]
    namespace: DnsLabel = "pgtiers-db"
    """Namespace of the DBInstance, its password Secret and the endpoint ConfigMap."""
    instance_class: RdsInstanceClass = "db.t4g.medium"
    """RDS instance class."""
    storage_gb: Annotated[int, Field(ge=20, le=65536, strict=True)] = 20
    """Allocated storage in GiB (gp3 starts at 20)."""
    max_storage_gb: Annotated[int, Field(ge=21, le=65536, strict=True)] = 100
    """Ceiling for RDS storage autoscaling in GiB; must exceed ``storageGb``."""
    multi_az: Annotated[bool, Field(strict=True)] = True
    """Keep a synchronous standby in a second availability zone."""
    backup_retention_days: Annotated[int, Field(ge=1, le=35, strict=True)] = 7
    """Days of automated backups (point-in-time recovery window); at least 7 when ``pgtiers:protect`` is on."""
    endpoint_export: Literal["configmap", "secret"] = "configmap"
    """Kind of object the ACK FieldExport keeps the live endpoint address in."""

    @model_validator(mode="after")
    def _consistent(self) -> "AckRdsDatabaseSettings":
        if self.version not in RDS_POSTGRES_MAJORS:
            raise _FieldError("version", self.version, f"is not an RDS PostgreSQL major; allowed: "
                              f"{', '.join(map(str, RDS_POSTGRES_MAJORS))}")
        if self.max_storage_gb <= self.storage_gb:
            raise _FieldError("maxStorageGb", self.max_storage_gb,
                              f"must be greater than storageGb ({self.storage_gb}) for storage autoscaling")
        return self


# --- neon (per-PR branches) ---------------------------------------------------------------------

_NEON_PROJECT_ID = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
_NEON_BRANCH_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$")
NEON_MAX_TTL_SECONDS = 30 * 24 * 3600


class NeonDatabaseSettings(_DatabaseCommon):
    """``pgtiers:database`` with ``tier: neon``: a Neon branch with its own compute, copy-on-write."""

    tier: Literal["neon"]
    project_id: Annotated[str, _rule(_NEON_PROJECT_ID, "is not a Neon project id (e.g. shiny-wind-028834)")]
    """Neon project that holds the branches (the API key comes from ``NEON_API_KEY``)."""
    branch_name: Annotated[str, _rule(_NEON_BRANCH_NAME, "is not a branch name (letters, digits, '.', '_', '/', '-')")]
    """Exact branch name; ``python -m components pr up`` sets ``pr-<n>``."""
    parent_branch: Optional[str] = None
    """Branch to copy from, by name or id; null for the project's default branch."""
    schema_only: Annotated[bool, Field(strict=True)] = False
    """Copy the parent's schema without its data."""
    ttl_seconds: Optional[Annotated[int, Field(ge=60, le=NEON_MAX_TTL_SECONDS, strict=True)]] = 7 * 24 * 3600
    """Server-side expiry (60 s to 30 days); null for none. A forgotten branch then deletes itself."""
    min_cu: Optional[Annotated[float, Field(ge=0.25, le=56)]] = 0.25
    """Autoscaling minimum in compute units."""
    max_cu: Optional[Annotated[float, Field(ge=0.25, le=56)]] = 1
    """Autoscaling maximum in compute units."""
    suspend_timeout_seconds: Optional[Annotated[int, Field(ge=-1, le=604800, strict=True)]] = 300
    """Scale to zero after this idle time: -1 never, 0 Neon's default, else 60-604800."""
    api_url: Optional[str] = None
    """Neon API base URL; null for ``NEON_API_URL`` or the public API."""

    @model_validator(mode="after")
    def _consistent(self) -> "NeonDatabaseSettings":
        if self.min_cu is not None and self.max_cu is not None and self.min_cu > self.max_cu:
            raise _FieldError("minCu", self.min_cu, f"is above maxCu ({self.max_cu:g})")
        if self.suspend_timeout_seconds is not None and 0 < self.suspend_timeout_seconds < 60:
            raise _FieldError("suspendTimeoutSeconds", self.suspend_timeout_seconds,
                              "must be -1 (never), 0 (Neon's default) or 60-604800")
        return self


# --- database: aurora (production tier) ------------------------------------------------------

#: Args names of ``AuroraServerlessDb`` (as ``aurora_rules`` reports them) -> keys in ``pgtiers:database``.
AURORA_KEYS: dict[str, str] = {
    "identifier": "identifier", "engine_version": "version", "database_name": "name", "master_username": "username",
    "min_acu": "minAcu", "max_acu": "maxAcu", "seconds_until_auto_pause": "secondsUntilAutoPause",
    "instances": "instances", "backup_retention_days": "backupRetentionDays",
    "preferred_backup_window": "backupWindow", "preferred_maintenance_window": "maintenanceWindow",
    "monitoring_interval": "monitoringInterval", "log_retention_days": "logRetentionDays",
    "performance_insights_retention_days": "performanceInsightsRetentionDays",
}
_GO_DURATION = re.compile(r"^([0-9]+(h|m|s))+$")
GoDuration = Annotated[str, _rule(_GO_DURATION, "is not a duration such as 5m, 1h or 1h30m")]


class AuroraDatabaseSettings(_DatabaseCommon):
    """``pgtiers:database`` with ``tier: aurora``: Aurora PostgreSQL Serverless v2 next to the EKS cluster.

    The defaults are the safe ones (deletion protection, final snapshot, two instances); a
    throw-away stack turns them off explicitly.
    """

    tier: Literal["aurora"]
    identifier: str
    """RDS cluster identifier (instances are ``<identifier>-<n>``). Required: it is a physical name
    and changing it replaces the cluster."""
    version: Union[int, str] = 16
    """Aurora PostgreSQL major (13-17); "16.4" also states the oldest minor the cluster runs."""
    min_acu: float = 0.5
    """Minimum capacity in ACUs, steps of 0.5; 0 lets the cluster pause when idle."""
    max_acu: float = 4.0
    """Maximum capacity in ACUs (1-256, steps of 0.5)."""
    seconds_until_auto_pause: Optional[int] = None
    """Idle seconds before pausing, 300-86400; only with ``minAcu: 0`` (null: AWS's 300)."""
    instances: int = 2
    """Writer plus readers; 2 or more puts a reader in another zone to fail over to."""
    backup_retention_days: int = 7
    """Days of automated backups (1-35); at least 7 when ``pgtiers:protect`` is on."""
    backup_window: str = "03:00-04:00"
    """Daily UTC backup window."""
    maintenance_window: str = "sun:05:00-sun:06:00"
    """Weekly UTC maintenance window; must not overlap the backup window."""
    kms_key_arn: Optional[KmsKeyArn] = None
    """Customer-managed KMS key to encrypt with; null to create one (rotation on)."""
    deletion_protection: Annotated[bool, Field(strict=True)] = True
    """AWS refuses to delete the cluster while set."""
    final_snapshot: Annotated[bool, Field(strict=True)] = True
    """Snapshot the cluster when it is deleted."""
    performance_insights: Annotated[bool, Field(strict=True)] = True
    """Performance Insights on every instance."""
    performance_insights_retention_days: int = 7
    """7 (free), a multiple of 31 up to 713, or 731."""
    monitoring_interval: int = 0
    """Enhanced Monitoring interval in seconds (0 off, 1, 5, 10, 15, 30, 60)."""
    log_retention_days: int = 30
    """CloudWatch retention of the exported PostgreSQL log."""
    iam_authentication: Annotated[bool, Field(strict=True)] = False
    """Allow IAM database authentication."""
    credentials: Literal["external-secrets", "direct"] = "external-secrets"
    """``external-secrets``: RDS keeps and rotates the password, ESO syncs the app Secret.
    ``direct``: a Pulumi-generated password, encrypted in the Pulumi state, written once."""
    refresh_interval: GoDuration = "5m"
    """With ``external-secrets``: how often the app Secret is re-read from Secrets Manager."""
    tags: dict[str, str] = {}
    """Extra tags on the database's AWS resources."""

    @model_validator(mode="after")
    def _aurora_rules(self) -> "AuroraDatabaseSettings":
        from .db.aurora_rules import AuroraArgumentError, check_all

        values = {"engine_version": self.version, "database_name": self.name, "master_username": self.username,
                  "min_acu": self.min_acu, "max_acu": self.max_acu,
                  "seconds_until_auto_pause": self.seconds_until_auto_pause, "instances": self.instances,
                  "backup_retention_days": self.backup_retention_days,
                  "preferred_backup_window": self.backup_window, "preferred_maintenance_window": self.maintenance_window,
                  "monitoring_interval": self.monitoring_interval, "log_retention_days": self.log_retention_days,
                  "performance_insights_retention_days": self.performance_insights_retention_days}
        try:
            check_all(values, identifier=self.identifier)
            if len(self.identifier) > 60:
                raise AuroraArgumentError("identifier", self.identifier, "is longer than 60 characters (instance "
                                          "identifiers append '-<n>' and RDS allows 63)")
        except AuroraArgumentError as exc:
            # The rules speak in AuroraServerlessDb's argument names; a stack file has its own keys.
            message = re.sub(r"\b[a-z_]+\b", lambda m: AURORA_KEYS.get(m.group(0), m.group(0)), exc.message)
            raise _FieldError(AURORA_KEYS.get(exc.field, exc.field), exc.value, message) from None
        return self


DatabaseSettings = Annotated[Union[LocalDatabaseSettings, NeonDatabaseSettings, CnpgDatabaseSettings, AckRdsDatabaseSettings,
                                   AuroraDatabaseSettings],
                             Field(discriminator="tier")]


# --- app --------------------------------------------------------------------------------------


def _no_duplicates(values: list[str]) -> list[str]:
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise ValueError(f"names {', '.join(repeated)} more than once; each namespace gets one Secret")
    return values


class AppSettings(_Settings):
    """``pgtiers:app``: where the app's database Secret goes."""

    namespaces: Annotated[list[DnsLabel], Field(min_length=1), AfterValidator(_no_duplicates)] = ["app"]
    """Namespaces that each get the Secret."""
    secret_name: DnsSubdomain = "database"
    """Name of the Secret in each namespace."""
    create_namespaces: Annotated[bool, Field(strict=True)] = True
    """Create those namespaces (false when they already exist and belong to someone else)."""
    connectivity_check: Optional[Annotated[bool, Field(strict=True)]] = None
    """Prove from inside each app namespace that the Secret connects (a Job per ``pulumi up`` of a
    changed Secret). Null: on for kind clusters (dev, ci, sandbox), off elsewhere."""


_RELATIVE_PATH = re.compile(r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9._/-]+$")
RelativePath = Annotated[
    str, _rule(_RELATIVE_PATH, "is not a path inside the project (relative, no '..')"),
]


class MigrationsSettings(_Settings):
    """``pgtiers:migrations``: bring the schema up to date on every ``pulumi up``."""

    enabled: Annotated[bool, Field(strict=True)] = True
    """Apply the Atlas migration directory after the database and the Secret are ready."""
    mode: Literal["job", "operator"] = "job"
    """``job``: a Kubernetes Job running the pinned Atlas image. ``operator``: the Atlas Operator."""
    dir: RelativePath = "migrations"
    """Atlas migration directory, relative to the project."""
    seed: Optional[RelativePath] = None
    """SQL file loaded after the migrations (idempotent), e.g. ``seed/sandbox.sql`` for sandboxes."""


class StackSettings(BaseModel):
    """All ``pgtiers:*`` settings of one stack."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    cluster: ClusterSettings
    database: DatabaseSettings
    app: AppSettings = AppSettings()
    migrations: MigrationsSettings = MigrationsSettings()
    protect: Annotated[bool, Field(strict=True)] = False
    """Mark data-bearing resources ``protect`` so that no ``pulumi destroy`` or replacement deletes them."""

    @model_validator(mode="after")
    def _database_namespace_is_its_own(self) -> "StackSettings":
        # Keeping the database out of the app namespaces keeps its credentials Secret away from
        # every pod there and gives each namespace one owner.
        namespace = getattr(self.database, "namespace", None)
        if namespace is not None and namespace in self.app.namespaces:
            raise _FieldError("database.namespace", namespace,
                              f"is also in {NAMESPACE}:app.namespaces; keep the database in a namespace of its own")
        return self

    @model_validator(mode="after")
    def _ack_rds_backups_in_production(self) -> "StackSettings":
        # A protected (production) RDS instance keeps at least a week of point-in-time recovery.
        if isinstance(self.database, AckRdsDatabaseSettings) and self.protect and self.database.backup_retention_days < 7:
            raise _FieldError("database.backupRetentionDays", self.database.backup_retention_days,
                              f"is below 7, the minimum when {NAMESPACE}:protect is true")
        return self

    @model_validator(mode="after")
    def _aurora_in_production(self) -> "StackSettings":
        # A protected (production) Aurora cluster keeps a week of point-in-time recovery, cannot be
        # deleted by AWS API calls, and leaves a snapshot if it is deleted anyway.
        db = self.database
        if not (isinstance(db, AuroraDatabaseSettings) and self.protect):
            return self
        when = f"when {NAMESPACE}:protect is true"
        if db.backup_retention_days < 7:
            raise _FieldError("database.backupRetentionDays", db.backup_retention_days, f"is below 7, the minimum {when}")
        if not db.deletion_protection:
            raise _FieldError("database.deletionProtection", db.deletion_protection, f"must be true {when}")
        if not db.final_snapshot:
            raise _FieldError("database.finalSnapshot", db.final_snapshot, f"must be true {when}")
        return self


# --- errors -----------------------------------------------------------------------------------


class _FieldError(ValueError):
    """Raised by model validators to point at one field of the model they check."""

    def __init__(self, field: str, value: Any, message: str):
        super().__init__(message)
        self.field, self.value, self.message = field, value, message


def _path(loc: tuple, data: Any) -> tuple[str, Any, bool]:
    """Turn a pydantic location into ``a.b[0].c``, skipping union tags; also return the value."""
    parts: list[str] = []
    node, found = data, True
    for item in loc:
        if isinstance(item, int) and isinstance(node, list):
            parts[-1] += f"[{item}]"
            node = node[item] if item < len(node) else None
        elif isinstance(node, Mapping) and item in node:
            parts.append(str(item))
            node = node[item]
        elif isinstance(node, Mapping) and isinstance(item, str) and item.startswith(("function-", "literal")):
            continue
        elif isinstance(node, Mapping) and isinstance(item, str) and _looks_like_tag(node, item):
            continue  # discriminated-union tag, not a key
        elif found and not isinstance(node, (Mapping, list)):
            continue  # a scalar checked against a union: the rest names union members (int, str)
        else:
            parts.append(str(item))
            found, node = False, None
    return ".".join(parts), node, found


def _looks_like_tag(node: Mapping, item: str) -> bool:
    return item in (node.get("type"), node.get("tier"))


def _allowed_keys(loc: tuple, data: Any) -> list[str]:
    """The keys the model at ``loc`` (a mapping) accepts, as spelled in the stack file."""
    model: Any = StackSettings
    node = data
    for item in loc:
        model = _unwrap(model, node)
        if isinstance(item, int):
            model = get_args(model)[0] if get_args(model) else model
            node = node[item] if isinstance(node, list) and item < len(node) else None
            continue
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = _field_by_alias(model, item)
            if field is None:
                continue  # union tag or the bad key itself
            model = field.annotation
            node = node.get(item) if isinstance(node, Mapping) else None
    model = _unwrap(model, node)
    if isinstance(model, type) and issubclass(model, BaseModel):
        keys = [f.alias or n for n, f in model.model_fields.items()]
        return sorted(keys, key=lambda k: k not in ("type", "tier"))  # the tag first
    return []


def _field_by_alias(model: type[BaseModel], key: str):
    for name, field in model.model_fields.items():
        if (field.alias or name) == key:
            return field
    return None


def _unwrap(annotation: Any, node: Any) -> Any:
    """Resolve Annotated/Optional/discriminated unions down to the model used for ``node``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin is Union:
            options = [a for a in get_args(annotation) if a is not type(None)]
            chosen = options[0]
            for option in options:
                tag = _tag_of(option)
                if tag and isinstance(node, Mapping) and node.get(tag[0]) in tag[1]:
                    chosen = option
            annotation = chosen
        else:
            return annotation


def _tag_of(model: Any) -> Optional[tuple[str, tuple]]:
    if isinstance(model, type) and issubclass(model, BaseModel):
        for key in ("type", "tier"):
            field = model.model_fields.get(key)
            if field is not None and get_origin(field.annotation) is Literal:
                return key, get_args(field.annotation)
    return None


def _show(value: Any) -> str:
    # Floats parsed from a whole number in the stack file read back as that number (2, not 2.0).
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value)


def _describe(error: Mapping[str, Any], data: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    kind = error["type"]
    path, value, found = _path(loc, data)
    key = f"{NAMESPACE}:{path}"
    ctx = error.get("ctx") or {}
    shown = repr(value) if found else "(missing)"

    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1], data)
        return f"{key}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{key}: required key is missing"
    if kind == "literal_error":
        expected = ctx.get("expected", "").replace("'", "").replace(" or ", ", ")
        return f"{key}: {shown} is not one of {expected}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"{key}: {shown} is not a whole number"
    if kind in ("float_type", "float_parsing", "decimal_type"):
        return f"{key}: {shown} is not a number"
    if kind in ("bool_type", "bool_parsing"):
        return f"{key}: {shown} is not true or false"
    if kind == "string_type":
        return f"{key}: {shown} is not a string"
    if kind in ("list_type",):
        return f"{key}: {shown} is not a list"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return f"{key}: {shown} is not an object of keys and values"
    if kind == "too_short":
        return f"{key}: {shown} needs at least {ctx.get('min_length')} item(s)"
    if kind == "greater_than_equal":
        return f"{key}: {shown} is below the minimum {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"{key}: {shown} is above the maximum {ctx.get('le')}"
    if kind == "greater_than":
        return f"{key}: {shown} must be greater than {ctx.get('gt')}"
    if kind == "less_than":
        return f"{key}: {shown} must be less than {ctx.get('lt')}"
    if kind == "value_error":
        cause = ctx.get("error")
        if isinstance(cause, _FieldError):
            sub = f"{key}.{cause.field}" if path else f"{NAMESPACE}:{cause.field}"
            return f"{sub}: {_show(cause.value)} {cause.message}"
        return f"{key}: {shown} {cause}"
    return f"{key}: {shown}: {error['msg']}"


# --- loading ----------------------------------------------------------------------------------

_TOP_KEYS = ("cluster", "database", "app", "migrations", "protect")


def parse_settings(raw: Mapping[str, Any]) -> StackSettings:
    """Validate plain values (as in a stack file, without the ``pgtiers:`` prefix)."""
    data = dict(raw)
    _check_tags(data)
    try:
        settings = StackSettings.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = _describe(errors[0], data)
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(first + more) from None
    return settings


def _check_tags(data: Mapping[str, Any]) -> None:
    """Check ``cluster.type`` and ``database.tier`` first: every other rule depends on them.

    Done by hand rather than left to pydantic's discriminated unions so the message lists
    every tier of the product, and says "not built yet" rather than "unknown" for the ones
    this version lacks.
    """
    cluster, database = data.get("cluster"), data.get("database")
    cluster_type = cluster.get("type") if isinstance(cluster, Mapping) else None
    tier = database.get("tier") if isinstance(database, Mapping) else None
    for key, value, allowed in (("cluster.type", cluster_type, CLUSTER_TYPES), ("database.tier", tier, TIERS)):
        section = data.get(key.split(".")[0])
        if not isinstance(section, Mapping):
            continue  # missing or not an object: pydantic says so
        if value is None:
            raise ConfigError(f"{NAMESPACE}:{key}: required key is missing; one of {', '.join(allowed)}")
        if value not in allowed:
            raise ConfigError(f"{NAMESPACE}:{key}: {value!r} is not one of {', '.join(allowed)}")
    if cluster_type in CLUSTER_TYPES and tier in TIERS and cluster_type not in TIER_CLUSTERS[tier]:
        raise ConfigError(
            f"{NAMESPACE}:database.tier: {tier!r} cannot run on a {cluster_type} cluster "
            f"({NAMESPACE}:cluster.type); it needs: {', '.join(TIER_CLUSTERS[tier])}"
        )
    for key, value, built in (("cluster.type", cluster_type, BUILT_CLUSTERS), ("database.tier", tier, BUILT_TIERS)):
        if value is not None and value not in built:
            raise ConfigError(
                f"{NAMESPACE}:{key}: {value!r} is not built yet in this version of pgtiers; "
                f"built so far: {', '.join(built)}"
            )


def load_settings(config: Optional[pulumi.Config] = None) -> StackSettings:
    """Read and validate the stack's ``pgtiers:*`` keys from Pulumi config."""
    config = config or pulumi.Config(NAMESPACE)
    raw: dict[str, Any] = {}
    for key in _TOP_KEYS:
        text = config.get(key)
        if text is None:
            continue
        try:
            raw[key] = json.loads(text)
        except json.JSONDecodeError:
            # A bare word in the stack file (e.g. `pgtiers:protect: yes-please`) arrives as text.
            raw[key] = text
    _reject_unknown_top_keys()
    return parse_settings(raw)


def _reject_unknown_top_keys() -> None:
    from pulumi.runtime.config import CONFIG  # the SDK's own map of every configured key

    for full_key in CONFIG.get():
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE and key not in _TOP_KEYS:
            raise ConfigError(
                f"{NAMESPACE}:{key}: unknown key; allowed keys: "
                + ", ".join(f"{NAMESPACE}:{k}" for k in _TOP_KEYS)
            )
