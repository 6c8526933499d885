"""AuroraServerlessDb on its own, as a team would import it into a stack with its own network.

    pip install pgtiers   # or put this repository on PYTHONPATH
    pulumi up             # with this file as the program's __main__.py

No Kubernetes here: two private subnets, a security group for the app's servers, and the
database that only that group can reach.
"""

import pulumi
import pulumi_aws as aws

from components import AuroraServerlessDb

vpc = aws.ec2.Vpc("orders", cidr_block="10.42.0.0/16", enable_dns_support=True, enable_dns_hostnames=True)
subnets = [
    aws.ec2.Subnet(f"orders-private-{zone}", vpc_id=vpc.id, cidr_block=f"10.42.{i}.0/24", availability_zone=zone)
    for i, zone in enumerate(["eu-west-1a", "eu-west-1b"])
]
app_servers = aws.ec2.SecurityGroup("orders-app", vpc_id=vpc.id, description="orders app servers")

db = AuroraServerlessDb("orders-db", {
    "vpc_id": vpc.id,
    "subnet_ids": [s.id for s in subnets],
    "allowed_security_group_ids": [app_servers.id],
    "engine_version": "16",
    "min_acu": 0.5,
    "max_acu": 8,
    "instances": 2,
    "deletion_protection": True,
    "protect": True,
})

pulumi.export("writer", db.writer_endpoint)
pulumi.export("reader", db.reader_endpoint)
pulumi.export("masterSecretArn", db.master_secret_arn)
