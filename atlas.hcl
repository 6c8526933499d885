# Atlas project file: one env per pgtiers tier, all sharing one migration directory.
#
#   atlas migrate diff <name> --env local   # write a new migration from a schema change
#   atlas migrate apply --env neon          # apply by hand, from a laptop or CI
#
# The AtlasMigrations Job does not read this file: it mounts its own one-env project file
# (ATLAS_CONFIG in components/migrations.py, same URL, directory and revisions schema) and runs
# `atlas migrate apply --config file:///config/atlas.hcl --env pgtiers`.
#
# Every env reads DATABASE_URL_DIRECT from the environment: the direct (non-pooled) URL from the
# app Secret. Migrations must not go through PgBouncer in transaction mode (Neon's -pooler host),
# because Atlas holds a session advisory lock and sets search_path for the whole run.
# The URL never lives in this file, so it never lands in git, in a Job spec or in a process's
# arguments (`--url` would put it in /proc/<pid>/cmdline).
#
# `dev` is the scratch database `migrate diff` and `migrate lint` replay the directory on; it
# runs the same PostgreSQL major as the tiers (18) and is bound to the public schema, so generated
# migrations use unqualified names and apply to whatever schema the target URL selects.
# Revisions always go to the atlas_schema_revisions schema, whether or not a URL names a schema.

env "local" {
  # Postgres inside kind (LocalPostgres): the dev stack.
  url = getenv("DATABASE_URL_DIRECT")
  dev = "docker://postgres/18/dev?search_path=public"
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

env "neon" {
  # A Neon branch per PR / agent run, and the sandbox stack (NeonBranchDb).
  url = getenv("DATABASE_URL_DIRECT")
  dev = "docker://postgres/18/dev?search_path=public"
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

env "aurora" {
  # Aurora PostgreSQL Serverless v2 (AuroraServerlessDb): staging and prod.
  url = getenv("DATABASE_URL_DIRECT")
  dev = "docker://postgres/18/dev?search_path=public"
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

env "cnpg" {
  # CloudNativePG on EKS (CnpgCluster): the URL points at the <cluster>-rw service.
  url = getenv("DATABASE_URL_DIRECT")
  dev = "docker://postgres/18/dev?search_path=public"
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}

env "ack-rds" {
  # RDS declared through the AWS ACK controller (AckRdsInstance): the gitops stack.
  url = getenv("DATABASE_URL_DIRECT")
  dev = "docker://postgres/18/dev?search_path=public"
  migration {
    dir              = "file://migrations"
    revisions_schema = "atlas_schema_revisions"
  }
}
