"""AuroraServerlessDb: Amazon Aurora PostgreSQL Serverless v2 in any VPC.

What terraform-aws-rds-aurora users trip over most, closed by construction:

- spurious replacements: ``availability_zones`` is never set and its changes are ignored;
  ``engine_version`` is the major only, so AWS minor upgrades never look like a downgrade;
- destroys that fail on the final snapshot: the snapshot name is unique per cluster and stable
  across runs (a ``RandomId``), and the KMS key that encrypts it outlives a ``pulumi destroy``;
- the wrong security group for EKS pods: ingress on 5432 is opened only to the security groups
  the caller names (with ``EksCluster``: its cluster security group, which its pods carry).

Every rule on the arguments is checked before anything is registered (``aurora_rules``). The
component needs only a VPC and subnets, never a Kubernetes cluster, so ``pulumi up`` creates
it in parallel with EKS.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from ..connection import DatabaseConnection
from .aurora_rules import DEFAULTS, AuroraArgumentError, check_all, check_identifier, parse_engine_version

PORT = 5432
INSTANCE_CLASS = "db.serverless"
#: Characters RDS refuses in a master password: '/', '@', '"', "'" and space.
PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"
IDENTIFIER_MAX = 60  # instance identifiers append "-<n>" and RDS allows 63


class AuroraServerlessDbArgs(TypedDict, total=False):
    vpc_id: pulumi.Input[str]
    """VPC of the cluster."""
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets in at least two availability zones (the DB subnet group)."""
    allowed_security_group_ids: Sequence[pulumi.Input[str]]
    """Security groups whose members may connect on 5432 (with EKS: the cluster security group)."""
    identifier: str
    """Cluster identifier (default: the resource name). Changing it replaces the cluster."""
    engine_version: str
    """Aurora PostgreSQL major, e.g. ``"16"``; ``"16.4"`` states the oldest minor the cluster runs
    (checked for auto-pause), but only the major is sent so AWS minor upgrades cause no diff."""
    database_name: str
    """Database created with the cluster (default ``app``)."""
    master_username: str
    """Master user (default ``app``): 1-16 lowercase letters or digits, not a reserved word."""
    manage_master_user_password: bool
    """True (default): RDS keeps the password in Secrets Manager and rotates it every 7 days;
    deliver it with ``DatabaseSecretSync``. False: a Pulumi-generated password kept in the state."""
    min_acu: float
    """Minimum capacity in ACUs, steps of 0.5 (0 pauses the cluster when idle; default 0.5)."""
    max_acu: float
    """Maximum capacity in ACUs, 1-256, steps of 0.5 (default 4)."""
    seconds_until_auto_pause: Optional[int]
    """Idle seconds before pausing (300-86400); only with ``min_acu`` 0 (default: AWS's 300)."""
    instances: int
    """Writer plus readers (default 1); readers spread over the subnets' zones."""
    backup_retention_days: int
    """Days of automated backups, 1-35 (default 7)."""
    preferred_backup_window: str
    """Daily UTC backup window ``hh24:mi-hh24:mi`` (default ``03:00-04:00``)."""
    preferred_maintenance_window: str
    """Weekly UTC maintenance window ``ddd:hh24:mi-ddd:hh24:mi`` (default ``sun:05:00-sun:06:00``)."""
    kms_key_arn: Optional[pulumi.Input[str]]
    """Customer-managed key for storage, the master secret and Performance Insights; None: create one."""
    deletion_protection: bool
    """AWS refuses to delete the cluster while set (default true)."""
    final_snapshot: bool
    """Take a final snapshot when the cluster is deleted (default true)."""
    performance_insights: bool
    """Performance Insights on every instance (default true; 7 days are free)."""
    performance_insights_retention_days: int
    """7 (default), a multiple of 31 up to 713, or 731."""
    monitoring_interval: int
    """Enhanced Monitoring interval in seconds: 0 (off, default), 1, 5, 10, 15, 30 or 60."""
    log_retention_days: int
    """Retention of the exported PostgreSQL log in CloudWatch (default 30)."""
    iam_database_authentication: bool
    """Allow IAM database authentication (default false)."""
    protect: bool
    """Protect the cluster, its instances, its KMS key and password from deletion by Pulumi."""
    tags: dict[str, str]
    """Tags on every AWS resource (copied to snapshots)."""


class AuroraServerlessDb(pulumi.ComponentResource):
    """An encrypted, TLS-only Aurora PostgreSQL Serverless v2 cluster that yields a ``DatabaseConnection``.

    Example::

        db = AuroraServerlessDb("orders", {
            "vpc_id": vpc.id, "subnet_ids": [a.id, b.id], "allowed_security_group_ids": [app_sg.id],
            "engine_version": "16", "min_acu": 0.5, "max_acu": 8, "instances": 2, "protect": True})
        pulumi.export("writer", db.writer_endpoint)
    """

    cluster_identifier: pulumi.Output[str]
    writer_endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    master_username: pulumi.Output[str]
    master_secret_arn: pulumi.Output[Optional[str]]
    """ARN of the RDS-managed secret (``{"username", "password"}``); None with a Pulumi password."""
    kms_key_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    connection: pulumi.Output[DatabaseConnection]
    """Secret. Writer endpoint; the password as of this ``pulumi up`` (it rotates: apps should
    read it through ``DatabaseSecretSync``, not from here)."""

    def __init__(self, name: str, args: AuroraServerlessDbArgs, opts: Optional[pulumi.ResourceOptions] = None):
        identifier = args.get("identifier", name)
        values = {key: args[key] for key in DEFAULTS if key in args}
        try:
            check_identifier("identifier", identifier)
            if len(identifier) > IDENTIFIER_MAX:
                raise AuroraArgumentError("identifier", identifier, f"is longer than {IDENTIFIER_MAX} characters "
                                          "(instance identifiers append '-<n>' and RDS allows 63)")
            check_all(values)
        except AuroraArgumentError as exc:
            raise AuroraArgumentError(f"AuroraServerlessDb.{exc.field}", exc.value, exc.message) from None
        if "vpc_id" not in args or "subnet_ids" not in args:
            raise AuroraArgumentError("AuroraServerlessDb.vpc_id", None, "and subnet_ids are required")
        allowed = args.get("allowed_security_group_ids", [])
        if not isinstance(allowed, (list, tuple)):
            raise AuroraArgumentError("AuroraServerlessDb.allowed_security_group_ids", allowed,
                                      "must be a list (of ids or outputs), one ingress rule per group")
        super().__init__("pgtiers:index:AuroraServerlessDb", name, None, opts)

        v = {**DEFAULTS, **values}
        major, _ = parse_engine_version(v["engine_version"])
        protect = bool(args.get("protect", False))
        final_snapshot = bool(args.get("final_snapshot", True))
        managed_password = bool(args.get("manage_master_user_password", True))
        tags = {"pgtiers:database": identifier, **(args.get("tags") or {})}
        child = pulumi.ResourceOptions(parent=self)
        data = pulumi.ResourceOptions(parent=self, protect=protect)

        if args.get("kms_key_arn"):
            key_arn: pulumi.Output[str] = pulumi.Output.from_input(args["kms_key_arn"])
        else:
            key = aws.kms.Key(
                f"{name}-key", description=f"Aurora cluster {identifier}: storage, master secret, Performance Insights",
                enable_key_rotation=True, deletion_window_in_days=30, tags=tags,
                # The final snapshot is encrypted with this key: deleting the key with the cluster
                # would leave a snapshot nobody can restore. It costs $1 a month to keep.
                opts=pulumi.ResourceOptions(parent=self, protect=protect, retain_on_delete=final_snapshot))
            aws.kms.Alias(f"{name}-key", name=f"alias/pgtiers/{identifier}", target_key_id=key.key_id, opts=child)
            key_arn = key.arn

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets", subnet_ids=args["subnet_ids"], description=f"Aurora cluster {identifier}",
            tags=tags, opts=child)
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args["vpc_id"], description=f"PostgreSQL clients of Aurora cluster {identifier}",
            # No egress: the database never opens connections.
            tags={**tags, "Name": f"{identifier}-db"}, opts=child)
        for i, group_id in enumerate(allowed):
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{i}", security_group_id=security_group.id, referenced_security_group_id=group_id,
                ip_protocol="tcp", from_port=PORT, to_port=PORT, description="PostgreSQL", tags=tags, opts=child)

        params = aws.rds.ClusterParameterGroup(
            f"{name}-params", family=f"aurora-postgresql{major}",
            description=f"Aurora cluster {identifier}: TLS only",
            # pending-reboot is accepted for static and dynamic parameters alike; a new cluster
            # starts with it applied.
            parameters=[{"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"}],
            tags=tags, opts=child)
        # Created first so it gets our retention; RDS would otherwise create it with none.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-log", name=f"/aws/rds/cluster/{identifier}/postgresql",
            retention_in_days=v["log_retention_days"], tags=tags, opts=child)

        scaling = {"min_capacity": float(v["min_acu"]), "max_capacity": float(v["max_acu"])}
        if v["min_acu"] == 0 and args.get("seconds_until_auto_pause") is not None:
            scaling["seconds_until_auto_pause"] = args["seconds_until_auto_pause"]

        password: Optional[random.RandomPassword] = None
        if not managed_password:
            password = random.RandomPassword(f"{name}-password", length=32, special=True,
                                             override_special=PASSWORD_SPECIALS, opts=data)
        snapshot_id: Optional[pulumi.Output[str]] = None
        if final_snapshot:
            # Unique per cluster and stable across runs; a new suffix only when something that
            # replaces the cluster changes, so a replaced cluster never collides with the
            # previous one's final snapshot.
            suffix = random.RandomId(
                f"{name}-final-snapshot", byte_length=4,
                keepers={"identifier": identifier, "database": v["database_name"], "user": v["master_username"],
                         "kms": key_arn},
                opts=child)
            snapshot_id = suffix.hex.apply(lambda h: f"{identifier}-final-{h}")

        cluster = aws.rds.Cluster(
            f"{name}-cluster",
            cluster_identifier=identifier,
            engine="aurora-postgresql",
            engine_mode="provisioned",
            engine_version=str(major),
            database_name=v["database_name"],
            master_username=v["master_username"],
            manage_master_user_password=True if managed_password else None,
            master_user_secret_kms_key_id=key_arn if managed_password else None,
            master_password=password.result if password is not None else None,
            storage_encrypted=True,
            kms_key_id=key_arn,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            db_cluster_parameter_group_name=params.name,
            serverlessv2_scaling_configuration=scaling,
            port=PORT,
            backup_retention_period=v["backup_retention_days"],
            preferred_backup_window=v["preferred_backup_window"],
            preferred_maintenance_window=v["preferred_maintenance_window"],
            copy_tags_to_snapshot=True,
            deletion_protection=bool(args.get("deletion_protection", True)),
            skip_final_snapshot=not final_snapshot,
            final_snapshot_identifier=snapshot_id,
            # Automated backups outlive a deleted cluster until their retention ends.
            delete_automated_backups=False,
            enabled_cloudwatch_logs_exports=["postgresql"],
            iam_database_authentication_enabled=bool(args.get("iam_database_authentication", False)),
            tags=tags,
            opts=pulumi.ResourceOptions(
                parent=self, protect=protect, depends_on=[log_group],
                # RDS fills in three zones of its choosing; declaring them (or diffing them) would
                # replace the cluster.
                ignore_changes=["availability_zones"]),
        )

        monitoring_role_arn = None
        if v["monitoring_interval"]:
            role = aws.iam.Role(
                f"{name}-monitoring",
                assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]}),
                tags=tags, opts=child)
            partition = aws.get_partition_output().partition
            attachment = aws.iam.RolePolicyAttachment(
                f"{name}-monitoring", role=role.name,
                policy_arn=pulumi.Output.concat("arn:", partition,
                                                ":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"),
                opts=child)
            monitoring_role_arn = pulumi.Output.all(role.arn, attachment.id).apply(lambda a: a[0])

        subnets = pulumi.Output.from_input(args["subnet_ids"])
        instance_ids = []
        for i in range(v["instances"]):
            # Instance i goes to the zone of subnet i, so the writer and its first reader never
            # share a zone.
            zone = aws.ec2.get_subnet_output(id=subnets.apply(lambda ids, i=i: ids[i % len(ids)])).availability_zone
            instance = aws.rds.ClusterInstance(
                f"{name}-{i + 1}",
                identifier=f"{identifier}-{i + 1}",
                cluster_identifier=cluster.cluster_identifier,
                instance_class=INSTANCE_CLASS,
                engine=cluster.engine,
                engine_version=cluster.engine_version,
                db_subnet_group_name=subnet_group.name,
                availability_zone=zone,
                publicly_accessible=False,
                # Readers in tiers 0-1 scale with the writer, so a failover lands on a warm reader.
                promotion_tier=min(i, 1),
                auto_minor_version_upgrade=True,
                performance_insights_enabled=bool(args.get("performance_insights", True)),
                performance_insights_kms_key_id=key_arn if args.get("performance_insights", True) else None,
                performance_insights_retention_period=(v["performance_insights_retention_days"]
                                                       if args.get("performance_insights", True) else None),
                monitoring_interval=v["monitoring_interval"],
                monitoring_role_arn=monitoring_role_arn,
                copy_tags_to_snapshot=True,
                tags=tags,
                opts=data,
            )
            instance_ids.append(instance.identifier)

        database, username = v["database_name"], v["master_username"]
        self.cluster_identifier = cluster.cluster_identifier
        self.writer_endpoint = cluster.endpoint
        self.reader_endpoint = cluster.reader_endpoint
        self.port = pulumi.Output.from_input(PORT)
        self.database_name = pulumi.Output.from_input(database)
        self.master_username = pulumi.Output.from_input(username)
        self.kms_key_arn = key_arn
        self.security_group_id = security_group.id
        self.instance_identifiers = pulumi.Output.all(*instance_ids)
        if managed_password:
            self.master_secret_arn = cluster.master_user_secrets.apply(
                lambda secrets: secrets[0].secret_arn if secrets else None)
            current = aws.secretsmanager.get_secret_version_output(secret_id=self.master_secret_arn)
            secret_password = current.secret_string.apply(lambda s: json.loads(s)["password"])
        else:
            self.master_secret_arn = pulumi.Output.from_input(None)
            secret_password = password.result  # type: ignore[union-attr]
        # RDS serves TLS (and rds.force_ssl demands it); verify-full would also need the RDS CA
        # bundle in every pod, so the contract asks for encryption.
        self.connection = pulumi.Output.secret(
            pulumi.Output.all(cluster.endpoint, secret_password).apply(
                lambda a: DatabaseConnection(host=a[0], port=PORT, database=database, username=username,
                                             password=a[1], sslmode="require")))
        self.register_outputs({
            "cluster_identifier": self.cluster_identifier, "writer_endpoint": self.writer_endpoint,
            "reader_endpoint": self.reader_endpoint, "port": self.port, "database_name": self.database_name,
            "master_secret_arn": self.master_secret_arn, "kms_key_arn": self.kms_key_arn,
            "security_group_id": self.security_group_id, "instance_identifiers": self.instance_identifiers,
        })
