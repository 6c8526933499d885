"""EksCluster: an Amazon EKS cluster ready for stateful workloads, in a VPC of its own.

What a production cluster needs and ``pulumi_eks.Cluster`` does not do by default:

- access through EKS access entries only (``authentication_mode=API``), no ``aws-auth`` ConfigMap;
- no default self-managed node group: one managed node group in the private subnets;
- an IAM OIDC provider, so pods get AWS roles through IRSA;
- Kubernetes Secrets encrypted with a customer-managed KMS key, control-plane logs on;
- the EBS CSI driver addon (with its own IRSA role) and an encrypted gp3 StorageClass that
  can grow (``allowVolumeExpansion``) and binds where the pod lands (``WaitForFirstConsumer``).
"""

from __future__ import annotations

import json
from typing import Literal, Optional, Sequence, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_eks as eks
import pulumi_kubernetes as k8s

from ..irsa import irsa_assume_role_policy, service_account_subject
from .vpc import NatMode, Vpc

KUBERNETES_VERSION = "1.34"
CONTROL_PLANE_LOGS = ("api", "audit", "authenticator", "controllerManager", "scheduler")
EBS_CSI_SERVICE_ACCOUNT = service_account_subject("kube-system", "ebs-csi-controller-sa")
STORAGE_CLASS = "gp3"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly",
                 # Session Manager instead of SSH keys for the rare node debugging session.
                 "AmazonSSMManagedInstanceCore")


class EksClusterArgs(TypedDict, total=False):
    cluster_name: str
    """Name of the EKS cluster (physical name; changing it replaces the cluster)."""
    kubernetes_version: str
    """Kubernetes minor, e.g. ``"1.34"``."""
    vpc_cidr: str
    """IPv4 range of the new VPC (default ``10.0.0.0/16``)."""
    availability_zones: Sequence[str]
    """Zones for the subnets (2 or 3); default: the region's first three."""
    nat: NatMode
    """``per-az`` (default) or ``single`` NAT gateway."""
    instance_types: Sequence[str]
    """EC2 instance types of the managed node group (default ``["m7i.large"]``)."""
    min_nodes: int
    """Fewest nodes (default 2)."""
    desired_nodes: int
    """Nodes at creation (default 2); later changes by the autoscaler are not undone by Pulumi."""
    max_nodes: int
    """Most nodes (default 4)."""
    node_disk_gb: int
    """Root volume size per node in GiB (default 50)."""
    capacity_type: Literal["ON_DEMAND", "SPOT"]
    """``ON_DEMAND`` (default) or ``SPOT``."""
    public_access_cidrs: Sequence[str]
    """Networks allowed to reach the public API endpoint (default anywhere; IAM still gates it)."""
    admin_role_arns: Sequence[str]
    """IAM principals given cluster-admin through access entries (the creator always is)."""
    volume_reclaim_policy: Literal["Delete", "Retain"]
    """What happens to an EBS volume when its claim is deleted (default ``Delete``)."""
    protect: bool
    """Protect the secrets-encryption KMS key (losing it makes the cluster's Secrets unreadable)."""
    tags: dict[str, str]
    """Tags on every AWS resource."""


class EksCluster(pulumi.ComponentResource):
    """A VPC, an EKS cluster with a managed node group, IRSA, EBS CSI and a gp3 StorageClass.

    Example::

        cluster = EksCluster("prod", {"cluster_name": "pgtiers-prod", "nat": "per-az"})
        k8s.core.v1.Namespace("app", opts=pulumi.ResourceOptions(provider=cluster.provider))
    """

    cluster_name: pulumi.Output[str]
    provider: k8s.Provider
    """Kubernetes provider built from the cluster's kubeconfig (needs the ``aws`` CLI for tokens)."""
    kubeconfig: pulumi.Output[str]
    """Secret. The kubeconfig as JSON."""
    vpc: Vpc
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    cluster_security_group_id: pulumi.Output[str]
    """The security group EKS creates and attaches to managed-node-group nodes, hence to their pods:
    the one a database must allow."""
    oidc_provider_arn: pulumi.Output[str]
    oidc_issuer: pulumi.Output[str]
    """OIDC issuer without ``https://`` (the prefix of IRSA trust-policy condition keys)."""
    storage_class: pulumi.Output[str]

    def __init__(self, name: str, args: EksClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        cluster_name = args.get("cluster_name", name)
        min_nodes, desired, max_nodes = args.get("min_nodes", 2), args.get("desired_nodes", 2), args.get("max_nodes", 4)
        if not 1 <= min_nodes <= desired <= max_nodes:
            raise ValueError(f"EksCluster node counts: min {min_nodes}, desired {desired}, max {max_nodes} must "
                             "satisfy 1 <= min <= desired <= max")
        super().__init__("pgtiers:index:EksCluster", name, None, opts)
        instance_types = list(args.get("instance_types") or ["m7i.large"])
        tags = {"pgtiers:cluster": cluster_name, **(args.get("tags") or {})}
        child = pulumi.ResourceOptions(parent=self)
        partition = aws.get_partition_output().partition

        self.vpc = Vpc(f"{name}-net", {"cidr": args.get("vpc_cidr", "10.0.0.0/16"),
                                       "availability_zones": list(args.get("availability_zones") or []),
                                       "nat": args.get("nat", "per-az"), "cluster_name": cluster_name, "tags": tags},
                       child)

        secrets_key = aws.kms.Key(
            f"{name}-secrets", description=f"Envelope encryption of Kubernetes Secrets in EKS {cluster_name}",
            enable_key_rotation=True, deletion_window_in_days=30, tags=tags,
            opts=pulumi.ResourceOptions(parent=self, protect=bool(args.get("protect", False))))

        access_entries = {
            f"admin-{i}": {"principal_arn": arn, "access_policies": {"admin": {
                "policy_arn": pulumi.Output.concat("arn:", partition, ":eks::aws:cluster-access-policy/",
                                                   "AmazonEKSClusterAdminPolicy"),
                "access_scope": {"type": "cluster"}}}}
            for i, arn in enumerate(args.get("admin_role_arns") or [])
        }
        cluster = eks.Cluster(
            f"{name}-eks",
            name=cluster_name,
            version=args.get("kubernetes_version", KUBERNETES_VERSION),
            vpc_id=self.vpc.vpc_id,
            public_subnet_ids=self.vpc.public_subnet_ids,
            private_subnet_ids=self.vpc.private_subnet_ids,
            node_associate_public_ip_address=False,
            authentication_mode=eks.AuthenticationMode.API,
            access_entries=access_entries or None,
            skip_default_node_group=True,
            # Managed node groups use the security group EKS itself creates; pulumi-eks' extra
            # cluster/node groups would only serve self-managed nodes, which this cluster has none of.
            skip_default_security_groups=True,
            create_oidc_provider=True,
            encryption_config_key_arn=secrets_key.arn,
            enabled_cluster_log_types=list(CONTROL_PLANE_LOGS),
            endpoint_private_access=True,
            endpoint_public_access=True,
            public_access_cidrs=list(args.get("public_access_cidrs") or ["0.0.0.0/0"]),
            tags=tags,
            opts=child,
        )

        node_role = aws.iam.Role(
            f"{name}-node",
            assume_role_policy=json.dumps({"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
            tags=tags, opts=child)
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}", role=node_role.name,
                policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/", policy), opts=child)
            for policy in NODE_POLICIES
        ]
        node_group = eks.ManagedNodeGroup(
            f"{name}-nodes",
            cluster=cluster,
            node_role=node_role,
            subnet_ids=self.vpc.private_subnet_ids,
            instance_types=instance_types,
            capacity_type=args.get("capacity_type", "ON_DEMAND"),
            # AL2 images stop at Kubernetes 1.32; AL2023 is the supported EKS-optimized Linux.
            operating_system=eks.OperatingSystem.AL2023,
            disk_size=args.get("node_disk_gb", 50),
            scaling_config={"min_size": min_nodes, "desired_size": desired, "max_size": max_nodes},
            # A cluster autoscaler owns desired_size after creation; don't fight it on every `up`.
            ignore_scaling_changes=True,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )

        ebs_role = aws.iam.Role(
            f"{name}-ebs-csi",
            assume_role_policy=irsa_assume_role_policy(cluster.oidc_provider_arn, cluster.oidc_issuer,
                                                       [EBS_CSI_SERVICE_ACCOUNT]),
            tags=tags, opts=child)
        ebs_policy = aws.iam.RolePolicyAttachment(
            f"{name}-ebs-csi", role=ebs_role.name,
            policy_arn=pulumi.Output.concat("arn:", partition, ":iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"),
            opts=child)
        ebs_addon = aws.eks.Addon(
            f"{name}-ebs-csi",
            cluster_name=cluster.eks_cluster.name,
            addon_name="aws-ebs-csi-driver",
            service_account_role_arn=ebs_role.arn,
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            tags=tags,
            # The addon's controller pods need nodes; without them the addon stays DEGRADED and
            # the create times out.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[node_group, ebs_policy]),
        )

        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig_json)
        self.provider = k8s.Provider(
            f"{name}-k8s", kubeconfig=self.kubeconfig,
            # Server-side apply: operator CRDs (CNPG, ESO) are too large for client-side apply.
            enable_server_side_apply=True, opts=child)

        gp3 = k8s.storage.v1.StorageClass(
            f"{name}-gp3",
            metadata={"name": STORAGE_CLASS, "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            provisioner="ebs.csi.aws.com",
            parameters={"type": "gp3", "encrypted": "true", "csi.storage.k8s.io/fstype": "ext4"},
            allow_volume_expansion=True,
            volume_binding_mode="WaitForFirstConsumer",
            reclaim_policy=args.get("volume_reclaim_policy", "Delete"),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[ebs_addon]),
        )

        self.cluster_name = cluster.eks_cluster.name
        self.vpc_id = self.vpc.vpc_id
        self.private_subnet_ids = self.vpc.private_subnet_ids
        self.public_subnet_ids = self.vpc.public_subnet_ids
        self.cluster_security_group_id = cluster.eks_cluster.vpc_config.cluster_security_group_id
        self.oidc_provider_arn = cluster.oidc_provider_arn
        self.oidc_issuer = cluster.oidc_issuer
        self.storage_class = gp3.metadata.name
        self.register_outputs({
            "cluster_name": self.cluster_name, "vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
            "public_subnet_ids": self.public_subnet_ids, "cluster_security_group_id": self.cluster_security_group_id,
            "oidc_provider_arn": self.oidc_provider_arn, "oidc_issuer": self.oidc_issuer,
            "storage_class": self.storage_class,
        })
