"""Fake AWS and EKS provider answers for the offline plan and the tests.

Shapes follow pulumi-aws 7 / pulumi-eks 4 outputs (camelCase, as on the wire). Values are
obviously fake (account 123456789012) but well-formed, so code that parses an ARN or a host name
behaves as it would against AWS. Registered on import by ``components.fakes``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import pulumi
import yaml
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs

from .fakes import CALL_FAKES, FAKE_PASSWORD, _suffix, fake, fake_kubeconfig

ACCOUNT = "123456789012"
RESOURCE_SIG_KEY = "4dabf18193072939515e22adb298388d"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"


def _region() -> str:
    return pulumi.Config("aws").get("region") or "us-east-1"


def _arn(service: str, resource: str, region: Optional[str] = None) -> str:
    return f"arn:aws:{service}:{_region() if region is None else region}:{ACCOUNT}:{resource}"


def _monitor() -> Optional[MockMonitor]:
    from pulumi.runtime.settings import get_monitor

    monitor = get_monitor()
    return monitor if isinstance(monitor, MockMonitor) else None


def _registered(type_token: str) -> list[MockMonitor.ResourceRegistration]:
    """What the mock monitor has registered of one type (the engine's view of existing resources)."""
    monitor = _monitor()
    if monitor is None:
        return []
    return [r for r in monitor.resources.values() if r.urn.split("::")[2].split("$")[-1] == type_token]


def _resource_reference(parent_type: str, type_token: str, name: str, state: dict[str, Any]) -> dict[str, Any]:
    """A resource reference, as a remote component returns for a child (e.g. ``eks.Cluster.eksCluster``).

    The SDK turns the reference back into a resource by asking the engine for its state
    (``pulumi:pulumi:getResource``), so the state is stored where the mock monitor answers that.
    """
    urn = f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{parent_type}${type_token}::{name}"
    ident = state.get("id") or f"{name}-id"
    monitor = _monitor()
    if monitor is not None:
        monitor.resources[urn] = MockMonitor.ResourceRegistration(urn, ident, state)
    return {RESOURCE_SIG_KEY: RESOURCE_SIG, "urn": urn, "id": ident}


# --- invokes ------------------------------------------------------------------------------------


def _availability_zones(args: MockCallArgs) -> dict:
    region = _region()
    return {"id": region, "names": [f"{region}{z}" for z in "abc"],
            "zoneIds": [f"use1-az{i}" for i in (1, 2, 4)], "groupNames": [region] * 3}


def _partition(args: MockCallArgs) -> dict:
    return {"id": "aws", "partition": "aws", "dnsSuffix": "amazonaws.com", "reverseDnsPrefix": "com.amazonaws"}


def _subnet(args: MockCallArgs) -> dict:
    for reg in _registered("aws:ec2/subnet:Subnet"):
        if reg.id == args.args.get("id"):
            return {"id": reg.id, "availabilityZone": reg.state.get("availabilityZone"),
                    "vpcId": reg.state.get("vpcId"), "cidrBlock": reg.state.get("cidrBlock")}
    return {"id": args.args.get("id")}


def _secret_version(args: MockCallArgs) -> dict:
    # The only secrets pgtiers reads are RDS-managed master-user secrets: answer with that shape.
    secret_id = args.args.get("secretId")
    username = "postgres"
    for reg in _registered("aws:rds/cluster:Cluster"):
        if any(s.get("secretArn") == secret_id for s in reg.state.get("masterUserSecrets") or []):
            username = reg.state.get("masterUsername") or username
    return {"id": f"{secret_id}|AWSCURRENT", "arn": secret_id, "secretId": secret_id, "versionId": "fake-version-1",
            "versionStages": ["AWSCURRENT"],
            "secretString": json.dumps({"username": username, "password": FAKE_PASSWORD})}


CALL_FAKES["aws:index/getAvailabilityZones:getAvailabilityZones"] = _availability_zones
CALL_FAKES["aws:index/getPartition:getPartition"] = _partition
CALL_FAKES["aws:ec2/getSubnet:getSubnet"] = _subnet
CALL_FAKES["aws:secretsmanager/getSecretVersion:getSecretVersion"] = _secret_version


# --- resources ----------------------------------------------------------------------------------


@fake("aws:rds/cluster:Cluster")
def _rds_cluster(args: MockResourceArgs) -> dict:
    ident = args.inputs.get("clusterIdentifier") or f"{args.name}-{_suffix(args.name)}"
    region = _region()
    out: dict[str, Any] = {
        "arn": _arn("rds", f"cluster:{ident}"),
        "clusterIdentifier": ident,
        "clusterResourceId": f"cluster-{_suffix(ident).upper()}FAKE",
        "endpoint": f"{ident}.cluster-cfake0example.{region}.rds.amazonaws.com",
        "readerEndpoint": f"{ident}.cluster-ro-cfake0example.{region}.rds.amazonaws.com",
        "port": args.inputs.get("port") or 5432,
        "engineVersionActual": f"{args.inputs.get('engineVersion', '16')}.6",
        "hostedZoneId": "Z2R2ITUGPM61AM",
        "availabilityZones": [f"{region}{z}" for z in "abc"],
    }
    if args.inputs.get("manageMasterUserPassword"):
        out["masterUserSecrets"] = [{
            "secretArn": _arn("secretsmanager", f"secret:rds!cluster-{_suffix(ident)}-AbCdEf"),
            "kmsKeyId": args.inputs.get("masterUserSecretKmsKeyId") or _arn("kms", "alias/aws/secretsmanager"),
            "secretStatus": "active",
        }]
    return out


@fake("aws:rds/clusterInstance:ClusterInstance")
def _rds_instance(args: MockResourceArgs) -> dict:
    ident = args.inputs.get("identifier") or f"{args.name}-{_suffix(args.name)}"
    return {"arn": _arn("rds", f"db:{ident}"), "identifier": ident, "port": 5432, "writer": False,
            "endpoint": f"{ident}.cfake0example.{_region()}.rds.amazonaws.com",
            "dbiResourceId": f"db-{_suffix(ident).upper()}FAKE"}


@fake("aws:kms/key:Key")
def _kms_key(args: MockResourceArgs) -> dict:
    key_id = f"{_suffix(args.name)}-0000-4000-8000-{_suffix(args.name + 'k')}0000"
    return {"arn": _arn("kms", f"key/{key_id}"), "keyId": key_id, "tagsAll": args.inputs.get("tags") or {}}


@fake("aws:iam/role:Role")
def _iam_role(args: MockResourceArgs) -> dict:
    name = args.inputs.get("name") or f"{args.name}-{_suffix(args.name)}"
    return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{name}", "name": name, "uniqueId": f"AROA{_suffix(name).upper()}",
            "tagsAll": args.inputs.get("tags") or {}}


@fake("aws:ec2/securityGroup:SecurityGroup")
def _security_group(args: MockResourceArgs) -> dict:
    name = args.inputs.get("name") or f"{args.name}-{_suffix(args.name)}"
    return {"arn": _arn("ec2", f"security-group/sg-{_suffix(args.name)}"), "name": name,
            "ownerId": ACCOUNT, "tagsAll": args.inputs.get("tags") or {}}


@fake("random:index/randomId:RandomId")
def _random_id(args: MockResourceArgs) -> dict:
    hex_ = _suffix(args.name)[: 2 * int(args.inputs.get("byteLength") or 4)]
    return {"hex": hex_, "dec": str(int(hex_, 16)), "b64Std": "ZmFrZQ==", "b64Url": "ZmFrZQ"}


@fake("eks:index:Cluster")
def _eks_cluster(args: MockResourceArgs) -> dict:
    name = args.inputs.get("name") or f"{args.name}-eksCluster-{_suffix(args.name)}"
    region = _region()
    oidc_id = _suffix(name).upper() * 4
    issuer = f"oidc.eks.{region}.amazonaws.com/id/{oidc_id}"
    endpoint = f"https://{oidc_id}.gr7.{region}.eks.amazonaws.com"
    cluster_sg = f"sg-0eks{_suffix(name)}"
    kubeconfig = yaml.safe_load(fake_kubeconfig(name, endpoint))
    eks_state = {
        "name": name, "arn": _arn("eks", f"cluster/{name}"), "endpoint": endpoint,
        "version": args.inputs.get("version") or "1.34",
        "vpcConfig": {"clusterSecurityGroupId": cluster_sg, "vpcId": args.inputs.get("vpcId"),
                      "subnetIds": list(args.inputs.get("privateSubnetIds") or [])
                      + list(args.inputs.get("publicSubnetIds") or [])},
        "identities": [{"oidcs": [{"issuer": f"https://{issuer}"}]}],
    }
    return {
        "kubeconfig": kubeconfig,
        "kubeconfigJson": json.dumps(kubeconfig),
        "eksCluster": _resource_reference("eks:index:Cluster", "aws:eks/cluster:Cluster", f"{args.name}-eksCluster",
                                          eks_state),
        "clusterSecurityGroupId": cluster_sg,
        "nodeSecurityGroupId": "",
        "oidcProviderArn": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer}",
        "oidcProviderUrl": f"https://{issuer}",
        "oidcIssuer": issuer,
    }
