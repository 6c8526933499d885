"""How much time and how many API requests one NeonBranchProvider.create costs.

Runs against the loopback fake (tests/neon_fake.py) whose operations each take
``--op-seconds`` (default 2 s, back to back per branch, as Neon runs them). Overhead is the
create's wall time minus the time the fake kept the branch busy: what our client adds by
polling late, backing off and making extra round trips. Target: under 0.5 s.
Requests matter too: Neon allows 700 per minute per account.

    python benchmarks/neon_create.py [--op-seconds 2] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from components.db.neon import NeonBranchProvider  # noqa: E402
from neon_fake import FakeNeon  # noqa: E402


def one_run(op_seconds: float, index: int) -> tuple[float, float, int]:
    with FakeNeon(op_seconds=op_seconds, seed=index) as fake:
        fake.add_project("bench-project")
        os.environ["NEON_API_KEY"] = fake.api_key
        os.environ["NEON_API_URL"] = fake.url
        started = time.monotonic()
        result = NeonBranchProvider().create({"project_id": "bench-project", "branch_name": f"pr-{index}",
                                              "database": "app", "role": "app", "ttl_seconds": 3600})
        elapsed = time.monotonic() - started
        return elapsed, fake.busy_seconds(result.id), len(fake.exchanges)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--op-seconds", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    overheads, requests = [], []
    for index in range(args.runs):
        elapsed, busy, count = one_run(args.op_seconds, index)
        overheads.append(elapsed - busy)
        requests.append(count)
        print(f"run {index}: create {elapsed:.2f}s, operations {busy:.2f}s, "
              f"overhead {elapsed - busy:.3f}s, {count} API requests")
    worst = max(overheads)
    print(f"overhead median {statistics.median(overheads):.3f}s, worst {worst:.3f}s (target < 0.5s); "
          f"requests per create {max(requests)}")
    return 0 if worst < 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
