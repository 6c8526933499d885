"""How long the offline plan of a stack takes in a cold process, next to the import floor.

The floor is a cold process that only imports what the plan needs (the Pulumi SDK, the
kubernetes/random/aws SDK modules the program loads, pydantic, yaml). The ratio says how much the
evaluation itself costs on top of Python start-up and imports. Target: plan <= 2x the floor.

    python benchmarks/plan_speed.py [--stack dev] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
IMPORTS = ("import pulumi, pulumi.runtime.mocks, pulumi.dynamic, pulumi_kubernetes, pulumi_random, "
           "pulumi_kubernetes.core.v1, pulumi_kubernetes.apps.v1, pulumi_kubernetes.batch.v1, pydantic, yaml, dill")


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=PROJECT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        plan_cmd = [sys.executable, "-m", "components", "plan", "--stack", args.stack, "--out", out]
        floor_cmd = [sys.executable, "-c", IMPORTS]
        wall(plan_cmd), wall(floor_cmd)  # warm the OS file cache, not the interpreter
        plans = [wall(plan_cmd) for _ in range(args.runs)]
        floors = [wall(floor_cmd) for _ in range(args.runs)]
    plan, floor = statistics.median(plans), statistics.median(floors)
    print(f"stack            {args.stack}")
    print(f"runs             {args.runs} (median of cold processes)")
    print(f"import floor     {floor:.3f} s")
    print(f"plan             {plan:.3f} s")
    print(f"ratio            {plan / floor:.2f}x (target <= 2.00x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
