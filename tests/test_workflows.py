"""The GitHub Actions workflows pass actionlint and keep their promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import PROJECT

WORKFLOWS = sorted((PROJECT / ".github" / "workflows").glob("*.yml"))


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    if not found:
        pytest.fail("actionlint is missing: pip install -r requirements-dev.txt")
    return found


def test_the_three_workflows_exist():
    assert [w.name for w in WORKFLOWS] == ["pr-database.yml", "preview.yml", "sweep.yml"]


def test_actionlint_passes():
    done = subprocess.run([_actionlint(), "-color=false", *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ github.evnt.name }}\n")
    done = subprocess.run([_actionlint(), "-color=false", str(bad)], capture_output=True, text=True)
    assert done.returncode != 0  # the check can fail


def _load(name: str) -> dict:
    return yaml.safe_load((PROJECT / ".github" / "workflows" / name).read_text())


def test_pr_database_runs_up_and_down_and_never_echoes_a_url():
    wf = _load("pr-database.yml")
    assert wf[True]["pull_request"]["types"] == ["opened", "reopened", "synchronize", "closed"]  # `on:` parses as True
    runs = "\n".join(step.get("run", "") for job in wf["jobs"].values() for step in job["steps"])
    assert "pr up --number" in runs and "pr down --number" in runs
    assert "DATABASE_URL" not in runs and "stack output" not in runs
    assert wf["concurrency"]["cancel-in-progress"] is False


@pytest.mark.parametrize("name", ["pr-database.yml", "preview.yml", "sweep.yml"])
def test_fork_pull_requests_skip_with_a_notice(name):
    text = (PROJECT / ".github" / "workflows" / name).read_text()
    assert "::notice::" in text and "== ''" in text


def test_sweep_deletes_only_with_yes_and_knows_open_prs():
    runs = "\n".join(step.get("run", "") for step in _load("sweep.yml")["jobs"]["sweep"]["steps"])
    assert "neon sweep" in runs and "--open-prs" in runs and "--yes" in runs
