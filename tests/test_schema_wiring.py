"""Migrations, seed and connectivity check in every stack: after the database and the Secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from components.config import POSTGRES_IMAGES, ConfigError
from components.fakes import FAKE_PASSWORD
from components.plan import evaluate, iter_secret_values, plan_document, stack_config

from conftest import PROJECT

STACKS = sorted(p.name.split(".")[1] for p in PROJECT.glob("Pulumi.*.yaml"))


@pytest.fixture(scope="module", params=[(s, p) for s in STACKS for p in (False, True)],
                ids=lambda sp: f"{sp[0]}-{'preview' if sp[1] else 'up'}")
def stack(request):
    name, preview = request.param
    return evaluate(name, preview=preview)


def _secret_resources(ev):
    """Whatever writes the app Secret on this tier: AppDatabaseSecret or the External Secrets sync."""
    owners = [r.urn for r in ev.resources if r.type in ("pgtiers:index:AppDatabaseSecret", "pgtiers:index:DatabaseSecretSync")]
    assert owners, "no app Secret writer"
    found = [r for r in ev.resources if r.custom and any(r.parent == o for o in owners)
             and r.type in ("kubernetes:core/v1:Secret", "kubernetes:external-secrets.io/v1:ExternalSecret")]
    assert found, "the Secret writer wrote nothing"
    return found


def _database_resources(ev):
    tiers = ("pgtiers:index:LocalPostgres", "pgtiers:index:NeonBranchDb", "pgtiers:index:AuroraServerlessDb",
             "pgtiers:index:CnpgCluster", "pgtiers:index:AckRdsInstance")
    owner = next(r for r in ev.resources if r.type in tiers)
    data_types = ("kubernetes:apps/v1:StatefulSet", "pulumi-python:dynamic:NeonBranch", "aws:rds/cluster:Cluster",
                  "aws:rds/clusterInstance:ClusterInstance", "kubernetes:postgresql.cnpg.io/v1:Cluster",
                  "kubernetes:rds.services.k8s.aws/v1alpha1:DBInstance")
    found = [r for r in ev.resources if r.type in data_types and ev._descends(r, owner.urn)]
    assert found, f"no data-bearing resource under {owner.type}"
    return found


def test_migrations_job_runs_after_the_database_and_the_secret(stack):
    job = stack.one("kubernetes:batch/v1:Job", "schema-job")
    waits_for = stack.transitive_dependencies(job.urn)
    for r in _database_resources(stack) + _secret_resources(stack):
        assert r.urn in waits_for, f"{job.name} does not wait for {r.type} {r.name}"


def test_migrations_job_reads_the_url_from_the_secret_only(stack):
    job = stack.one("kubernetes:batch/v1:Job", "schema-job")
    text = json.dumps(plan_document(stack))
    assert FAKE_PASSWORD not in text
    env = job.inputs["spec"]["template"]["spec"]["containers"][0]["env"]
    url = next(e for e in env if e["name"] == "DATABASE_URL_DIRECT")
    assert url["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL_DIRECT"
    image = job.inputs["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.startswith("arigaio/atlas:") and image.split(":")[1][0].isdigit()


def test_connectivity_check_on_kind_stacks_only_by_default(stack):
    checks = stack.by_type("pgtiers:index:ConnectivityCheck")
    kind = bool(stack.by_type("pgtiers:index:KindCluster"))
    assert bool(checks) == kind
    for check in checks:
        job = next(r for r in stack.resources if r.parent == check.urn and r.type == "kubernetes:batch/v1:Job")
        waits_for = stack.transitive_dependencies(job.urn)
        assert all(s.urn in waits_for for s in _secret_resources(stack))


def test_sandbox_seeds_after_migrations_and_keeps_the_url_secret():
    ev = evaluate("sandbox")
    seed = ev.one("kubernetes:batch/v1:Job", "seed-job")
    schema = ev.one("kubernetes:batch/v1:Job", "schema-job")
    assert schema.urn in ev.transitive_dependencies(seed.urn)
    branch = ev.one("pulumi-python:dynamic:NeonBranch")
    assert branch.inputs["schema_only"] is True and branch.inputs["ttl_seconds"] <= 24 * 3600
    assert type(ev.outputs["databaseUrl"]).__name__ == "Secret"
    container = seed.inputs["spec"]["template"]["spec"]["containers"][0]
    command = container["command"]
    assert command[0] == "psql" and "ON_ERROR_STOP=1" in command and "--single-transaction" in command
    # No connection string in the process's arguments (the node shows them in /proc/<pid>/cmdline):
    # psql connects with the Secret's PG* keys, which name the direct host.
    assert "args" not in container
    for arg in command:
        assert "$(" not in arg and "://" not in arg and "DATABASE_URL" not in arg and "PGPASSWORD" not in arg, arg
    assert container["envFrom"] == [{"secretRef": {"name": "database"}}]
    assert not any(e.get("valueFrom") for e in container["env"])  # nothing else from any Secret
    assert FAKE_PASSWORD not in json.dumps(seed.inputs)


def test_migrations_can_be_turned_off_and_the_check_on():
    config = stack_config("prod")
    config["pgtiers:migrations"] = json.dumps({"enabled": False})
    app = json.loads(config.get("pgtiers:app", "{}"))
    config["pgtiers:app"] = json.dumps({**app, "connectivityCheck": True})
    ev = evaluate("prod", config=config)
    assert not ev.by_type("pgtiers:index:AtlasMigrations")
    assert ev.by_type("pgtiers:index:ConnectivityCheck")


@pytest.mark.parametrize("value,message", [
    ({"mode": "helm"}, "pgtiers:migrations.mode: 'helm' is not one of job, operator"),
    ({"dir": "../elsewhere"}, "pgtiers:migrations.dir: '../elsewhere' is not a path inside the project"),
    ({"enable": True}, "pgtiers:migrations.enable: unknown key; allowed keys here: enabled, mode, dir, seed"),
])
def test_bad_migration_settings(value, message):
    config = stack_config("dev")
    config["pgtiers:migrations"] = json.dumps(value)
    with pytest.raises(ConfigError) as caught:
        evaluate("dev", config=config)
    assert str(caught.value).startswith(message)


def _copy_project(tmp_path: Path) -> Path:
    import shutil

    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        shutil.copy(PROJECT / name, tmp_path / name)
    shutil.copytree(PROJECT / "migrations", tmp_path / "migrations")
    return tmp_path


def _job_names(project: Path) -> tuple[str, str]:
    ev = evaluate("dev", project_dir=project)
    job = ev.one("kubernetes:batch/v1:Job", "schema-job")
    files = ev.one("kubernetes:core/v1:ConfigMap", "schema-files")
    return job.inputs["metadata"]["name"], files.inputs["metadata"]["name"]


def test_one_changed_byte_renames_the_migrations_job_in_the_plan(tmp_path):
    from components.atlas_sum import write

    project = _copy_project(tmp_path)
    before = _job_names(project)
    assert _job_names(project) == before  # nothing changed: the same Job, so no new run
    first = sorted((project / "migrations").glob("*.sql"))[0]
    first.write_bytes(first.read_bytes().replace(b"text NOT NULL", b"text  NOT NULL", 1))
    write(project / "migrations")
    after = _job_names(project)
    assert after[0] != before[0] and after[1] != before[1]


def test_an_edited_migration_without_a_new_sum_stops_the_plan(tmp_path):
    project = _copy_project(tmp_path)
    first = sorted((project / "migrations").glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- tampered\n")
    with pytest.raises(ConfigError, match="atlas.sum") as caught:
        evaluate("dev", project_dir=project)
    assert "\n" not in str(caught.value)


# --- run keys: a new database behind the same Secret runs the Jobs again -----------------------

JOB = "kubernetes:batch/v1:Job"


def _copy_dev_with_seed(tmp_path: Path, **database) -> Path:
    """The dev stack in tmp_path, seeding too (so all three Jobs exist), with ``database`` overrides."""
    import shutil

    project = tmp_path
    project.mkdir(parents=True)
    _copy_project(project)
    shutil.copytree(PROJECT / "seed", project / "seed")
    stack_file = project / "Pulumi.dev.yaml"
    doc = yaml.safe_load(stack_file.read_text())
    doc["config"]["pgtiers:database"].update(database)
    doc["config"]["pgtiers:migrations"] = {"seed": "seed/sandbox.sql"}
    stack_file.write_text(yaml.safe_dump(doc))
    return project


def _all_job_names(project: Path) -> dict[str, str]:
    ev = evaluate("dev", project_dir=project)
    names = {r.name: r.inputs["metadata"]["name"] for r in ev.by_type(JOB)}
    assert set(names) == {"schema-job", "seed-job", "dbcheck-app-job"}
    secrets = set(iter_secret_values(ev))
    for name in names.values():  # derived from the connection, but unsecret: a plain, valid name
        assert isinstance(name, str) and name not in secrets and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
        assert len(name) <= 63
    names["schema-files"] = ev.one("kubernetes:core/v1:ConfigMap", "schema-files").inputs["metadata"]["name"]
    names["seed-sql"] = ev.one("kubernetes:core/v1:ConfigMap", "seed-sql").inputs["metadata"]["name"]
    return names


@pytest.mark.parametrize("change", [{"username": "app2"}, {"namespace": "pgtiers-db2"}],
                         ids=["username", "host"])
def test_a_new_database_behind_the_secret_renames_every_job_but_no_config_map(tmp_path, change):
    before = _all_job_names(_copy_dev_with_seed(tmp_path / "a"))
    assert _all_job_names(_copy_dev_with_seed(tmp_path / "b")) == before  # nothing changed: no new run
    after = _all_job_names(_copy_dev_with_seed(tmp_path / "c", **change))
    for job in ("schema-job", "seed-job", "dbcheck-app-job"):
        assert after[job] != before[job], job
        assert len(after[job]) == len(before[job]), job
    assert after["schema-files"] == before["schema-files"]  # the same files: the same immutable ConfigMap
    assert after["seed-sql"] == before["seed-sql"]


# --- the psql client of the seed and the check: any valid server version -----------------------


def _prod_with(database: dict) -> dict[str, str]:
    config = stack_config("prod")
    config["pgtiers:database"] = json.dumps({**json.loads(config["pgtiers:database"]), **database})
    app = json.loads(config.get("pgtiers:app", "{}"))
    config["pgtiers:app"] = json.dumps({**app, "connectivityCheck": True})
    config["pgtiers:migrations"] = json.dumps({"seed": "seed/sandbox.sql"})
    return config


@pytest.mark.parametrize("version,major", [
    ("16.4", 16),  # Aurora lets a stack pin a minor: the psql of its major
    (13, max(POSTGRES_IMAGES)),  # no pinned 13: the newest psql, which talks to older servers
])
def test_any_valid_aurora_version_gets_a_psql_client(version, major):
    ev = evaluate("prod", config=_prod_with({"version": version}))
    for job in ("seed-job", "dbcheck-app-job"):
        container = ev.one(JOB, job).inputs["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == POSTGRES_IMAGES[major], job
