"""NeonBranchProvider against the loopback fake, and NeonBranchDb under the SDK's mocks."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import dill
import pulumi
import pytest
from pulumi.dynamic.dynamic import serialize_provider

from components.connection import DatabaseConnection
from components.db.neon import (
    MARK_KEY, NeonBranchDb, NeonBranchError, NeonBranchProvider, pooled_host_for, validate_inputs,
)
from components.neon_api import NeonOperationFailed
from neon_fake import FakeNeon

PROJECT = "shiny-wind-028834"
HOST = re.compile(r"ep-[a-z]+-[a-z]+-\d{6}\.us-east-2\.aws\.neon\.tech")


def fast_provider() -> NeonBranchProvider:
    return NeonBranchProvider(poll_initial=0.01, poll_max=0.03, backoff_base=0.01)


@pytest.fixture
def fake(monkeypatch):
    with FakeNeon(op_seconds=0.03, seed=5) as server:
        server.main = server.add_project(PROJECT)
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", server.url)
        yield server


def props(**extra):
    return {"project_id": PROJECT, "branch_name": "pr-7", "database": "app", "role": "neondb_owner",
            "ttl_seconds": 3600, **extra}


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# ---- create ------------------------------------------------------------------------------


def test_create_returns_a_ready_branch_with_its_own_password_and_both_urls(fake):
    before = datetime.now(timezone.utc)
    result = fast_provider().create(props(min_cu=0.25, max_cu=2, suspend_timeout_seconds=300))
    outs = result.outs
    branch = fake.branches[result.id]
    assert outs["branch_id"] == result.id and branch["name"] == "pr-7"
    assert branch["current_state"] == "ready" and branch["parent_id"] == fake.main["id"]
    assert branch["_annotation"] == {MARK_KEY: "true", "pgtiers-parent": fake.main["id"], "pgtiers-pr": "7"}
    assert HOST.fullmatch(outs["host"])
    assert outs["pooled_host"] == outs["host"].replace(".", "-pooler.", 1)
    # The inherited role got a new password: the PR URL never carries the parent's.
    assert outs["password"] == fake.role_password(result.id, "neondb_owner")
    assert outs["password"] != fake.role_password(fake.main["id"], "neondb_owner")
    conn = DatabaseConnection(host=outs["host"], port=5432, database="app", username="neondb_owner",
                              password=outs["password"], pooled_host=outs["pooled_host"])
    assert outs["database_url"] == conn.url() and "-pooler." in outs["database_url"]
    assert outs["direct_url"] == conn.direct_url() and "-pooler." not in outs["direct_url"]
    assert len({outs["password"], outs["database_url"], outs["direct_url"]}) == 3
    assert "app" in branch["_databases"] and branch["_databases"]["app"]["owner_name"] == "neondb_owner"
    endpoint = fake.endpoints[outs["endpoint_id"]]
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"],
            endpoint["suspend_timeout_seconds"], endpoint["type"]) == (0.25, 2, 300, "read_write")
    expires = parse(outs["expires_at"])
    assert before + timedelta(seconds=3590) <= expires <= datetime.now(timezone.utc) + timedelta(seconds=3601)
    assert not any(fake._busy(b) for b in fake.branches)  # every operation finished before returning


def test_create_makes_a_new_role_when_the_parent_lacks_it(fake):
    outs = fast_provider().create(props(role="app")).outs
    branch = fake.branches[outs["branch_id"]]
    assert outs["password"] == fake.role_password(outs["branch_id"], "app")
    assert "app" not in fake.main["_roles"] and branch["_databases"]["app"]["owner_name"] == "app"


def test_second_create_adopts_the_branch_and_resets_its_password(fake):
    provider = fast_provider()
    first = provider.create(props())
    second = provider.create(props())
    assert second.id == first.id and len(fake.branches_named(PROJECT, "pr-7")) == 1
    assert second.outs["password"] != first.outs["password"]
    assert second.outs["password"] == fake.role_password(first.id, "neondb_owner")
    assert second.outs["endpoint_id"] == first.outs["endpoint_id"]


def test_adoption_creates_a_missing_compute(fake):
    provider = fast_provider()
    first = provider.create(props())
    del fake.endpoints[first.outs["endpoint_id"]]
    second = provider.create(props())
    assert second.outs["endpoint_id"] != first.outs["endpoint_id"]
    assert fake.endpoints[second.outs["endpoint_id"]]["branch_id"] == first.id


def test_parent_branch_by_name_or_id_and_schema_only(fake):
    dev = fake.add_branch(PROJECT, "dev", parent_id=fake.main["id"])
    provider = fast_provider()
    by_name = provider.create(props(branch_name="a", parent_branch="dev"))
    by_id = provider.create(props(branch_name="b", parent_branch=dev["id"]))
    assert fake.branches[by_name.id]["parent_id"] == dev["id"] == fake.branches[by_id.id]["parent_id"]
    schema = provider.create(props(branch_name="c", schema_only=True))
    assert fake.branches[schema.id]["init_source"] == "schema-only"


@pytest.mark.parametrize("name, arrange, message", [
    ("main", lambda f: None, "branch_name: 'main' is the project's default branch"),
    ("main-copy", lambda f: f.add_branch(PROJECT, "main-copy", protected=True, annotation={MARK_KEY: "true"}),
     "'main-copy' is the project's protected branch"),
    ("by-hand", lambda f: f.add_branch(PROJECT, "by-hand"), "'by-hand' (br-"),
    ("twice", lambda f: [f.add_branch(PROJECT, "twice", annotation={MARK_KEY: "true"}) for _ in range(2)],
     "2 branches are named 'twice'"),
])
def test_create_never_takes_over_a_branch_that_is_not_its_own(fake, name, arrange, message):
    arrange(fake)
    before = {k: dict(v["_roles"]["neondb_owner"]) for k, v in fake.branches.items() if "neondb_owner" in v["_roles"]}
    with pytest.raises(NeonBranchError, match=re.escape(message)):
        fast_provider().create(props(branch_name=name))
    after = {k: dict(v["_roles"]["neondb_owner"]) for k, v in fake.branches.items() if "neondb_owner" in v["_roles"]}
    assert after == before  # no password was reset anywhere


def test_adoption_refuses_a_branch_with_another_parent_or_kind(fake):
    dev = fake.add_branch(PROJECT, "dev", parent_id=fake.main["id"])
    provider = fast_provider()
    provider.create(props())
    with pytest.raises(NeonBranchError, match=f"not from parent_branch 'dev' \\({dev['id']}\\)"):
        provider.create(props(parent_branch="dev"))
    with pytest.raises(NeonBranchError, match="schema_only: True does not match"):
        provider.create(props(schema_only=True))


def test_unknown_parent_is_a_clear_error(fake):
    with pytest.raises(NeonBranchError, match="parent_branch: 'nope' is neither the id nor the name"):
        fast_provider().create(props(parent_branch="nope"))
    assert fake.branches_named(PROJECT, "pr-7") == []


def test_failed_operation_fails_create(fake):
    fake.fail_actions.add("start_compute")
    with pytest.raises(NeonOperationFailed, match="start_compute .* ended failed"):
        fast_provider().create(props())


# ---- check / diff ----------------------------------------------------------------------------


@pytest.mark.parametrize("key, value, allowed", [
    ("ttl_seconds", 31 * 86400, "expected whole seconds from 1 to 2592000 (30 days"),
    ("ttl_seconds", 0, "expected whole seconds"),
    ("ttl_seconds", 60.5, "expected whole seconds"),
    ("min_cu", 0.1, "at least 0.25"),
    ("suspend_timeout_seconds", 30, "-1 (never), 0 (Neon's default) or 60-604800"),
    ("schema_only", "yes", "expected true or false"),
    ("project_id", "Not A Project", "1-60 characters of a-z"),
    ("api_url", "console.neon.tech", "http(s) URL"),
])
def test_check_names_key_value_and_what_is_allowed(key, value, allowed):
    result = NeonBranchProvider().check({}, props(**{key: value}))
    assert [f.property for f in result.failures] == [key]
    reason = result.failures[0].reason
    assert reason.startswith(f"{key}: {value!r} is not allowed") and allowed in reason


def test_check_applies_defaults_and_accepts_engine_floats():
    result = NeonBranchProvider().check({}, {"project_id": PROJECT, "branch_name": "pr-1",
                                             "ttl_seconds": 3600.0, "min_cu": 0.5, "max_cu": 1.0})
    assert result.failures == []
    assert result.inputs["database"] == "app" and result.inputs["role"] == "app"
    assert result.inputs["schema_only"] is False
    missing = NeonBranchProvider().check({}, {"min_cu": 2, "max_cu": 1})
    assert {f.property for f in missing.failures} == {"project_id", "branch_name", "min_cu"}


def test_check_skips_unknown_values_during_preview():
    unknown = pulumi.runtime.rpc.UNKNOWN
    assert NeonBranchProvider().check({}, props(branch_name=unknown, ttl_seconds=unknown)).failures == []


def test_diff_replaces_on_identity_and_updates_in_place_otherwise():
    provider = NeonBranchProvider()
    old = {**props(), "branch_id": "br-x"}
    same = provider.diff("br-x", old, props())
    assert same.changes is False and same.replaces == []
    renamed = provider.diff("br-x", old, props(branch_name="pr-8"))
    assert renamed.replaces == ["branch_name"] and renamed.delete_before_replace is False
    new_db = provider.diff("br-x", old, props(database="other"))
    # Same name: the new branch would adopt the old one, so the old must go first.
    assert new_db.replaces == ["database"] and new_db.delete_before_replace is True
    ttl = provider.diff("br-x", old, props(ttl_seconds=7200, max_cu=2))
    assert ttl.changes is True and ttl.replaces == []


# ---- read / update / delete ----------------------------------------------------------------


def test_read_refreshes_and_notices_expiry_and_deletion(fake):
    provider = fast_provider()
    created = provider.create(props(ttl_seconds=60))
    read = provider.read(created.id, created.outs)
    assert read.id == created.id and read.outs["password"] == created.outs["password"]
    assert read.outs["direct_url"] == created.outs["direct_url"]
    fake.advance(61)  # TTL passes: Neon deletes the branch
    assert provider.read(created.id, created.outs).id == ""
    other = provider.create(props(branch_name="pr-9"))
    fake._remove_branch(other.id)  # deleted by hand
    assert provider.read(other.id, other.outs).id == ""


def test_read_treats_an_expired_but_not_yet_deleted_branch_as_gone(monkeypatch):
    with FakeNeon(op_seconds=0.01, expiry_lag=3600) as fake:
        fake.add_project(PROJECT)
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", fake.url)
        provider = fast_provider()
        created = provider.create(props(ttl_seconds=60))
        past = datetime.now(timezone.utc) - timedelta(seconds=5)
        fake.branches[created.id]["expires_at"] = past.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert fake.branches_named(PROJECT, "pr-7")  # still listed: Neon's expiry job is late
        assert provider.read(created.id, created.outs).id == ""


def test_update_changes_ttl_and_compute_in_place(fake):
    provider = fast_provider()
    created = provider.create(props(min_cu=0.25, max_cu=1))
    updated = provider.update(created.id, created.outs, props(ttl_seconds=86400, min_cu=0.5, max_cu=4))
    branch = fake.branches[created.id]
    assert updated.outs["expires_at"] == branch["expires_at"] != created.outs["expires_at"]
    assert parse(branch["expires_at"]) > datetime.now(timezone.utc) + timedelta(hours=23)
    endpoint = fake.endpoints[created.outs["endpoint_id"]]
    assert (endpoint["autoscaling_limit_min_cu"], endpoint["autoscaling_limit_max_cu"]) == (0.5, 4)
    assert updated.outs["password"] == created.outs["password"] and updated.outs["ttl_seconds"] == 86400


def test_update_and_delete_refuse_default_and_protected_branches(fake):
    provider = fast_provider()
    created = provider.create(props())
    fake.branches[created.id]["protected"] = True
    with pytest.raises(NeonBranchError, match="refusing to change branch 'pr-7'.*protected"):
        provider.update(created.id, created.outs, props(ttl_seconds=7200))
    with pytest.raises(NeonBranchError, match="refusing to delete branch 'pr-7'.*protected"):
        provider.delete(created.id, created.outs)
    with pytest.raises(NeonBranchError, match="refusing to delete branch 'main'.*default"):
        provider.delete(fake.main["id"], {**created.outs, "branch_id": fake.main["id"]})
    assert created.id in fake.branches and fake.main["id"] in fake.branches


@pytest.mark.parametrize("gone_status", [404, 204])
def test_delete_twice_succeeds(monkeypatch, gone_status):
    with FakeNeon(op_seconds=0.02, gone_delete_status=gone_status) as fake:
        fake.add_project(PROJECT)
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", fake.url)
        provider = fast_provider()
        created = provider.create(props())
        provider.delete(created.id, created.outs)
        provider.delete(created.id, created.outs)
        assert created.id not in fake.branches and fake.branches_named(PROJECT, "pr-7") == []


# ---- pickling ----------------------------------------------------------------------------------


def test_provider_round_trips_through_pulumis_serializer_and_state_is_plain(fake):
    provider = NeonBranchProvider(deadline=30, poll_initial=0.01, poll_max=0.03, backoff_base=0.01)
    revived = dill.loads(__import__("base64").b64decode(serialize_provider(provider)))
    assert type(revived).__name__ == "NeonBranchProvider"
    assert vars(revived) == vars(provider)
    assert all(isinstance(v, float) for v in vars(revived).values())
    outs = revived.create(props()).outs
    assert json.loads(json.dumps(outs)) == outs  # only plain JSON values go into the state


def test_api_key_is_never_part_of_the_pickled_provider(fake):
    blob = __import__("base64").b64decode(serialize_provider(fast_provider()))
    assert b"test-key" not in blob


# ---- the "done when" -------------------------------------------------------------------


def test_done_when_flaky_slow_api_still_gives_a_ready_branch_and_cleans_up(monkeypatch):
    with FakeNeon(op_seconds=1.0, locked_rate=0.3, burst_rate=0.08, burst_length=3, seed=42) as fake:
        fake.add_project(PROJECT)
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", fake.url)
        provider = NeonBranchProvider(poll_initial=0.05, poll_max=0.2, backoff_base=0.05)
        first = provider.create(props())
        outs = first.outs
        assert fake.branches[first.id]["current_state"] == "ready"
        assert len({outs["password"], outs["database_url"], outs["direct_url"]}) == 3
        assert outs["expires_at"] and "-pooler." in outs["database_url"] and "-pooler." not in outs["direct_url"]
        second = provider.create(props())
        assert second.id == first.id
        provider.delete(first.id, second.outs)
        provider.delete(first.id, second.outs)
        statuses = [e.status for e in fake.exchanges]
        assert 423 in statuses and 429 in statuses  # the flakiness really happened
        marked = [b for b in fake.branches.values() if b["_annotation"].get(MARK_KEY)]
        assert marked == []


# ---- the component under the SDK's mocks -------------------------------------------------------


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        if args.typ.startswith("pulumi-python:dynamic"):
            host = "ep-calm-pine-123456.us-east-2.aws.neon.tech"
            return "br-calm-pine-123456", {**args.inputs, "branch_id": "br-calm-pine-123456",
                                           "endpoint_id": "ep-calm-pine-123456", "host": host,
                                           "pooled_host": pooled_host_for(host, "ep-calm-pine-123456"),
                                           "port": 5432, "expires_at": "2030-01-01T00:00:00Z",
                                           "password": "s3cret", "database_url": "x", "direct_url": "y"}
        return f"{args.name}-id", args.inputs

    def call(self, args):
        return {}


class _Monitor(pulumi.runtime.mocks.MockMonitor):
    def __init__(self, mocks):
        super().__init__(mocks)
        self.requests = []

    def RegisterResource(self, request):
        self.requests.append(request)
        return super().RegisterResource(request)


def _run_component(args):
    pulumi.runtime.settings.reset_options()
    mocks = _Mocks()
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="pgtiers", stack="ci", preview=False, monitor=monitor)
    collected = {}

    @pulumi.runtime.test
    def program():
        db = NeonBranchDb("pr-db", args)
        # Collect inside apply, assert outside: an assert in apply can pass vacuously.
        return pulumi.Output.all(db.connection, db.connection.is_secret(), db.password.is_secret(),
                                 db.database_url.is_secret()).apply(
            lambda v: collected.update(connection=v[0], secret=list(v[1:])))

    program()
    return monitor, collected


def test_component_registers_a_secret_child_and_a_secret_connection():
    monitor, collected = _run_component({"project_id": PROJECT, "branch_name": "pr-7", "ttl_seconds": 3600})
    by_type = {r.type: r for r in monitor.requests}
    component = by_type["pgtiers:index:NeonBranchDb"]
    child = next(r for t, r in by_type.items() if t.startswith("pulumi-python:dynamic"))
    assert child.parent.endswith("pgtiers:index:NeonBranchDb::pr-db") and child.name == "pr-db-branch"
    assert set(child.additionalSecretOutputs) == {"password", "database_url", "direct_url"}
    assert component.type == "pgtiers:index:NeonBranchDb"
    conn = collected["connection"]
    assert conn.url().startswith("postgresql://app:s3cret@ep-calm-pine-123456-pooler.us-east-2")
    assert "-pooler" not in conn.direct_url()
    assert collected["secret"] == [True, True, True]


def test_component_rejects_bad_input_before_registering_anything():
    pulumi.runtime.settings.reset_options()
    mocks = _Mocks()
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="pgtiers", stack="ci", preview=False, monitor=monitor)
    with pytest.raises(ValueError, match=r"NeonBranchDb pr-db: ttl_seconds: 9999999 is not allowed; expected whole"):
        NeonBranchDb("pr-db", {"project_id": PROJECT, "branch_name": "pr-7", "ttl_seconds": 9999999})
    with pytest.raises(ValueError, match="unknown argument 'ttl'"):
        NeonBranchDb("pr-db2", {"project_id": PROJECT, "branch_name": "pr-7", "ttl": 5})
    assert [r.type for r in monitor.requests if r.type.startswith("pulumi-python")] == []


def test_validate_inputs_accepts_a_full_valid_set():
    assert validate_inputs(props(parent_branch="main", schema_only=False, min_cu=0.25, max_cu=8,
                                 suspend_timeout_seconds=-1, api_url="http://127.0.0.1:1/api/v2")) == []
