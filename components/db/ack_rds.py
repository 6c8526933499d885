"""AckRdsInstance: an RDS PostgreSQL instance declared as a Kubernetes object (AWS ACK), for GitOps teams.

The instance lives in the cluster as a ``DBInstance`` the ACK RDS controller reconciles, so a
GitOps tool can own it like any manifest. The traps this closes (DESIGN.md §5):

- ACK deletes without a final snapshot unless told otherwise (``skip-final-snapshot`` defaults to
  true): every DBInstance carries ``rds.services.k8s.aws/skip-final-snapshot: "false"`` and a final
  snapshot identifier, and keeps its automated backups on delete.
- The controller reads ``masterUserPassword`` only from ``Opaque`` Secrets (any other type is
  "SecretTypeNotSupported" in the ACK runtime), so the password Secret has the basic-auth keys
  ``username``/``password`` but type Opaque; RDS refuses '/', '"', '@' and spaces in it.
- ``FieldExport`` (``to.kind`` lowercase) copies ``.status.endpoint.address`` into a ConfigMap or
  Secret that is created first; both stay in the DBInstance's namespace because ACK is turning
  cross-namespace exports off by default (``--enable-cross-namespace``).
- The controller gets AWS access through IRSA for ``system:serviceaccount:ack-system:ack-rds-controller``.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Optional, Sequence, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..config import RDS_POSTGRES_MAJORS
from ..connection import DatabaseConnection
from ..custom_object import CustomObject
from ..irsa import ROLE_ARN_ANNOTATION, irsa_role
from ..namespaces import namespace_for

PORT = 5432
CONTROLLER_NAMESPACE = "ack-system"
CONTROLLER_SERVICE_ACCOUNT = "ack-rds-controller"
#: (chart, version): the OCI chart pins the controller image with it.
CONTROLLER_CHART = ("oci://public.ecr.aws/aws-controllers-k8s/rds-chart", "1.11.1")
#: ACK's recommended controller policy (config/iam/recommended-policy-arn in rds-controller).
CONTROLLER_POLICY = "policy/AmazonRDSFullAccess"

RDS_API = "rds.services.k8s.aws/v1alpha1"
SKIP_FINAL_SNAPSHOT = "rds.services.k8s.aws/skip-final-snapshot"
FINAL_SNAPSHOT_ID = "rds.services.k8s.aws/final-db-snapshot-identifier"
DELETE_AUTOMATED_BACKUPS = "rds.services.k8s.aws/delete-automated-backups"
#: ACK runtime: ``retain`` leaves the AWS resource in place when its Kubernetes object is deleted.
DELETION_POLICY = "services.k8s.aws/deletion-policy"
WAIT_AVAILABLE = "jsonpath={.status.dbInstanceStatus}=available"

_RDS_IDENTIFIER = re.compile(r"^[a-z](?!.*--)[a-z0-9-]{0,61}[a-z0-9]$")
# Printable ASCII minus what RDS refuses in a master password ('/', '"', '@', space).
_PASSWORD_SPECIALS = "!#$%&*()-_=+[]{}<>:?"


class AckRdsInstanceArgs(TypedDict, total=False):
    vpc_id: pulumi.Input[str]
    """VPC of the EKS cluster. Required."""
    private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    """Private subnets (two or more zones) for the DB subnet group. Required."""
    cluster_security_group_id: pulumi.Input[str]
    """Security group the app pods carry (on EKS managed node groups: the EKS *cluster* security
    group); the only source allowed to reach 5432. Required."""
    oidc_provider_arn: pulumi.Input[str]
    """EKS IAM OIDC provider ARN, for the controller's IRSA role. Required with ``install_controller``."""
    oidc_issuer: pulumi.Input[str]
    """EKS OIDC issuer without ``https://``. Required with ``install_controller``."""
    region: pulumi.Input[str]
    """AWS region the controller manages RDS in. Required with ``install_controller``."""
    install_controller: bool
    """Install the ACK RDS controller chart with its IRSA role (default true)."""
    namespace: str
    """Namespace of the DBInstance, its password Secret and the endpoint export (default ``pgtiers-db``)."""
    create_namespace: bool
    """Create that namespace (default true)."""
    identifier: str
    """RDS DB instance identifier (default: the component name)."""
    version: int
    """PostgreSQL major (14-18); only the major is pinned so AWS minor upgrades are not drift."""
    database: str
    """Database the app owns (default ``app``)."""
    username: str
    """Master user, also the app's login (default ``app``)."""
    instance_class: str
    """Instance class (default ``db.t4g.medium``)."""
    storage_gb: int
    """Allocated gp3 storage in GiB (default 20)."""
    max_storage_gb: int
    """Storage autoscaling ceiling in GiB (default 100); must exceed ``storage_gb``."""
    multi_az: bool
    """Synchronous standby in a second zone (default true)."""
    backup_retention_days: int
    """Automated backups in days (default 7; at least 7 when ``protect``)."""
    endpoint_export: Literal["configmap", "secret"]
    """Where the FieldExport keeps the live endpoint address (default ``configmap``)."""
    protect: bool
    """Production: RDS deletion protection, ``protect`` on the DBInstance and its password, and the ACK
    ``retain`` deletion policy so deleting the Kubernetes object leaves the database."""


class AckRdsInstance(pulumi.ComponentResource):
    """An RDS PostgreSQL instance through ACK that yields a ``DatabaseConnection``.

    Example::

        db = AckRdsInstance("orders", {"vpc_id": vpc_id, "private_subnet_ids": subnets,
                                       "cluster_security_group_id": eks_sg, "oidc_provider_arn": oidc_arn,
                                       "oidc_issuer": issuer, "region": "eu-west-1"},
                            pulumi.ResourceOptions(providers={"kubernetes": k8s_provider, "aws": aws_provider}))
    """

    connection: pulumi.Output[DatabaseConnection]
    """Secret: the RDS endpoint, sslmode=require."""
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    namespace: pulumi.Output[str]
    identifier: pulumi.Output[str]
    endpoint_export: pulumi.Output[str]
    """``<kind>/<namespace>/<name>`` of the object the FieldExport keeps the endpoint in."""
    security_group_id: pulumi.Output[str]
    controller_role_arn: pulumi.Output[Optional[str]]
    password: pulumi.Output[str]
    """Secret."""

    def __init__(self, name: str, args: AckRdsInstanceArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("pgtiers:index:AckRdsInstance", name, None, opts)
        version = args.get("version", 18)
        if version not in RDS_POSTGRES_MAJORS:
            raise ValueError(f"AckRdsInstance.version: {version!r} is not one of "
                             f"{', '.join(map(str, RDS_POSTGRES_MAJORS))}")
        identifier = args.get("identifier", name)
        if not _RDS_IDENTIFIER.match(identifier):
            raise ValueError(f"AckRdsInstance.identifier: {identifier!r} is not an RDS identifier (lowercase letters, "
                             "digits and single '-', starting with a letter, at most 63 characters)")
        storage_gb, max_storage_gb = args.get("storage_gb", 20), args.get("max_storage_gb", 100)
        if max_storage_gb <= storage_gb:
            raise ValueError(f"AckRdsInstance.max_storage_gb: {max_storage_gb!r} must exceed storage_gb ({storage_gb})")
        protect = bool(args.get("protect", False))
        retention = args.get("backup_retention_days", 7)
        if protect and retention < 7:
            raise ValueError(f"AckRdsInstance.backup_retention_days: {retention!r} is below 7, the minimum when protect is on")
        export_kind = args.get("endpoint_export", "configmap")
        if export_kind not in ("configmap", "secret"):
            raise ValueError(f"AckRdsInstance.endpoint_export: {export_kind!r} is not one of configmap, secret")
        install = args.get("install_controller", True)
        required = ["vpc_id", "private_subnet_ids", "cluster_security_group_id"]
        required += ["oidc_provider_arn", "oidc_issuer", "region"] if install else []
        missing = [key for key in required if args.get(key) is None]
        if missing:
            raise ValueError(f"AckRdsInstance: missing {', '.join(missing)}")

        namespace_name = args.get("namespace", "pgtiers-db")
        database, username = args.get("database", "app"), args.get("username", "app")
        child = pulumi.ResourceOptions(parent=self)
        data_opts = pulumi.ResourceOptions(parent=self, protect=protect)

        controller: list[pulumi.Resource] = []
        role_arn: pulumi.Output[Optional[str]] = pulumi.Output.from_input(None)
        if install:
            role = irsa_role(f"{name}-ack-rds-role", oidc_provider_arn=args["oidc_provider_arn"],
                             oidc_issuer=args["oidc_issuer"], namespace=CONTROLLER_NAMESPACE,
                             service_account=CONTROLLER_SERVICE_ACCOUNT,
                             description="ACK RDS controller (IRSA)", opts=child)
            # The managed policy's partition follows the role's (aws, aws-cn, aws-us-gov).
            attachment = aws.iam.RolePolicyAttachment(
                f"{name}-ack-rds-policy", role=role.name,
                policy_arn=role.arn.apply(lambda arn: f"arn:{arn.split(':')[1]}:iam::aws:{CONTROLLER_POLICY}"),
                opts=child)
            chart, chart_version = CONTROLLER_CHART
            release = k8s.helm.v3.Release(
                f"{name}-ack-rds-controller",
                name="ack-rds-controller", chart=chart, version=chart_version,
                namespace=CONTROLLER_NAMESPACE, create_namespace=True,
                values=controller_values(args["region"], role.arn),
                # The controller must hold its AWS permissions before it reconciles anything.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[attachment]))
            controller = [release]
            role_arn = role.arn
        crd_opts = pulumi.ResourceOptions(parent=self, depends_on=controller)

        namespace = namespace_for(name, namespace_name, args.get("create_namespace", True), data_opts)

        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg", vpc_id=args["vpc_id"], description=f"PostgreSQL {identifier} (ACK RDS), from EKS pods only",
            tags={"Name": f"{identifier}-postgres"}, opts=child)
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-sg-from-eks", security_group_id=security_group.id,
            referenced_security_group_id=args["cluster_security_group_id"],
            ip_protocol="tcp", from_port=PORT, to_port=PORT, description="PostgreSQL from the EKS cluster",
            opts=child)

        subnet_group = CustomObject(
            f"{name}-subnet-group", RDS_API, "DBSubnetGroup",
            metadata={"name": f"{identifier}-subnets", "namespace": namespace},
            spec={"name": f"{identifier}-subnets", "description": f"Private subnets for {identifier}",
                  "subnetIDs": args["private_subnet_ids"]},
            opts=crd_opts)

        password = random.RandomPassword(f"{name}-master-password", length=32, special=True,
                                         override_special=_PASSWORD_SPECIALS, opts=data_opts)
        master = k8s.core.v1.Secret(
            f"{name}-master-credentials",
            metadata={"name": f"{identifier}-master-credentials", "namespace": namespace,
                      "labels": {"app.kubernetes.io/part-of": "pgtiers"}},
            type="Opaque",
            string_data={"username": username, "password": password.result},
            opts=data_opts)

        # RDS refuses a second snapshot of the same name: re-creating the instance and deleting it
        # again would leave the DBInstance stuck on its finalizer. A stable random suffix per
        # instance (kept in state) makes every final snapshot's name its own.
        snapshot_suffix = random.RandomId(f"{name}-final-snapshot-suffix", byte_length=4, opts=data_opts)
        annotations = {
            "pulumi.com/waitFor": WAIT_AVAILABLE,
            SKIP_FINAL_SNAPSHOT: "false",
            FINAL_SNAPSHOT_ID: snapshot_suffix.hex.apply(lambda suffix: f"{identifier}-final-{suffix}"),
            DELETE_AUTOMATED_BACKUPS: "false",
        }
        if protect:
            annotations[DELETION_POLICY] = "retain"
        instance = CustomObject(
            f"{name}-instance", RDS_API, "DBInstance",
            metadata={"name": identifier, "namespace": namespace, "annotations": annotations,
                      "labels": {"app.kubernetes.io/part-of": "pgtiers"}},
            spec={
                "dbInstanceIdentifier": identifier,
                "engine": "postgres",
                "engineVersion": str(version),
                "autoMinorVersionUpgrade": True,
                "dbInstanceClass": args.get("instance_class", "db.t4g.medium"),
                "dbName": database,
                "masterUsername": username,
                "masterUserPassword": {"namespace": namespace, "name": master.metadata.name, "key": "password"},
                "allocatedStorage": storage_gb,
                "maxAllocatedStorage": max_storage_gb,
                "storageType": "gp3",
                "storageEncrypted": True,
                "multiAZ": bool(args.get("multi_az", True)),
                "publiclyAccessible": False,
                "deletionProtection": protect,
                "backupRetentionPeriod": retention,
                "copyTagsToSnapshot": True,
                "dbSubnetGroupRef": {"from": {"name": subnet_group.object_name}},
                "vpcSecurityGroupIDs": [security_group.id],
                "enableCloudwatchLogsExports": ["postgresql", "upgrade"],
            },
            opts=pulumi.ResourceOptions(parent=self, protect=protect, depends_on=[*controller, subnet_group]))

        export_name = f"{identifier}-endpoint"
        if export_kind == "configmap":
            target = k8s.core.v1.ConfigMap(
                f"{name}-endpoint", metadata={"name": export_name, "namespace": namespace,
                                              "labels": {"app.kubernetes.io/part-of": "pgtiers"}},
                opts=pulumi.ResourceOptions(parent=self, ignore_changes=["data"]))
        else:
            target = k8s.core.v1.Secret(
                f"{name}-endpoint", metadata={"name": export_name, "namespace": namespace,
                                              "labels": {"app.kubernetes.io/part-of": "pgtiers"}},
                type="Opaque", opts=pulumi.ResourceOptions(parent=self, ignore_changes=["data", "stringData"]))
        # ACK writes into an existing object only: the target is a dependency, not a side effect.
        CustomObject(
            f"{name}-endpoint-export", "services.k8s.aws/v1alpha1", "FieldExport",
            metadata={"name": export_name, "namespace": namespace},
            spec={"from": {"path": ".status.endpoint.address",
                           # The known name, not the object's output: its metadata carries the
                           # snapshot suffix, unknown in a first preview.
                           "resource": {"group": "rds.services.k8s.aws", "kind": "DBInstance",
                                        "name": identifier}},
                  "to": {"kind": export_kind, "name": target.metadata.name, "namespace": namespace,
                         "key": "PGHOST"}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*controller, target, instance]))

        address = instance.status.apply(lambda s: ((s or {}).get("endpoint") or {}).get("address"))
        self.namespace = namespace
        self.identifier = pulumi.Output.from_input(identifier)
        self.host = address
        self.port = pulumi.Output.from_input(PORT)
        self.database = pulumi.Output.from_input(database)
        self.password = pulumi.Output.secret(password.result)
        self.security_group_id = security_group.id
        self.controller_role_arn = role_arn
        self.endpoint_export = pulumi.Output.all(target.metadata.namespace, target.metadata.name).apply(
            lambda a: f"{export_kind}/{a[0]}/{a[1]}")
        # RDS serves TLS with the Amazon RDS CA; verify-full needs that bundle in the app image.
        self.connection = pulumi.Output.secret(pulumi.Output.all(address, password.result).apply(
            lambda a: DatabaseConnection(host=a[0], port=PORT, database=database, username=username,
                                         password=a[1], sslmode="require")))
        self.register_outputs({"host": self.host, "port": self.port, "database": self.database,
                               "namespace": self.namespace, "identifier": self.identifier,
                               "endpoint_export": self.endpoint_export,
                               "security_group_id": self.security_group_id,
                               "controller_role_arn": self.controller_role_arn})


def controller_values(region: pulumi.Input[str], role_arn: pulumi.Input[str]) -> dict[str, Any]:
    return {
        "aws": {"region": region},
        "serviceAccount": {"create": True, "name": CONTROLLER_SERVICE_ACCOUNT,
                           "annotations": {ROLE_ARN_ANNOTATION: role_arn}},
    }


__all__ = ["AckRdsInstance", "AckRdsInstanceArgs", "controller_values", "CONTROLLER_CHART",
           "SKIP_FINAL_SNAPSHOT", "FINAL_SNAPSHOT_ID"]
