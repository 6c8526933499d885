"""Rotation-safe credentials: the app Secret kept in sync with an RDS-managed secret.

RDS rotates a managed master password every 7 days. A copy written once by Pulumi (what
``AppDatabaseSecret`` does) would then be wrong until the next ``pulumi up``. Here the External
Secrets Operator re-reads the secret every ``refresh_interval`` and re-renders the app Secret
with the same eight keys ``AppDatabaseSecret`` writes, so apps see no difference but the
freshness.

Access is as narrow as IAM allows: one role, assumable only by one service account per app
namespace (IRSA), allowed to read that one secret and to decrypt with its key only on behalf of
Secrets Manager for that secret.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from .connection import SECRET_KEYS, DatabaseConnection
from .irsa import ROLE_ARN_ANNOTATION, irsa_assume_role_policy, service_account_subject

ESO_CHART = "external-secrets"
ESO_CHART_VERSION = "2.6.0"
ESO_REPOSITORY = "https://charts.external-secrets.io"
ESO_API_VERSION = "external-secrets.io/v1"
SERVICE_ACCOUNT = "pgtiers-db-credentials"
STORE_NAME = "pgtiers-aurora"

# Placeholders rendered through DatabaseConnection, then swapped for template expressions. Only
# unreserved characters, so percent-encoding leaves them intact and they can be found again.
_USER_MARK, _PASSWORD_MARK = "PGTIERSUSERNAMEMARK", "PGTIERSPASSWORDMARK"


def _in_url(field: str) -> str:
    # Go's urlquery (url.QueryEscape) keeps only A-Z a-z 0-9 - _ . ~ literal and %XX-encodes every
    # other UTF-8 byte in upper-case hex — exactly what connection._component does (RFC 3986
    # unreserved set) — except that it writes a space as '+'. A literal '+' has already become
    # %2B, so every '+' left was a space: turning it into %20 makes the two encodings identical.
    return '{{ .%s | urlquery | replace "+" "%%20" }}' % field


def secret_templates(host: str, port: int, database: str, sslmode: str) -> dict[str, str]:
    """The ESO template for each of the eight app-Secret keys; ``.username``/``.password`` come from
    the RDS secret. Rendered through ``DatabaseConnection`` itself, so URLs cannot drift from it."""
    shape = DatabaseConnection(host=host, port=port, database=database, username=_USER_MARK,
                               password=_PASSWORD_MARK, sslmode=sslmode).secret_data()
    templates = {}
    for key in SECRET_KEYS:
        url = key.startswith("DATABASE_URL")
        templates[key] = (shape[key]
                          .replace(_USER_MARK, _in_url("username") if url else "{{ .username }}")
                          .replace(_PASSWORD_MARK, _in_url("password") if url else "{{ .password }}"))
    return templates


def region_of(arn: str) -> str:
    """``arn:aws:secretsmanager:eu-west-1:...`` → ``eu-west-1``."""
    return arn.split(":")[3]


class ExternalSecretsOperatorArgs(TypedDict, total=False):
    namespace: str
    """Namespace of the operator (default ``external-secrets``)."""
    chart_version: str
    """Version of the official ``external-secrets`` chart (pinned default)."""
    values: dict[str, Any]
    """Extra chart values, merged over pgtiers' own."""


class ExternalSecretsOperator(pulumi.ComponentResource):
    """The External Secrets Operator from its official Helm chart, CRDs included.

    Example::

        eso = ExternalSecretsOperator("eso", {}, pulumi.ResourceOptions(providers={"kubernetes": provider}))
    """

    release: k8s.helm.v3.Release
    namespace: pulumi.Output[str]

    def __init__(self, name: str, args: ExternalSecretsOperatorArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("pgtiers:index:ExternalSecretsOperator", name, None, opts)
        values = {
            "installCRDs": True,
            # Two replicas plus leader election: a node drain never stops secret refreshes.
            "replicaCount": 2,
            "leaderElect": True,
            "resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            **(args.get("values") or {}),
        }
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name="external-secrets",
            chart=ESO_CHART,
            version=args.get("chart_version", ESO_CHART_VERSION),
            repository_opts={"repo": ESO_REPOSITORY},
            namespace=args.get("namespace", "external-secrets"),
            create_namespace=True,
            values=values,
            # Wait for the webhook: it validates every SecretStore and ExternalSecret created next.
            skip_await=False,
            atomic=True,
            timeout=600,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.namespace = self.release.namespace
        self.register_outputs({"namespace": self.namespace})


class DatabaseSecretSyncArgs(TypedDict, total=False):
    secret_arn: pulumi.Input[str]
    """ARN of the RDS-managed master secret (``AuroraServerlessDb.master_secret_arn``)."""
    kms_key_arn: pulumi.Input[str]
    """Key that encrypts that secret (``AuroraServerlessDb.kms_key_arn``)."""
    host: pulumi.Input[str]
    """Database host written into the Secret (the writer endpoint)."""
    port: int
    """Database port (default 5432)."""
    database: str
    """Database name."""
    sslmode: str
    """libpq sslmode (default ``require``)."""
    oidc_provider_arn: pulumi.Input[str]
    """The cluster's IAM OIDC provider (``EksCluster.oidc_provider_arn``)."""
    oidc_issuer: pulumi.Input[str]
    """The issuer without ``https://`` (``EksCluster.oidc_issuer``)."""
    namespaces: Sequence[str]
    """App namespaces that each get the Secret."""
    secret_name: str
    """Name of the Secret in each namespace (default ``database``)."""
    create_namespaces: bool
    """Create the namespaces (default false)."""
    refresh_interval: str
    """How often ESO re-reads the secret, as a Go duration (default ``5m``): the longest an app
    can see a rotated-out password."""
    operator: ExternalSecretsOperator
    """The operator to wait for (its CRDs and webhook must exist before the objects here)."""
    tags: dict[str, str]
    """Tags on the IAM role."""


class DatabaseSecretSync(pulumi.ComponentResource):
    """The eight app-Secret keys in each namespace, rendered by ESO from an RDS-managed secret.

    Example::

        DatabaseSecretSync("app-db", {
            "secret_arn": db.master_secret_arn, "kms_key_arn": db.kms_key_arn, "host": db.writer_endpoint,
            "database": "app", "oidc_provider_arn": eks.oidc_provider_arn, "oidc_issuer": eks.oidc_issuer,
            "namespaces": ["app"], "operator": eso}, pulumi.ResourceOptions(providers={"kubernetes": eks.provider}))
    """

    role_arn: pulumi.Output[str]
    secret_names: pulumi.Output[list[str]]
    """``<namespace>/<name>`` of each synced Secret."""

    def __init__(self, name: str, args: DatabaseSecretSyncArgs, opts: Optional[pulumi.ResourceOptions] = None):
        namespaces = list(args.get("namespaces") or [])
        if not namespaces or not all(isinstance(ns, str) for ns in namespaces):
            raise ValueError(f"DatabaseSecretSync.namespaces: {namespaces!r} must list at least one namespace name "
                             "(plain strings: each becomes an IRSA trust subject)")
        refresh = args.get("refresh_interval", "5m")
        super().__init__("pgtiers:index:DatabaseSecretSync", name, None, opts)
        secret_name = args.get("secret_name", "database")
        secret_arn = pulumi.Output.from_input(args["secret_arn"])
        key_arn = pulumi.Output.from_input(args["kms_key_arn"])
        child = pulumi.ResourceOptions(parent=self)

        role = aws.iam.Role(
            f"{name}-reader",
            description="External Secrets: read one RDS-managed database secret",
            assume_role_policy=irsa_assume_role_policy(
                args["oidc_provider_arn"], args["oidc_issuer"],
                [service_account_subject(ns, SERVICE_ACCOUNT) for ns in namespaces]),
            tags=args.get("tags") or {}, opts=child)
        policy = aws.iam.RolePolicy(
            f"{name}-reader",
            role=role.id,
            policy=pulumi.Output.all(secret_arn, key_arn).apply(lambda a: json.dumps({
                "Version": "2012-10-17",
                "Statement": [
                    {"Sid": "ReadTheDatabaseSecret", "Effect": "Allow",
                     "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                     "Resource": a[0]},
                    {"Sid": "DecryptOnlyThatSecret", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": a[1],
                     "Condition": {"StringEquals": {
                         "kms:ViaService": f"secretsmanager.{region_of(a[0])}.amazonaws.com",
                         "kms:EncryptionContext:SecretARN": a[0]}}},
                ],
            })),
            opts=child)

        operator = args.get("operator")
        after_operator = [operator.release] if operator is not None else []
        labels = {"app.kubernetes.io/part-of": "pgtiers", "app.kubernetes.io/component": "database-credentials"}
        templates = pulumi.Output.from_input(args["host"]).apply(
            lambda host: secret_templates(host, args.get("port", 5432), args["database"], args.get("sslmode", "require")))
        names = []
        for ns in namespaces:
            namespace: pulumi.Input[str] = ns
            if args.get("create_namespaces", False):
                # Shared with the app's workloads: a rename or a destroy leaves it (see AppDatabaseSecret).
                namespace = k8s.core.v1.Namespace(
                    f"{name}-ns-{ns}", metadata={"name": ns},
                    opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True))).metadata.name
            account = k8s.core.v1.ServiceAccount(
                f"{name}-sa-{ns}",
                metadata={"name": SERVICE_ACCOUNT, "namespace": namespace, "labels": labels,
                          "annotations": {ROLE_ARN_ANNOTATION: role.arn}},
                # Never mounted by a pod: ESO requests tokens for it through the TokenRequest API.
                automount_service_account_token=False,
                opts=child)
            store = k8s.apiextensions.CustomResource(
                f"{name}-store-{ns}",
                api_version=ESO_API_VERSION,
                kind="SecretStore",
                metadata={"name": STORE_NAME, "namespace": namespace, "labels": labels},
                spec={"provider": {"aws": {
                    "service": "SecretsManager",
                    "region": secret_arn.apply(region_of),
                    "auth": {"jwt": {"serviceAccountRef": {"name": account.metadata.name}}},
                }}},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*after_operator, policy]),
            )
            external = k8s.apiextensions.CustomResource(
                f"{name}-{ns}",
                api_version=ESO_API_VERSION,
                kind="ExternalSecret",
                metadata={"name": secret_name, "namespace": namespace, "labels": labels,
                          # Fail the update, visibly, if the secret cannot be read (IRSA, KMS).
                          "annotations": {"pulumi.com/waitFor": "condition=Ready",
                                          "pulumi.com/timeoutSeconds": "300"}},
                spec={
                    "refreshInterval": refresh,
                    "secretStoreRef": {"name": store.metadata["name"], "kind": "SecretStore"},
                    "target": {
                        "name": secret_name,
                        "creationPolicy": "Owner",
                        "template": {"engineVersion": "v2", "type": "Opaque", "metadata": {"labels": labels},
                                     "data": templates},
                    },
                    "data": [
                        {"secretKey": "username", "remoteRef": {"key": secret_arn, "property": "username"}},
                        {"secretKey": "password", "remoteRef": {"key": secret_arn, "property": "password"}},
                    ],
                },
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*after_operator]),
            )
            names.append(pulumi.Output.concat(external.metadata["namespace"], "/", secret_name))
        self.role_arn = role.arn
        self.secret_names = pulumi.Output.all(*names)
        self.register_outputs({"role_arn": self.role_arn, "secret_names": self.secret_names})
