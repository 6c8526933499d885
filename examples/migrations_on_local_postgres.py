"""Schema and proof on any cluster: LocalPostgres, the app Secret, Atlas migrations, a connectivity check.

    pulumi config set kubeContext kind-dev
    pulumi config set checkRunId "$(date +%s)"   # optional: re-run the check on this `pulumi up`
"""

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components import AppDatabaseSecret, LocalPostgres
from components.jobs import short_hash
from components.migrations import AtlasMigrations, ConnectivityCheck

config = pulumi.Config()
provider = k8s.Provider("existing", context=config.get("kubeContext") or "kind-dev")
opts = pulumi.ResourceOptions(providers={"kubernetes": provider})

db = LocalPostgres("shop-db", {"namespace": "shop-db", "version": 18, "node_port": None}, opts)
secret = AppDatabaseSecret("shop", {"connection": db.connection, "namespaces": ["shop"], "create_namespaces": True},
                           opts)
# Run keys: a re-created database (new host, user, ...) gets the migrations again, and any change to the
# Secret's data is checked again. Unsecret: they end up in Job names; the second is a 10-hex-digit hash
# over data holding a random 32-character password, which reveals nothing usable about it.
database_key = pulumi.Output.unsecret(db.connection.apply(
    lambda c: short_hash(c.host, str(c.port), c.database, c.username)))
secret_key = pulumi.Output.unsecret(db.connection.apply(
    lambda c: short_hash(*(f"{k}={v}" for k, v in sorted(c.secret_data().items())))))
# The repository's example schema; a team points this at its own Atlas migration directory.
schema = AtlasMigrations("shop-schema", {"namespace": "shop", "depends_on": [db, secret], "run_key": database_key,
                                         "migrations_dir": str(Path(__file__).resolve().parent.parent / "migrations")},
                         opts)
check = ConnectivityCheck("shop-dbcheck", {"namespace": "shop", "version": 18, "depends_on": [secret],
                                           "run_id": config.get("checkRunId") or "", "run_key": secret_key}, opts)
pulumi.export("migrationsJob", schema.job_name)
pulumi.export("connectivityCheckJob", check.job_name)
