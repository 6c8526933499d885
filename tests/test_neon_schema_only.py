"""A schema-only Neon branch keeps the parent's Atlas history, against a real PostgreSQL.

Neon's schema-only branch has the parent's tables but none of its rows, so Atlas's history
table arrives empty and ``atlas migrate apply`` would refuse the branch ("not clean"). The
provider copies the rows of ``keep_rows_of`` (Atlas's history by default) from the parent; these
tests bind the fake Neon's branches to real databases and check what Atlas would then do, with
``apply_migrations`` (which writes and reads the history exactly like Atlas).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import psycopg
import pulumi
import pytest

import pgserver
from components import atlas_sum
from components.db.neon import (
    ATLAS_REVISIONS_TABLE, NeonBranchDb, NeonBranchError, NeonBranchProvider, _scrub, _with_password,
    copy_rows, validate_inputs,
)
from components.migrations_files import apply_migrations, read_migrations_dir
from neon_fake import FakeNeon, OpenApiContract, reference_spec

PROJECT = "shiny-wind-028834"
MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
REVISIONS = '"atlas_schema_revisions"."atlas_schema_revisions"'
_names = itertools.count()


def fast_provider() -> NeonBranchProvider:
    return NeonBranchProvider(poll_initial=0.01, poll_max=0.03, backoff_base=0.01)


def props(**extra):
    return {"project_id": PROJECT, "branch_name": "sandbox", "database": "app", "role": "neondb_owner",
            "schema_only": True, "keep_rows_of": [ATLAS_REVISIONS_TABLE], **extra}


def all_migrations() -> dict[str, str]:
    return read_migrations_dir(MIGRATIONS)


def first_migration() -> dict[str, str]:
    """Only the oldest file, with an atlas.sum that matches it (as the directory was back then)."""
    name, raw = atlas_sum.migration_files(MIGRATIONS)[0]
    return {name: raw.decode(), atlas_sum.SUM_FILE: atlas_sum.render(atlas_sum.compute([(name, raw)]))}


def versions(files: dict[str, str]) -> list[str]:
    return sorted(n.split("_", 1)[0] for n in files if n.endswith(".sql"))


def rows(conninfo: str, query: str) -> list[tuple]:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(query).fetchall()


def table_exists(conninfo: str, name: str) -> bool:
    return rows(conninfo, f"SELECT to_regclass('{name}') IS NOT NULL")[0][0]


@pytest.fixture
def world(postgres: pgserver.PgServer, monkeypatch):
    """A fake Neon whose default branch's ``app`` database is a fresh database on the real server."""
    dbname = f"neon_parent_{next(_names)}"
    with psycopg.connect(postgres.superuser_conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{dbname}"')
    with FakeNeon(op_seconds=0.02, seed=9) as fake:
        main = fake.main = fake.add_project(PROJECT)
        main["_databases"]["app"] = fake._database(main["id"], "app", "neondb_owner")
        fake.bind_database(main["id"], "app", host=postgres.host, port=postgres.port, dbname=dbname,
                           user=pgserver.SUPERUSER, password=pgserver.SUPERUSER_PASSWORD)
        fake.parent = fake.bound_conninfo(main["id"], "app")
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", fake.url)
        yield fake


def migrated_parent(fake) -> str:
    """Parent at the first migration, with app rows a schema-only branch must not get."""
    assert apply_migrations(fake.parent, first_migration()) == versions(first_migration())
    with psycopg.connect(fake.parent) as conn:
        conn.execute("INSERT INTO accounts (email, display_name) VALUES ('a@example.com', 'A'), "
                     "('b@example.com', 'B')")
    return fake.parent


# ---- the issue: Atlas on a schema-only branch -------------------------------------------------


def test_schema_only_branch_gets_the_parents_history_and_atlas_applies_only_newer_migrations(world):
    parent = migrated_parent(world)
    created = fast_provider().create(props())
    child = world.bound_conninfo(created.id, "app")
    assert world.branches[created.id]["init_source"] == "schema-only"

    # The schema came (the fake's faithful emulation), the app rows did not, the history did.
    for table in ("accounts", "projects", "tasks"):
        assert table_exists(child, f"public.{table}")
    assert rows(child, "SELECT count(*) FROM accounts") == [(0,)]
    history = f"SELECT * FROM {REVISIONS} ORDER BY version"
    assert rows(child, history) == rows(parent, history) and len(rows(parent, history)) == 1

    # What `atlas migrate apply` does next: exactly the migration newer than the parent's.
    everything = all_migrations()
    assert apply_migrations(child, everything) == versions(everything)[1:]
    assert [r[0] for r in rows(child, f"SELECT version FROM {REVISIONS} ORDER BY 1")] == versions(everything)
    assert table_exists(child, "public.tasks_assignee_id_idx")
    assert apply_migrations(child, everything) == []
    # The parent is untouched.
    assert [r[0] for r in rows(parent, f"SELECT version FROM {REVISIONS}")] == versions(first_migration())
    assert rows(parent, "SELECT count(*) FROM accounts") == [(2,)]


def test_without_the_copy_atlas_would_refuse_the_branch(world):
    """The bug itself, so the test above is known to test something."""
    migrated_parent(world)
    created = fast_provider().create(props(keep_rows_of=[]))
    child = world.bound_conninfo(created.id, "app")
    assert rows(child, f"SELECT count(*) FROM {REVISIONS}") == [(0,)]
    with pytest.raises(Exception, match="not clean"):
        apply_migrations(child, all_migrations())


def test_rerun_adopts_without_duplicating_and_finishes_an_interrupted_copy(world):
    parent = migrated_parent(world)
    provider = fast_provider()
    first = provider.create(props())
    child = world.bound_conninfo(first.id, "app")
    apply_migrations(child, all_migrations())  # the branch moves on past the parent
    before = rows(child, f"SELECT * FROM {REVISIONS} ORDER BY version")

    again = provider.create(props())  # a retried `pulumi up`: the branch is adopted
    assert again.id == first.id and len(world.branches_named(PROJECT, "sandbox")) == 1
    assert rows(child, f"SELECT * FROM {REVISIONS} ORDER BY version") == before  # left alone

    # A run that died between creating the branch and copying: the re-run copies.
    with psycopg.connect(child) as conn:
        conn.execute(f"DELETE FROM {REVISIONS}")
    provider.create(props())
    history = f"SELECT * FROM {REVISIONS} ORDER BY version"
    assert rows(child, history) == rows(parent, history)


def test_copy_rows_is_idempotent_and_moves_identity_sequences(world, postgres):
    parent = migrated_parent(world)
    child_db = f"neon_child_{next(_names)}"
    with psycopg.connect(postgres.superuser_conninfo, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{child_db}"')
    child = parent.replace(f"dbname={parent.split('dbname=')[1].split()[0]}", f"dbname={child_db}")
    apply_migrations(child, first_migration())
    with psycopg.connect(child) as conn:
        conn.execute(f"DELETE FROM {REVISIONS}")
    tables = [ATLAS_REVISIONS_TABLE, "public.accounts", "missing.nowhere"]
    first = copy_rows(parent, child, tables, source="parent", target="child")
    assert first == {ATLAS_REVISIONS_TABLE: 1, "public.accounts": 2, "missing.nowhere": None}
    second = copy_rows(parent, child, tables, source="parent", target="child")
    assert second == {ATLAS_REVISIONS_TABLE: 0, "public.accounts": 0, "missing.nowhere": None}
    assert rows(child, "SELECT email FROM accounts ORDER BY id") == [("a@example.com",), ("b@example.com",)]
    # GENERATED ALWAYS identity: the next row does not collide with a copied id.
    with psycopg.connect(child) as conn:
        new_id = conn.execute("INSERT INTO accounts (email, display_name) VALUES ('c@x', 'C') "
                              "RETURNING id").fetchone()[0]
    assert new_id == 3


def test_parent_without_history_is_fine(world):
    # Tables but no Atlas history table yet (nobody migrated with Atlas).
    with psycopg.connect(world.parent) as conn:
        conn.execute("CREATE TABLE notes (id int PRIMARY KEY)")
        conn.execute("INSERT INTO notes VALUES (1)")
    created = fast_provider().create(props())
    child = world.bound_conninfo(created.id, "app")
    assert table_exists(child, "public.notes") and not table_exists(child, REVISIONS)
    assert rows(child, "SELECT count(*) FROM notes") == [(0,)]


def test_empty_parent_then_atlas_applies_everything(world):
    created = fast_provider().create(props())
    child = world.bound_conninfo(created.id, "app")
    assert apply_migrations(child, all_migrations()) == versions(all_migrations())


def test_parent_without_the_database_copies_nothing(world):
    # The parent lacks "other": the branch gets it new and empty, no connection is asked for.
    world.add_branch(PROJECT, "x")  # unrelated noise
    created = fast_provider().create(props(database="other"))
    assert "other" in world.branches[created.id]["_databases"]
    assert not [e for e in world.exchanges if e.path.endswith("/connection_uri")]


def test_connection_uri_traffic_follows_the_published_api(world):
    migrated_parent(world)
    fast_provider().create(props())
    asked = [e for e in world.exchanges if e.path.endswith("/connection_uri")]
    assert len(asked) == 2 and all(e.query["pooled"] == ["false"] for e in asked)
    assert {e.query["branch_id"][0] for e in asked} == {world.main["id"], *[
        b["id"] for b in world.branches_named(PROJECT, "sandbox")]}
    # Unbound branches answer Neon's own shape too (pooled and direct), and errors are described.
    with __import__("components.neon_api", fromlist=["NeonClient"]).NeonClient() as client:
        uri = client.connection_uri(PROJECT, world.main["id"], "neondb", "neondb_owner", pooled=True)
        assert re.fullmatch(r"postgresql://neondb_owner:\w+@ep-[a-z0-9-]+-pooler\.us-east-2\.aws\.neon\.tech/"
                            r"neondb\?sslmode=require", uri)
        client.request("GET", f"/projects/{PROJECT}/connection_uri", ok_statuses=(404,),
                       params={"branch_id": world.main["id"], "database_name": "nope", "role_name": "x"})
    contract = OpenApiContract(reference_spec(__file__))
    problems = [p for e in world.exchanges for p in contract.errors(e)]
    assert problems == []


# ---- errors: name the table and the branch, never a password ----------------------------------


def _after_branching(fake, action):
    """Run ``action(child_id)`` right after the fake made a schema-only branch's database."""
    original = fake._schema_only_copy

    def wrapped(parent_id, child_id):
        original(parent_id, child_id)
        action(child_id)

    fake._schema_only_copy = wrapped


def _assert_no_secrets(message: str, fake, *secrets: str) -> None:
    assert "postgresql://" not in message and "password=" not in message
    for secret in (pgserver.SUPERUSER_PASSWORD, *secrets):
        assert secret not in message
    for branch in fake.branches.values():
        for role in branch["_roles"].values():
            assert role["password"] not in message


def test_a_table_missing_on_the_branch_names_table_and_branch(world):
    migrated_parent(world)

    def drop(child_id):
        with psycopg.connect(world.bound_conninfo(child_id, "app")) as conn:
            conn.execute("DROP SCHEMA atlas_schema_revisions CASCADE")

    _after_branching(world, drop)
    with pytest.raises(NeonBranchError) as caught:
        fast_provider().create(props())
    message = str(caught.value)
    child_id = world.branches_named(PROJECT, "sandbox")[0]["id"]
    assert f"keep_rows_of: {ATLAS_REVISIONS_TABLE} exists on parent branch 'main' ({world.main['id']})" in message
    assert f"not on branch 'sandbox' ({child_id})" in message
    _assert_no_secrets(message, world)


def test_a_failing_copy_rolls_back_and_hides_credentials(world):
    migrated_parent(world)

    def break_columns(child_id):
        with psycopg.connect(world.bound_conninfo(child_id, "app")) as conn:
            conn.execute(f"ALTER TABLE {REVISIONS} RENAME COLUMN hash TO hash_renamed")

    _after_branching(world, break_columns)
    with pytest.raises(NeonBranchError) as caught:
        fast_provider().create(props(keep_rows_of=["public.accounts", ATLAS_REVISIONS_TABLE]))
    message = str(caught.value)
    assert f"copying {ATLAS_REVISIONS_TABLE} from parent branch 'main'" in message
    assert "into branch 'sandbox'" in message and 'column "hash" of relation' in message
    _assert_no_secrets(message, world)
    child = world.bound_conninfo(world.branches_named(PROJECT, "sandbox")[0]["id"], "app")
    # One transaction: the accounts rows copied before the failure were rolled back too.
    assert rows(child, "SELECT count(*) FROM accounts") == [(0,)]


def test_a_refused_login_names_the_branch_and_hides_the_password(world):
    migrated_parent(world)
    wrong = "wrong-pass-Zq93x"

    def break_parent_login(_child_id):
        world.bound[(world.main["id"], "app")]["password"] = wrong

    _after_branching(world, break_parent_login)
    with pytest.raises(NeonBranchError) as caught:
        fast_provider().create(props())
    message = str(caught.value)
    assert f"cannot connect to parent branch 'main' ({world.main['id']}) to copy {ATLAS_REVISIONS_TABLE}" in message
    assert "password authentication failed" in message
    _assert_no_secrets(message, world, wrong)


def test_missing_psycopg_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)
    with pytest.raises(NeonBranchError, match=re.escape("needs psycopg 3; add 'psycopg[binary]>=3.2,<4'")):
        copy_rows("postgresql://u:p@h/d", "postgresql://u:p@h/d", [ATLAS_REVISIONS_TABLE],
                  source="parent", target="branch 'x'")


def test_scrub_and_with_password():
    uri = "postgresql://app:s%2Fcr3t@ep-a-1.aws.neon.tech/app?sslmode=require"
    assert _scrub(f"failed for {uri} (s/cr3t)", [uri]) == "failed for *** (***)"
    assert _with_password("postgresql://app@h:5432/app?sslmode=require", "p/w@x") == \
        "postgresql://app:p%2Fw%40x@h:5432/app?sslmode=require"


# ---- keep_rows_of: validation and the component's default ---------------------------------------


@pytest.mark.parametrize("value, reason", [
    ("atlas_schema_revisions.atlas_schema_revisions", "expected a list of schema-qualified table names"),
    (["atlas_schema_revisions"], "'atlas_schema_revisions' is not allowed; expected 'schema.table'"),
    (["a.b.c"], "'a.b.c' is not allowed; expected 'schema.table'"),
    (['public.x; DROP TABLE y'], "is not allowed; expected 'schema.table'"),
    (['"public"."x"'], "is not allowed; expected 'schema.table'"),
    (["public.x", "public.x"], "'public.x' is listed twice"),
    ([f"s.t{n}" for n in range(21)], "21 tables is not allowed; expected at most 20"),
    ([5], "5 is not allowed"),
])
def test_keep_rows_of_validation(value, reason):
    result = NeonBranchProvider().check({}, props(keep_rows_of=value))
    assert [f.property for f in result.failures] == ["keep_rows_of"]
    assert result.failures[0].reason.startswith("keep_rows_of: ") and reason in result.failures[0].reason


def test_keep_rows_of_needs_schema_only_and_accepts_good_and_unknown_values():
    failure = validate_inputs(props(schema_only=False))
    assert failure and "not allowed without schema_only" in failure[0][1]
    assert validate_inputs(props(schema_only=False, keep_rows_of=[])) == []
    assert validate_inputs(props(keep_rows_of=["MySchema.Tab$1", "_s.t"])) == []
    unknown = pulumi.runtime.rpc.UNKNOWN
    assert validate_inputs(props(keep_rows_of=unknown)) == []
    assert validate_inputs(props(keep_rows_of=[unknown, "public.x"])) == []
    assert validate_inputs(props(schema_only=unknown)) == []


def test_invalid_keep_rows_of_fails_create_before_any_api_call(world):
    with pytest.raises(NeonBranchError, match="keep_rows_of: 'x' is not allowed"):
        fast_provider().create(props(keep_rows_of=["x"]))
    assert world.exchanges == []


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        if args.typ.startswith("pulumi-python:dynamic"):
            host = "ep-calm-pine-123456.us-east-2.aws.neon.tech"
            return "br-calm-pine-123456", {**args.inputs, "branch_id": "br-calm-pine-123456",
                                           "endpoint_id": "ep-calm-pine-123456", "host": host,
                                           "pooled_host": "ep-calm-pine-123456-pooler.us-east-2.aws.neon.tech",
                                           "port": 5432, "password": "s3cret"}
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}


class _Monitor(pulumi.runtime.mocks.MockMonitor):
    def __init__(self, mocks):
        super().__init__(mocks)
        self.inputs = {}

    def RegisterResource(self, request):
        if request.type.startswith("pulumi-python:dynamic"):
            from google.protobuf.json_format import MessageToDict

            self.inputs[request.name] = MessageToDict(request.object)
        return super().RegisterResource(request)


def _registered(components: dict) -> dict:
    pulumi.runtime.settings.reset_options()
    mocks = _Mocks()
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="pgtiers", stack="sandbox", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def program():
        dbs = [NeonBranchDb(name, {"project_id": PROJECT, "branch_name": name, **args})
               for name, args in components.items()]
        return pulumi.Output.all(*[db.branch_id for db in dbs])

    program()
    return {name.removesuffix("-branch"): inputs.get("keep_rows_of") for name, inputs in monitor.inputs.items()}


def test_component_defaults_keep_rows_of_from_schema_only():
    seen = _registered({
        "so": {"schema_only": True},
        "full": {},
        "so-output": {"schema_only": pulumi.Output.from_input(True)},
        "full-output": {"schema_only": pulumi.Output.from_input(False)},
        "mine": {"schema_only": True, "keep_rows_of": ["public.feature_flags"]},
    })
    assert seen == {"so": [ATLAS_REVISIONS_TABLE], "full": [], "so-output": [ATLAS_REVISIONS_TABLE],
                    "full-output": [], "mine": ["public.feature_flags"]}


def test_component_rejects_bad_keep_rows_of():
    pulumi.runtime.settings.reset_options()
    pulumi.runtime.set_mocks(_Mocks(), project="pgtiers", stack="sandbox", preview=False)
    with pytest.raises(ValueError, match=r"NeonBranchDb bad: keep_rows_of: 'revisions' is not allowed"):
        NeonBranchDb("bad", {"project_id": PROJECT, "branch_name": "b", "schema_only": True,
                             "keep_rows_of": ["revisions"]})
