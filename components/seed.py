"""SeedData: loads a SQL file into the database behind the app Secret, after the migrations.

For sandboxes: a throwaway branch that agents and people query needs rows, not just tables. The
SQL must be idempotent (``ON CONFLICT DO NOTHING`` and the like): the Job may run again, and does
whenever the seed file or the target database (``run_key``) changes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Optional, Sequence, TypedDict, Union

import pulumi
import pulumi_kubernetes as k8s

from .db.local import POSTGRES_UID
from .jobs import psql_image, run_once_job
from .migrations import _folded

SEED_KEY = "seed.sql"
SEED_MOUNT = "/seed"


class SeedDataArgs(TypedDict, total=False):
    namespace: pulumi.Input[str]
    """Namespace of the app Secret; the ConfigMap and the Job go there too."""
    secret_name: str
    """Name of the app Secret (default ``database``); psql connects with its ``PG*`` keys, which
    name the direct host (as ``DATABASE_URL_DIRECT`` does), never the pooler."""
    seed_file: str
    """Local SQL file; must be safe to run twice."""
    version: Union[int, str]
    """PostgreSQL version of the server (default 18; ``"16.4"`` counts as 16), for the ``psql``
    image: that major's pinned image, or the newest pinned one when that major has none."""
    run_key: pulumi.Input[str]
    """Changes when the target database changes (e.g. a short hash of its host, port, database and
    user), so a re-created database is seeded again; it ends up in the Job's name, so it must not be
    secret. Default: none, the Job follows the seed file only."""
    depends_on: Sequence[pulumi.Resource]
    """Run after these (the migrations: the seed needs the tables)."""


class SeedData(pulumi.ComponentResource):
    """Runs ``psql -f seed.sql`` once per distinct seed file and target database, from inside the cluster.

    Example::

        schema = AtlasMigrations("schema", {...})
        SeedData("seed", {"namespace": "app", "seed_file": "seed/sandbox.sql", "depends_on": [schema]}, opts)
    """

    job_name: pulumi.Output[str]

    def __init__(self, name: str, args: SeedDataArgs, opts: Optional[pulumi.ResourceOptions] = None):
        seed_file = Path(args.get("seed_file") or "")
        if not seed_file.is_file():
            raise ValueError(f"SeedData.seed_file: {str(seed_file)!r} is not a file")
        image = psql_image(args.get("version", 18), "SeedData.version")
        sql = seed_file.read_text(encoding="utf-8")
        # A changed seed file or target database runs a new Job; an unchanged one runs none (Job
        # specs are immutable). The ConfigMap follows the file alone.
        full_digest = hashlib.sha256(sql.encode()).hexdigest()
        digest = full_digest[:10]
        job_name = _folded("SeedData", f"{name}-", digest, full_digest, args.get("run_key"))
        super().__init__("pgtiers:index:SeedData", name, None, opts)
        namespace = pulumi.Output.from_input(args["namespace"])
        labels = {"app.kubernetes.io/part-of": "pgtiers", "app.kubernetes.io/component": "seed-data",
                  "app.kubernetes.io/instance": name}
        files = k8s.core.v1.ConfigMap(
            f"{name}-sql", metadata={"name": f"{name}-sql-{digest}", "namespace": namespace, "labels": labels},
            data={SEED_KEY: sql}, immutable=True, opts=pulumi.ResourceOptions(parent=self))
        job = run_once_job(
            f"{name}-job", job_name=job_name, namespace=namespace, labels=labels, uid=POSTGRES_UID,
            container={
                "name": "seed",
                "image": image,
                # No connection string in the arguments (the node shows them to anyone reading
                # /proc/<pid>/cmdline): psql takes PGHOST, PGPORT, PGDATABASE, PGUSER, PGPASSWORD and
                # PGSSLMODE from the Secret, whose PGHOST is the direct host, as migrations need.
                "command": ["psql", "-X", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                            "-f", f"{SEED_MOUNT}/{SEED_KEY}"],
                "envFrom": [{"secretRef": {"name": args.get("secret_name", "database")}}],
                "env": [
                    {"name": "PGCONNECT_TIMEOUT", "value": "10"},
                    {"name": "PGAPPNAME", "value": "pgtiers-seed-data"},
                    {"name": "HOME", "value": "/tmp"},
                ],
                "volumeMounts": [{"name": "seed", "mountPath": SEED_MOUNT, "readOnly": True}],
                "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
            },
            volumes=[{"name": "seed", "configMap": {"name": files.metadata.name}}],
            tmp_size="16Mi",
            backoff_limit=2, active_deadline_seconds=300, ttl_seconds_after_finished=86400,
            parent=self, depends_on=args.get("depends_on") or [])
        self.job_name = job.metadata.name
        self.register_outputs({"job_name": self.job_name})
