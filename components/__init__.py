"""pgtiers components: import them into your own stacks.

    from components import LocalPostgres, AppDatabaseSecret, DatabaseConnection
"""

from .app_secret import AppDatabaseSecret, AppDatabaseSecretArgs
from .cluster.kind import KindCluster, KindClusterArgs
from .connection import DatabaseConnection
from .db.local import LocalPostgres, LocalPostgresArgs

__all__ = [
    "AppDatabaseSecret", "AppDatabaseSecretArgs", "DatabaseConnection", "KindCluster", "KindClusterArgs",
    "LocalPostgres", "LocalPostgresArgs",
]

# Production tier on AWS: the EKS cluster, Aurora, and rotation-safe credential delivery.
from .cluster.eks import EksCluster, EksClusterArgs  # noqa: E402
from .cluster.vpc import Vpc, VpcArgs  # noqa: E402
from .db.aurora import AuroraServerlessDb, AuroraServerlessDbArgs  # noqa: E402
from .external_secrets import DatabaseSecretSync, DatabaseSecretSyncArgs, ExternalSecretsOperator  # noqa: E402

__all__ += [
    "AuroraServerlessDb", "AuroraServerlessDbArgs", "DatabaseSecretSync", "DatabaseSecretSyncArgs", "EksCluster",
    "EksClusterArgs", "ExternalSecretsOperator", "Vpc", "VpcArgs",
]

# Per-PR Neon branches, the Kubernetes-native tiers, and the schema workflow.
from .db.ack_rds import AckRdsInstance, AckRdsInstanceArgs  # noqa: E402
from .db.cnpg import CnpgCluster, CnpgClusterArgs  # noqa: E402
from .db.neon import NeonBranchDb, NeonBranchDbArgs  # noqa: E402
from .migrations import AtlasMigrations, AtlasMigrationsArgs, ConnectivityCheck, ConnectivityCheckArgs  # noqa: E402
from .seed import SeedData, SeedDataArgs  # noqa: E402

__all__ += [
    "AckRdsInstance", "AckRdsInstanceArgs", "AtlasMigrations", "AtlasMigrationsArgs", "CnpgCluster", "CnpgClusterArgs",
    "ConnectivityCheck", "ConnectivityCheckArgs", "NeonBranchDb", "NeonBranchDbArgs", "SeedData", "SeedDataArgs",
]
