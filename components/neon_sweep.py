"""Sweep Neon branches pgtiers created and nobody needs any more.

A branch is pgtiers's when it carries the annotation ``pgtiers-managed: "true"`` (set by
``NeonBranchProvider`` at creation). The name alone is not trusted: people name branches
``pr-7`` by hand too. The PR number comes from the ``pgtiers-pr`` annotation.

A marked branch is deleted when its TTL passed (Neon deletes expired branches itself, but late)
or when it belongs to a PR that is no longer open. Open PRs are an input (``--open-prs`` or
``PGTIERS_OPEN_PRS``) so this module never needs GitHub credentials; without that input only
expired branches are swept, because "PR closed" cannot be known.

Never touched: default branches, protected branches, unmarked branches, and branches that
still have children (Neon refuses those deletes anyway).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from datetime import datetime, timezone
from typing import Iterable, Optional, Sequence, TextIO

from .db.neon import MARK_KEY, PR_KEY
from .neon_api import NeonApiError, NeonClient

OPEN_PRS_ENV = "PGTIERS_OPEN_PRS"


@dataclasses.dataclass(frozen=True)
class Verdict:
    branch_id: str
    name: str
    delete: bool
    reason: str


def _expired(expires_at: Optional[str], now: datetime) -> bool:
    if not expires_at:
        return False
    return datetime.fromisoformat(expires_at.replace("Z", "+00:00")) <= now


def decide(branches: Sequence[dict], annotations: dict, open_prs: Optional[set[int]],
           now: Optional[datetime] = None) -> list[Verdict]:
    """What to do with each branch, and why; pure, so the rules are easy to test."""
    now = now or datetime.now(timezone.utc)
    parents = {b.get("parent_id") for b in branches}
    verdicts = []
    for branch in branches:
        value = ((annotations.get(branch["id"]) or {}).get("value")) or {}

        def verdict(delete: bool, reason: str) -> Verdict:
            return Verdict(branch["id"], branch["name"], delete, reason)

        if branch.get("default"):
            verdicts.append(verdict(False, "default branch"))
        elif branch.get("protected"):
            verdicts.append(verdict(False, "protected branch"))
        elif value.get(MARK_KEY) != "true":
            verdicts.append(verdict(False, "not created by pgtiers"))
        elif branch["id"] in parents:
            verdicts.append(verdict(False, "has child branches"))
        elif _expired(branch.get("expires_at"), now):
            verdicts.append(verdict(True, f"TTL passed at {branch['expires_at']}"))
        elif open_prs is not None and value.get(PR_KEY, "").isdigit() and int(value[PR_KEY]) not in open_prs:
            verdicts.append(verdict(True, f"PR #{value[PR_KEY]} is not open"))
        elif open_prs is None and value.get(PR_KEY):
            verdicts.append(verdict(False, "PR state unknown (no open PR list given)"))
        else:
            verdicts.append(verdict(False, "still in use"))
    return verdicts


def sweep(client: NeonClient, project_id: str, open_prs: Optional[set[int]], *, apply: bool,
          out: TextIO = sys.stdout) -> list[Verdict]:
    """List, decide, and (only when ``apply``) delete; prints one line per branch."""
    branches, annotations = client.list_branches(project_id)
    verdicts = decide(branches, annotations, open_prs)
    for v in verdicts:
        action = ("delete" if apply else "would delete") if v.delete else "keep"
        print(f"{action:12} {v.branch_id}  {v.name!r}: {v.reason}", file=out)
        if v.delete and apply:
            client.delete_branch(project_id, v.branch_id)
    return verdicts


def parse_open_prs(text: Optional[str]) -> Optional[set[int]]:
    """``"1, 2,3"`` → {1, 2, 3}; ``""`` → set() (no PR open); ``None`` → unknown."""
    if text is None:
        return None
    numbers = set()
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit():
            raise ValueError(f"--open-prs: {item!r} is not a PR number; expected comma-separated "
                             "whole numbers such as 12,15")
        numbers.add(int(item))
    return numbers


def main(argv: Optional[Iterable[str]] = None, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """``neon sweep --project-id P [--open-prs 1,2] [--yes] [--api-url URL]``; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m components neon sweep",
        description="Delete Neon branches pgtiers created whose PR is closed or whose TTL passed.")
    parser.add_argument("--project-id", required=True, help="Neon project id")
    parser.add_argument("--open-prs", default=None,
                        help=f"comma-separated open PR numbers (default: ${OPEN_PRS_ENV}; "
                             "unset means only expired branches are swept)")
    parser.add_argument("--yes", action="store_true", help="really delete (default: only list)")
    parser.add_argument("--api-url", default=None, help="Neon API base URL (default: $NEON_API_URL)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        open_prs = parse_open_prs(args.open_prs if args.open_prs is not None else os.environ.get(OPEN_PRS_ENV))
        with NeonClient(base_url=args.api_url) as client:
            verdicts = sweep(client, args.project_id, open_prs, apply=args.yes, out=out)
    except (ValueError, NeonApiError) as exc:
        print(f"neon sweep: {exc}", file=err)
        return 2
    doomed = sum(v.delete for v in verdicts)
    if doomed and not args.yes:
        print(f"{doomed} branch(es) would be deleted; run again with --yes to delete them", file=out)
    return 0
