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
