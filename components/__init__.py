"""pgtiers components: import them into your own stacks.

    from components import LocalPostgres, AppDatabaseSecret, DatabaseConnection

Names load on first use (PEP 562), so a program that needs only the kind and local tiers never
imports pulumi_aws and pulumi_eks (about half a second).
"""

from __future__ import annotations

import importlib
from typing import Any

#: public name -> module that defines it
_EXPORTS = {
    "DatabaseConnection": ".connection",
    "AppDatabaseSecret": ".app_secret", "AppDatabaseSecretArgs": ".app_secret",
    "KindCluster": ".cluster.kind", "KindClusterArgs": ".cluster.kind",
    "LocalPostgres": ".db.local", "LocalPostgresArgs": ".db.local",
    # Production tier on AWS: the EKS cluster, Aurora, and rotation-safe credential delivery.
    "EksCluster": ".cluster.eks", "EksClusterArgs": ".cluster.eks",
    "Vpc": ".cluster.vpc", "VpcArgs": ".cluster.vpc",
    "AuroraServerlessDb": ".db.aurora", "AuroraServerlessDbArgs": ".db.aurora",
    "DatabaseSecretSync": ".external_secrets", "DatabaseSecretSyncArgs": ".external_secrets",
    "ExternalSecretsOperator": ".external_secrets",
    # Per-PR Neon branches, the Kubernetes-native tiers, and the schema workflow.
    "NeonBranchDb": ".db.neon", "NeonBranchDbArgs": ".db.neon",
    "CnpgCluster": ".db.cnpg", "CnpgClusterArgs": ".db.cnpg",
    "AckRdsInstance": ".db.ack_rds", "AckRdsInstanceArgs": ".db.ack_rds",
    "AtlasMigrations": ".migrations", "AtlasMigrationsArgs": ".migrations",
    "ConnectivityCheck": ".migrations", "ConnectivityCheckArgs": ".migrations",
    "SeedData": ".seed", "SeedDataArgs": ".seed",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
