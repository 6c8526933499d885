"""The sweeper's choices on a seeded fake: only marked, unprotected, finished branches go."""

from __future__ import annotations

import io
from datetime import datetime, timedelta, timezone

import pytest

from components.db.neon import MARK_KEY, PR_KEY, NeonBranchProvider
from components.neon_api import NeonClient
from components.neon_sweep import decide, main, parse_open_prs
from neon_fake import FakeNeon

PROJECT = "shiny-wind-028834"


@pytest.fixture
def world(monkeypatch):
    """main (default), and a mix of marked / unmarked / protected / expired / parent branches."""
    with FakeNeon(op_seconds=0.01, seed=9, expiry_lag=3600) as fake:
        main_branch = fake.add_project(PROJECT)
        now = datetime.now(timezone.utc)
        mark = lambda pr=None: {MARK_KEY: "true", **({PR_KEY: str(pr)} if pr else {})}  # noqa: E731
        b = {
            "open": fake.add_branch(PROJECT, "pr-1", annotation=mark(1)),
            "closed": fake.add_branch(PROJECT, "pr-2", annotation=mark(2)),
            "expired": fake.add_branch(PROJECT, "pr-3", annotation=mark(3), expires_at=now - timedelta(minutes=5)),
            "hand": fake.add_branch(PROJECT, "pr-4"),  # named like ours, but not marked
            "protected": fake.add_branch(PROJECT, "pr-5", annotation=mark(5), protected=True),
            "parent": fake.add_branch(PROJECT, "pr-6", annotation=mark(6)),
            "agent": fake.add_branch(PROJECT, "agent-run", annotation=mark()),
        }
        b["child"] = fake.add_branch(PROJECT, "experiment", parent_id=b["parent"]["id"])
        b["main"] = main_branch
        monkeypatch.setenv("NEON_API_KEY", "test-key")
        monkeypatch.setenv("NEON_API_URL", fake.url)
        monkeypatch.delenv("PGTIERS_OPEN_PRS", raising=False)
        fake.b = b
        yield fake


def run(*argv):
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def surviving(fake):
    return {b["name"] for b in fake.branches.values()}


def test_lists_without_deleting_unless_yes(world):
    before = surviving(world)
    code, out, _ = run("--project-id", PROJECT, "--open-prs", "1,6")
    assert code == 0 and surviving(world) == before
    assert "would delete" in out and "2 branch(es) would be deleted" in out


def test_deletes_closed_pr_and_expired_branches_only(world):
    code, out, _ = run("--project-id", PROJECT, "--open-prs", "1, 6", "--yes")
    assert code == 0
    gone = {"pr-2", "pr-3"}
    assert surviving(world) == {"main", "pr-1", "pr-4", "pr-5", "pr-6", "agent-run", "experiment"}
    for name in gone:
        assert name in out
    lines = {line.split()[0] + " " + line.split("'")[1] for line in out.splitlines() if "'" in line}
    assert "keep main" in lines and "keep pr-4" in lines and "keep pr-5" in lines


def test_without_open_pr_list_only_expired_branches_go(world):
    code, _, _ = run("--project-id", PROJECT, "--yes")
    assert code == 0 and "pr-3" not in surviving(world) and "pr-2" in surviving(world)


def test_open_prs_from_the_environment(world, monkeypatch):
    monkeypatch.setenv("PGTIERS_OPEN_PRS", "2")
    run("--project-id", PROJECT, "--yes")
    # pr-1 closed per the env; pr-6 is closed too but still has a child branch.
    assert {"pr-1", "pr-3"}.isdisjoint(surviving(world)) and {"pr-2", "pr-6"} <= surviving(world)


def test_reasons_per_branch(world):
    with NeonClient("test-key", world.url) as client:
        branches, annotations = client.list_branches(PROJECT)
    verdicts = {v.name: v for v in decide(branches, annotations, {1})}
    assert verdicts["main"].reason == "default branch"
    assert verdicts["pr-5"].reason == "protected branch"
    assert verdicts["pr-4"].reason == "not created by pgtiers"
    assert verdicts["pr-6"].reason == "has child branches"
    assert verdicts["pr-3"].delete and verdicts["pr-3"].reason.startswith("TTL passed")
    assert verdicts["pr-2"].delete and verdicts["pr-2"].reason == "PR #2 is not open"
    assert not verdicts["agent-run"].delete and not verdicts["pr-1"].delete


def test_a_branch_the_provider_made_is_swept_once_its_pr_closes(world):
    created = NeonBranchProvider(poll_initial=0.01, poll_max=0.02).create(
        {"project_id": PROJECT, "branch_name": "pr-42", "database": "app", "role": "app"})
    run("--project-id", PROJECT, "--open-prs", "42", "--yes")
    assert created.id in world.branches
    run("--project-id", PROJECT, "--open-prs", "", "--yes")
    assert created.id not in world.branches


def test_bad_input_is_one_clear_line(world):
    code, _, err = run("--project-id", PROJECT, "--open-prs", "1,two")
    assert code == 2 and err.strip() == ("neon sweep: --open-prs: 'two' is not a PR number; "
                                         "expected comma-separated whole numbers such as 12,15")
    assert parse_open_prs(None) is None and parse_open_prs("") == set() and parse_open_prs(" 3,4 ") == {3, 4}


def test_api_errors_exit_2_with_the_reason(world, monkeypatch):
    monkeypatch.setenv("NEON_API_KEY", "wrong")
    code, _, err = run("--project-id", PROJECT)
    assert code == 2 and "HTTP 401" in err and "authorization failed" in err
