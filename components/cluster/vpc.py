"""Vpc: a VPC over up to three availability zones with public and private subnets.

Its own component (a child of ``EksCluster``, usable alone) so that what only needs the network,
such as an Aurora cluster, depends on these resources and never on the EKS control plane.
"""

from __future__ import annotations

import ipaddress
from typing import Literal, Optional, Sequence, TypedDict

import pulumi
import pulumi_aws as aws

NatMode = Literal["per-az", "single"]


class VpcArgs(TypedDict, total=False):
    cidr: str
    """IPv4 range of the VPC (default ``10.0.0.0/16``; a /16 to /20)."""
    availability_zones: Sequence[str]
    """Zones to spread over (2 or 3); default: the region's first three that need no opt-in."""
    nat: NatMode
    """``per-az`` (default): one NAT gateway per zone, so losing a zone never cuts the others off;
    ``single``: one NAT gateway for all zones, cheaper, for non-production stacks."""
    cluster_name: Optional[str]
    """EKS cluster name to tag subnets with (``kubernetes.io/cluster/<name>: shared``)."""
    tags: dict[str, str]
    """Tags on every resource."""


def subnet_ranges(cidr: str, zones: int) -> tuple[list[str], list[str]]:
    """Private and public subnet ranges: a quarter of the VPC per zone for private subnets (pods get
    VPC addresses under the VPC CNI, so they need room), the last quarter split for public ones."""
    network = ipaddress.ip_network(cidr)
    quarters = list(network.subnets(prefixlen_diff=2))
    private = [str(q) for q in quarters[:zones]]
    public = [str(p) for p in list(quarters[3].subnets(prefixlen_diff=2))[:zones]]
    return private, public


class Vpc(pulumi.ComponentResource):
    """Public subnets (load balancers, NAT gateways) and private subnets (nodes, databases).

    Example::

        vpc = Vpc("prod-net", {"cidr": "10.20.0.0/16", "nat": "per-az"})
        AuroraServerlessDb("db", {"vpc_id": vpc.vpc_id, "subnet_ids": vpc.private_subnet_ids, ...})
    """

    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    availability_zones: list[str]

    def __init__(self, name: str, args: VpcArgs, opts: Optional[pulumi.ResourceOptions] = None):
        cidr = args.get("cidr", "10.0.0.0/16")
        try:
            network = ipaddress.ip_network(cidr)
        except ValueError:
            raise ValueError(f"Vpc.cidr: {cidr!r} is not an IPv4 network such as 10.0.0.0/16") from None
        if network.version != 4 or not 16 <= network.prefixlen <= 20:
            raise ValueError(f"Vpc.cidr: {cidr!r} must be an IPv4 /16 to /20")
        nat = args.get("nat", "per-az")
        if nat not in ("per-az", "single"):
            raise ValueError(f"Vpc.nat: {nat!r} is not one of per-az, single")
        zones = list(args.get("availability_zones") or [])
        if not zones:
            # Zones that need an opt-in (Local Zones, Wavelength) lack EKS and Aurora.
            found = aws.get_availability_zones(
                state="available", filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}])
            zones = sorted(found.names)[:3]
        if not 2 <= len(zones) <= 3:
            raise ValueError(f"Vpc.availability_zones: {zones!r} must name 2 or 3 zones (Aurora and EKS need "
                             "subnets in at least two)")
        super().__init__("pgtiers:index:Vpc", name, None, opts)
        self.availability_zones = zones
        tags = dict(args.get("tags") or {})
        cluster_tag = {f"kubernetes.io/cluster/{args['cluster_name']}": "shared"} if args.get("cluster_name") else {}
        child = pulumi.ResourceOptions(parent=self)

        vpc = aws.ec2.Vpc(f"{name}-vpc", cidr_block=cidr, enable_dns_support=True,
                          # RDS endpoints and EKS private API access resolve through VPC DNS hostnames.
                          enable_dns_hostnames=True, tags={**tags, "Name": name}, opts=child)
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, tags={**tags, "Name": name}, opts=child)
        public_rt = aws.ec2.RouteTable(
            f"{name}-public", vpc_id=vpc.id, routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": igw.id}],
            tags={**tags, "Name": f"{name}-public"}, opts=child)

        private_cidrs, public_cidrs = subnet_ranges(cidr, len(zones))
        public_subnets, private_subnets, nats = [], [], []
        for i, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{zone}", vpc_id=vpc.id, cidr_block=public_cidrs[i], availability_zone=zone,
                map_public_ip_on_launch=False,
                # Where the AWS Load Balancer Controller puts internet-facing load balancers.
                tags={**tags, **cluster_tag, "Name": f"{name}-public-{zone}", "kubernetes.io/role/elb": "1"},
                opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-public-{zone}", subnet_id=public.id, route_table_id=public_rt.id,
                                          opts=child)
            public_subnets.append(public)
            if nat == "per-az" or i == 0:
                eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", tags={**tags, "Name": f"{name}-nat-{zone}"},
                                  opts=child)
                nats.append(aws.ec2.NatGateway(
                    f"{name}-nat-{zone}", allocation_id=eip.id, subnet_id=public.id,
                    tags={**tags, "Name": f"{name}-nat-{zone}"},
                    # A NAT gateway created before the internet gateway is attached has no way out.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[igw])))

        for i, zone in enumerate(zones):
            private = aws.ec2.Subnet(
                f"{name}-private-{zone}", vpc_id=vpc.id, cidr_block=private_cidrs[i], availability_zone=zone,
                tags={**tags, **cluster_tag, "Name": f"{name}-private-{zone}", "kubernetes.io/role/internal-elb": "1"},
                opts=child)
            nat_gw = nats[i] if nat == "per-az" else nats[0]
            rt = aws.ec2.RouteTable(
                f"{name}-private-{zone}", vpc_id=vpc.id,
                routes=[{"cidr_block": "0.0.0.0/0", "nat_gateway_id": nat_gw.id}],
                tags={**tags, "Name": f"{name}-private-{zone}"}, opts=child)
            aws.ec2.RouteTableAssociation(f"{name}-private-{zone}", subnet_id=private.id, route_table_id=rt.id,
                                          opts=child)
            private_subnets.append(private)

        self.vpc_id = vpc.id
        self.private_subnet_ids = pulumi.Output.all(*[s.id for s in private_subnets])
        self.public_subnet_ids = pulumi.Output.all(*[s.id for s in public_subnets])
        self.register_outputs({"vpc_id": self.vpc_id, "private_subnet_ids": self.private_subnet_ids,
                               "public_subnet_ids": self.public_subnet_ids})
