"""EksCluster and its Vpc: what the engine would receive, in preview and up mode."""

from __future__ import annotations

import ipaddress
import json

import pulumi
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.cluster.eks import CONTROL_PLANE_LOGS, EBS_CSI_SERVICE_ACCOUNT, EksCluster
from components.cluster.vpc import Vpc, subnet_ranges
from components.plan import Secret, evaluate

REGION = {"aws:region": "eu-west-1"}


def _program(**args):
    def program():
        cluster = EksCluster("c", {"cluster_name": "pgtiers-test", **args})
        pulumi.export("clusterSecurityGroupId", cluster.cluster_security_group_id)
        pulumi.export("oidcIssuer", cluster.oidc_issuer)
        pulumi.export("kubeconfig", cluster.kubeconfig)
    return program


@pytest.fixture(scope="module", params=[False, True], ids=["up", "preview"])
def eks(request):
    return evaluate("t", preview=request.param, config=REGION, program=_program(protect=True))


def test_control_plane_uses_access_entries_oidc_kms_and_logs(eks):
    cluster = eks.one("eks:index:Cluster").inputs
    assert cluster["authenticationMode"] == "API"
    assert cluster["skipDefaultNodeGroup"] is True
    assert cluster["createOidcProvider"] is True
    assert cluster["enabledClusterLogTypes"] == list(CONTROL_PLANE_LOGS)
    key = eks.one("aws:kms/key:Key")
    assert key.inputs["enableKeyRotation"] is True and key.protect
    assert key.urn in eks.one("eks:index:Cluster").property_dependencies["encryptionConfigKeyArn"]
    assert cluster["nodeAssociatePublicIpAddress"] is False


def test_nodes_are_a_managed_group_in_the_private_subnets(eks):
    group = eks.one("eks:index:ManagedNodeGroup")
    private = {r.urn for r in eks.by_type("aws:ec2/subnet:Subnet") if "-private-" in r.name}
    public = {r.urn for r in eks.by_type("aws:ec2/subnet:Subnet") if "-public-" in r.name}
    assert len(private) == len(public) == 3
    assert set(group.property_dependencies["subnetIds"]) == private
    assert group.inputs["scalingConfig"] == {"minSize": 2, "desiredSize": 2, "maxSize": 4}
    assert group.inputs["operatingSystem"] == "AL2023"
    assert group.inputs["cluster"] == {"$resource": eks.one("eks:index:Cluster").urn}
    if not eks.preview:
        assert group.inputs["subnetIds"] == [f"c-net-private-eu-west-1{z}-id" for z in "abc"]


def test_ebs_csi_addon_runs_under_its_own_irsa_role(eks):
    addon = eks.one("aws:eks/addon:Addon")
    assert addon.inputs["addonName"] == "aws-ebs-csi-driver"
    role = eks.one("aws:iam/role:Role", "c-ebs-csi")
    assert role.urn in addon.property_dependencies["serviceAccountRoleArn"]
    assert eks.one("eks:index:ManagedNodeGroup").urn in addon.dependencies  # its pods need nodes
    if not eks.preview:
        trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
        issuer = eks.outputs["oidcIssuer"]
        assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert trust["Condition"]["StringEquals"] == {f"{issuer}:sub": [EBS_CSI_SERVICE_ACCOUNT],
                                                      f"{issuer}:aud": "sts.amazonaws.com"}
    attachment = eks.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "c-ebs-csi")
    if not eks.preview:
        assert attachment.inputs["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"


def test_gp3_storage_class_is_encrypted_expandable_and_waits_for_the_pod(eks):
    sc = eks.one("kubernetes:storage.k8s.io/v1:StorageClass")
    assert sc.inputs["provisioner"] == "ebs.csi.aws.com"
    assert sc.inputs["parameters"]["type"] == "gp3" and sc.inputs["parameters"]["encrypted"] == "true"
    assert sc.inputs["allowVolumeExpansion"] is True
    assert sc.inputs["volumeBindingMode"] == "WaitForFirstConsumer"
    provider = eks.one("pulumi:providers:kubernetes")
    assert sc.provider.rsplit("::", 1)[0] == provider.urn
    assert eks.one("eks:index:Cluster").urn in provider.property_dependencies["kubeconfig"]


def test_exposes_the_security_group_pods_carry_and_a_secret_kubeconfig(eks):
    assert isinstance(eks.outputs["kubeconfig"], Secret)
    if not eks.preview:
        # The fake EKS cluster's eksCluster.vpcConfig.clusterSecurityGroupId (fakes_aws).
        assert eks.outputs["clusterSecurityGroupId"].startswith("sg-0eks")
        assert eks.outputs["oidcIssuer"].startswith("oidc.eks.eu-west-1.amazonaws.com/id/")


@pytest.mark.parametrize("nat,count", [("per-az", 3), ("single", 1)])
def test_nat_gateways_per_zone_or_single(nat, count):
    ev = evaluate("t", config=REGION, program=_program(nat=nat))
    nats = ev.by_type("aws:ec2/natGateway:NatGateway")
    assert len(nats) == count
    tables = [r for r in ev.by_type("aws:ec2/routeTable:RouteTable") if "-private-" in r.name]
    used = {urn for t in tables for urn in t.property_dependencies["routes"]}
    assert used == {n.urn for n in nats}
    if nat == "per-az":  # each zone's private subnets leave through their own zone's NAT
        for table in tables:
            zone = table.name.split("-private-")[1]
            assert table.inputs["routes"][0]["natGatewayId"] == f"c-net-nat-{zone}-id"


def test_bad_node_counts_and_cidr_stop_before_anything_registers():
    for bad, words in (({"min_nodes": 3, "desired_nodes": 2}, "min <= desired"), ({"vpc_cidr": "10.0.0.0/8"}, "/16 to /20")):
        raised = []

        def program(bad=bad):
            try:
                if "vpc_cidr" in bad:
                    Vpc("v", {"cidr": bad["vpc_cidr"]})
                else:
                    EksCluster("c", bad)
            except ValueError as exc:
                raised.append(str(exc))

        ev = evaluate("t", config=REGION, program=program)
        assert len(raised) == 1 and words in raised[0]
        assert ev.resources == []


@given(prefix=st.integers(16, 20), zones=st.integers(2, 3), base=st.integers(0, 255))
def test_subnet_ranges_are_disjoint_and_inside_the_vpc(prefix, zones, base):
    vpc = ipaddress.ip_network(f"10.{base}.0.0/{prefix}", strict=False)
    private, public = subnet_ranges(str(vpc), zones)
    nets = [ipaddress.ip_network(n) for n in private + public]
    assert len(nets) == 2 * zones
    assert all(n.subnet_of(vpc) for n in nets)
    assert all(not a.overlaps(b) for i, a in enumerate(nets) for b in nets[i + 1:])
