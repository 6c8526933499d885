"""Composition: settings → cluster → database tier → app Secret → stack outputs.

Each step is one function per cluster type or tier, picked from a table, so adding a tier
touches this file in one place. Nothing here reads config: ``__main__.py`` passes the settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

import pulumi
import pulumi_kubernetes as k8s

from .app_secret import AppDatabaseSecret
from .cluster.kind import KindCluster
from .config import StackSettings
from .connection import DatabaseConnection
from .db.local import LocalPostgres


@dataclasses.dataclass
class Cluster:
    """What the rest of the stack needs from whichever cluster was built."""

    name: pulumi.Output[str]
    provider: k8s.Provider
    kubeconfig: pulumi.Output[str]
    component: pulumi.ComponentResource


@dataclasses.dataclass
class Database:
    """What the rest of the stack needs from whichever tier was built."""

    connection: pulumi.Output[DatabaseConnection]
    component: pulumi.ComponentResource
    outputs: dict[str, Any]
    """Tier-specific stack outputs (no plain-text secrets)."""


def _kind_cluster(settings: StackSettings) -> Cluster:
    cfg = settings.cluster
    db = settings.database
    mappings = []
    if getattr(db, "node_port", None) is not None:
        mappings.append({"container_port": db.node_port, "host_port": db.host_port})
    kind = KindCluster(cfg.name, {"name": cfg.name, "node_image": cfg.node_image,
                                  "port_mappings": mappings, "data_dir": cfg.data_dir})
    return Cluster(kind.cluster_name, kind.provider, kind.kubeconfig, kind)


def _local_database(settings: StackSettings, cluster: Cluster) -> Database:
    cfg = settings.database
    db = LocalPostgres(
        f"{settings.cluster.name}-db",
        {"namespace": cfg.namespace, "version": cfg.version, "database": cfg.name, "username": cfg.username,
         "storage_gb": cfg.storage_gb, "node_port": cfg.node_port, "protect": settings.protect},
        pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
    )
    outputs: dict[str, Any] = {}
    if cfg.node_port is not None:
        # From the laptop: kind publishes the NodePort on 127.0.0.1:<hostPort>.
        outputs["laptopHost"] = "127.0.0.1"
        outputs["laptopPort"] = cfg.host_port
        outputs["laptopDatabaseUrl"] = pulumi.Output.secret(db.connection.apply(
            lambda c: dataclasses.replace(c, host="127.0.0.1", port=cfg.host_port).url()))
    return Database(db.connection, db, outputs)


CLUSTERS: dict[str, Callable[[StackSettings], Cluster]] = {"kind": _kind_cluster}
TIERS: dict[str, Callable[[StackSettings, Cluster], Database]] = {"local": _local_database}


def build(settings: StackSettings) -> Optional[AppDatabaseSecret]:
    cluster = CLUSTERS[settings.cluster.type](settings)
    database = TIERS[settings.database.tier](settings, cluster)
    app = settings.app
    secret = AppDatabaseSecret(
        f"{settings.cluster.name}-app-db",
        {"connection": database.connection, "namespaces": list(app.namespaces), "secret_name": app.secret_name,
         "create_namespaces": app.create_namespaces},
        pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
    )
    pulumi.export("clusterName", cluster.name)
    pulumi.export("kubeconfig", pulumi.Output.secret(cluster.kubeconfig))
    pulumi.export("tier", settings.database.tier)
    # Host, port and name are not secret; the password never leaves the Secret.
    pulumi.export("databaseHost", pulumi.Output.unsecret(database.connection.apply(lambda c: c.host)))
    pulumi.export("databasePort", pulumi.Output.unsecret(database.connection.apply(lambda c: c.port)))
    pulumi.export("databaseName", pulumi.Output.unsecret(database.connection.apply(lambda c: c.database)))
    pulumi.export("appSecrets", secret.secret_names)
    for key, value in database.outputs.items():
        pulumi.export(key, value)
    return secret
