"""IAM roles for Kubernetes service accounts (IRSA) on EKS.

One role per service account: the trust policy names the exact ``system:serviceaccount:<ns>:<sa>``
subject and the ``sts.amazonaws.com`` audience, so no other pod of the cluster can assume it.
"""

from __future__ import annotations

import json
from typing import Optional, Sequence

import pulumi
import pulumi_aws as aws

#: Annotation the EKS pod identity webhook reads to inject web-identity credentials.
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"


def service_account_subject(namespace: str, service_account: str) -> str:
    return f"system:serviceaccount:{namespace}:{service_account}"


def _render(provider_arn: str, issuer: str, subject: str | list[str]) -> str:
    issuer = issuer.removeprefix("https://")
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            # StringEquals, not StringLike: a wildcard here would let any pod in the namespace in.
            "Condition": {"StringEquals": {
                f"{issuer}:sub": subject,
                f"{issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    })


def trust_policy(oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str,
                 service_account: str) -> pulumi.Output[str]:
    """The assume-role policy for one service account (``oidc_issuer`` without ``https://``)."""
    subject = service_account_subject(namespace, service_account)
    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(lambda a: _render(a[0], a[1], subject))


def irsa_assume_role_policy(oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str],
                            subjects: Sequence[str]) -> pulumi.Output[str]:
    """The assume-role policy for several subjects (``system:serviceaccount:<ns>:<name>``), listed under
    one ``:sub`` key (IAM matches any of them)."""
    subjects = list(subjects)
    return pulumi.Output.all(oidc_provider_arn, oidc_issuer).apply(lambda a: _render(a[0], a[1], subjects))


def irsa_role(name: str, *, oidc_provider_arn: pulumi.Input[str], oidc_issuer: pulumi.Input[str], namespace: str,
              service_account: str, description: str, opts: Optional[pulumi.ResourceOptions] = None) -> aws.iam.Role:
    return aws.iam.Role(
        name,
        assume_role_policy=trust_policy(oidc_provider_arn, oidc_issuer, namespace, service_account),
        description=description,
        tags={"pgtiers/service-account": f"{namespace}.{service_account}"},
        opts=opts,
    )
