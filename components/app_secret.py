"""AppDatabaseSecret: the connection contract written into a Secret in each app namespace.

Apps read the same eight keys whatever the tier: ``DATABASE_URL`` (through a pooler when there
is one), ``DATABASE_URL_DIRECT`` (never pooled; for migrations) and the libpq ``PG*`` variables.
"""

from __future__ import annotations

from typing import Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from .connection import SECRET_KEYS, DatabaseConnection


class AppDatabaseSecretArgs(TypedDict, total=False):
    connection: pulumi.Input[DatabaseConnection]
    """The database to point the app at (any tier's ``connection`` output)."""
    namespaces: Sequence[pulumi.Input[str]]
    """Namespaces that each get the Secret."""
    secret_name: str
    """Name of the Secret in each namespace (default ``database``)."""
    create_namespaces: bool
    """Create the namespaces (default false: they usually belong to the app)."""
    labels: dict[str, str]
    """Extra labels on the Secrets."""


class AppDatabaseSecret(pulumi.ComponentResource):
    """One Secret per app namespace with the eight database keys.

    Example::

        AppDatabaseSecret("app-db", {"connection": db.connection, "namespaces": ["app", "worker"]},
                          pulumi.ResourceOptions(providers={"kubernetes": provider}))

    Pods then take everything with ``envFrom: [{secretRef: {name: database}}]``.
    """

    secret_names: pulumi.Output[list[str]]
    """``<namespace>/<name>`` of each Secret."""

    def __init__(self, name: str, args: AppDatabaseSecretArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("pgtiers:index:AppDatabaseSecret", name, None, opts)
        namespaces = list(args.get("namespaces") or [])
        if not namespaces:
            raise ValueError("AppDatabaseSecret.namespaces: give at least one namespace")
        secret_name = args.get("secret_name", "database")
        labels = {"app.kubernetes.io/part-of": "pgtiers", "app.kubernetes.io/component": "database-credentials",
                  **(args.get("labels") or {})}
        # Secret from birth, whatever the caller passed.
        rendered = pulumi.Output.secret(pulumi.Output.from_input(args["connection"]).apply(lambda c: c.secret_data()))
        # One output per key: each value stays secret while the key names remain reviewable.
        data = {key: rendered.apply(lambda d, key=key: d[key]) for key in SECRET_KEYS}
        names = []
        for i, namespace in enumerate(namespaces):
            suffix = namespace if isinstance(namespace, str) else str(i)
            child = pulumi.ResourceOptions(parent=self)
            if args.get("create_namespaces", False):
                # The app team deploys into this namespace too: deleting it would delete their
                # workloads with it, so a rename or a destroy leaves it in the cluster.
                ns = k8s.core.v1.Namespace(f"{name}-ns-{suffix}", metadata={"name": namespace},
                                           opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
                namespace = ns.metadata.name
            secret = k8s.core.v1.Secret(
                f"{name}-{suffix}",
                metadata={"name": secret_name, "namespace": namespace, "labels": labels},
                type="Opaque",
                string_data=data,
                opts=child,
            )
            names.append(pulumi.Output.concat(secret.metadata.namespace, "/", secret.metadata.name))
        self.secret_names = pulumi.Output.all(*names)
        self.register_outputs({"secret_names": self.secret_names})
