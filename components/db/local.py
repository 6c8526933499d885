"""LocalPostgres: a disposable PostgreSQL inside any Kubernetes cluster (kind, Docker Desktop, ...).

The official ``postgres`` image (pinned tag; not Bitnami, whose versioned images were frozen in
2025) as a one-replica StatefulSet with a PersistentVolumeClaim, ``pg_isready`` probes, a
ClusterIP Service for the app and an optional NodePort for ``psql`` from the laptop.
"""

from __future__ import annotations

from typing import Optional, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from ..config import POSTGRES_IMAGES
from ..connection import DatabaseConnection
from ..namespaces import namespace_for

PORT = 5432
#: uid/gid of the postgres user in the official Debian-based image.
POSTGRES_UID = 999


class LocalPostgresArgs(TypedDict, total=False):
    namespace: pulumi.Input[str]
    """Namespace for the StatefulSet and its Services."""
    create_namespace: bool
    """Create that namespace (default true)."""
    version: int
    """PostgreSQL major version (14-18); picks the pinned image tag."""
    image: str
    """Override the image (keep it pinned)."""
    database: str
    """Database the app owns (default ``app``)."""
    username: str
    """Role the app logs in as (default ``app``); it owns the database."""
    storage_gb: int
    """Size of the data volume in GiB (default 5)."""
    storage_class: Optional[str]
    """StorageClass of the volume (default: the cluster's default class)."""
    node_port: Optional[int]
    """Publish on this NodePort (30000-32767) for ``psql`` from the laptop; None for no NodePort."""
    protect: bool
    """Protect the StatefulSet and the password from deletion by Pulumi."""


class LocalPostgres(pulumi.ComponentResource):
    """A one-instance PostgreSQL in Kubernetes that yields a ``DatabaseConnection``.

    Example::

        db = LocalPostgres("dev-db", {"namespace": "pgtiers-db", "version": 18},
                           pulumi.ResourceOptions(providers={"kubernetes": provider}))
        AppDatabaseSecret("app-db", {"connection": db.connection, "namespaces": ["app"]}, ...)
    """

    connection: pulumi.Output[DatabaseConnection]
    """Secret: host is the in-cluster Service DNS name."""
    host: pulumi.Output[str]
    port: pulumi.Output[int]
    database: pulumi.Output[str]
    service_name: pulumi.Output[str]
    namespace: pulumi.Output[str]
    node_port: pulumi.Output[Optional[int]]
    password: pulumi.Output[str]
    """Secret."""

    def __init__(self, name: str, args: LocalPostgresArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("pgtiers:index:LocalPostgres", name, None, opts)
        version = args.get("version", 18)
        if "image" not in args and version not in POSTGRES_IMAGES:
            raise ValueError(f"LocalPostgres.version: {version!r} is not one of {', '.join(map(str, POSTGRES_IMAGES))}")
        node_port = args.get("node_port")
        if node_port is not None and not 30000 <= node_port <= 32767:
            raise ValueError(f"LocalPostgres.node_port: {node_port!r} is outside the NodePort range 30000-32767")
        database, username = args.get("database", "app"), args.get("username", "app")
        protect = bool(args.get("protect", False))
        child = pulumi.ResourceOptions(parent=self)
        data_opts = pulumi.ResourceOptions(parent=self, protect=protect)

        # Deleting the namespace deletes the volume claim in it: it is protected with the data.
        namespace = namespace_for(name, args.get("namespace", "pgtiers-db"), args.get("create_namespace", True),
                                  data_opts)

        # Stable across runs (unlike Python's secrets at program time); special characters are
        # fine because every URL is percent-encoded.
        password = random.RandomPassword(f"{name}-password", length=32, special=True,
                                         override_special="!#$%&*()-_=+[]{}<>:?@/ ", opts=data_opts)
        labels = {"app.kubernetes.io/name": "postgres", "app.kubernetes.io/instance": name,
                  "app.kubernetes.io/part-of": "pgtiers"}

        credentials = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"namespace": namespace, "labels": labels},
            string_data={"POSTGRES_USER": username, "POSTGRES_DB": database,
                         "POSTGRES_PASSWORD": password.result},
            type="Opaque",
            opts=child,
        )
        def make_service(suffix: str, spec: dict, port: Optional[dict] = None) -> k8s.core.v1.Service:
            ports = [{"name": "postgres", "port": PORT, "targetPort": "postgres", **(port or {})}]
            return k8s.core.v1.Service(f"{name}-{suffix}", metadata={"namespace": namespace, "labels": labels},
                                       spec={**spec, "selector": labels, "ports": ports}, opts=child)

        headless = make_service("hl", {"clusterIP": "None"})  # the StatefulSet's own service
        app_service = make_service("svc", {"type": "ClusterIP"})  # what the app connects to
        if node_port is not None:
            make_service("nodeport", {"type": "NodePort"}, {"nodePort": node_port})  # psql from the laptop

        probe = {"exec": {"command": ["pg_isready", "-h", "127.0.0.1", "-p", str(PORT), "-U", username, "-d", database]}}
        volume_claim_spec = {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": f"{args.get('storage_gb', 5)}Gi"}}}
        if args.get("storage_class"):
            volume_claim_spec["storageClassName"] = args["storage_class"]
        k8s.apps.v1.StatefulSet(
            f"{name}-postgres",
            metadata={"namespace": namespace, "labels": labels},
            spec={
                "serviceName": headless.metadata.name,
                "replicas": 1,
                "selector": {"matchLabels": labels},
                # Deleting the StatefulSet never deletes the volume: data outlives a mistake.
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "securityContext": {"runAsUser": POSTGRES_UID, "runAsGroup": POSTGRES_UID,
                                            "fsGroup": POSTGRES_UID, "runAsNonRoot": True},
                        "containers": [{
                            "name": "postgres",
                            "image": args.get("image") or POSTGRES_IMAGES[version],
                            "ports": [{"name": "postgres", "containerPort": PORT}],
                            "envFrom": [{"secretRef": {"name": credentials.metadata.name}}],
                            # Mount the parent directory: postgres:18+ keeps data in
                            # /var/lib/postgresql/<major>/docker, older images in .../data.
                            "volumeMounts": [{"name": "data", "mountPath": "/var/lib/postgresql"}],
                            "readinessProbe": {**probe, "periodSeconds": 5, "timeoutSeconds": 3},
                            "livenessProbe": {**probe, "initialDelaySeconds": 30, "periodSeconds": 10,
                                              "timeoutSeconds": 5, "failureThreshold": 6},
                            "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                          "limits": {"memory": "1Gi"}},
                            "securityContext": {"allowPrivilegeEscalation": False},
                        }],
                    },
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": volume_claim_spec}],
            },
            opts=data_opts,
        )

        self.namespace = namespace
        self.service_name = app_service.metadata.name
        self.host = pulumi.Output.all(self.service_name, namespace).apply(lambda a: f"{a[0]}.{a[1]}.svc.cluster.local")
        self.port = pulumi.Output.from_input(PORT)
        self.database = pulumi.Output.from_input(database)
        self.node_port = pulumi.Output.from_input(node_port)
        self.password = pulumi.Output.secret(password.result)
        # The official image serves no TLS; traffic stays inside the cluster network.
        self.connection = pulumi.Output.secret(
            pulumi.Output.all(self.host, password.result).apply(
                lambda a: DatabaseConnection(host=a[0], port=PORT, database=database, username=username,
                                             password=a[1], sslmode="disable")))
        self.register_outputs({"host": self.host, "port": self.port, "database": self.database,
                               "service_name": self.service_name, "node_port": self.node_port})
