"""Schema and proof on any cluster: LocalPostgres, the app Secret, Atlas migrations, a connectivity check.

    pulumi config set kubeContext kind-dev
    pulumi config set checkRunId "$(date +%s)"   # optional: re-run the check on this `pulumi up`
"""

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components import AppDatabaseSecret, LocalPostgres
from components.migrations import AtlasMigrations, ConnectivityCheck

config = pulumi.Config()
provider = k8s.Provider("existing", context=config.get("kubeContext") or "kind-dev")
opts = pulumi.ResourceOptions(providers={"kubernetes": provider})

db = LocalPostgres("shop-db", {"namespace": "shop-db", "version": 18, "node_port": None}, opts)
secret = AppDatabaseSecret("shop", {"connection": db.connection, "namespaces": ["shop"], "create_namespaces": True},
                           opts)
# The repository's example schema; a team points this at its own Atlas migration directory.
schema = AtlasMigrations("shop-schema", {"namespace": "shop", "depends_on": [db, secret],
                                         "migrations_dir": str(Path(__file__).resolve().parent.parent / "migrations")},
                         opts)
check = ConnectivityCheck("shop-dbcheck", {"namespace": "shop", "version": 18, "depends_on": [secret],
                                           "run_id": config.get("checkRunId") or ""}, opts)
pulumi.export("migrationsJob", schema.job_name)
pulumi.export("connectivityCheckJob", check.job_name)
