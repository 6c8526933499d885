"""Command line of pgtiers.

    python -m components plan --stack dev [--out DIR] [--preview]   offline plan of a stack
    python -m components pr up|down --number N                      per-PR stack (needs the Pulumi CLI)
    python -m components neon sweep --project-id P [--yes]          delete stale pgtiers Neon branches
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _plan(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m components plan",
                                     description="Evaluate a stack offline; write plan.json, manifests and a diagram.")
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", type=Path, help="output directory (default plan-out/<stack>)")
    parser.add_argument("--preview", action="store_true", help="evaluate as `pulumi preview` would: computed values unknown")
    parser.add_argument("--project-dir", type=Path, help="folder with Pulumi.yaml (default: this checkout)")
    args = parser.parse_args(argv)
    from .plan import PROJECT_DIR, run_cli

    return run_cli(args.stack, args.out, args.preview, args.project_dir or PROJECT_DIR)


def _pr(argv: list[str]) -> int:
    from .pr import main

    return main(argv)


def _neon(argv: list[str]) -> int:
    if argv[:1] != ["sweep"]:
        print("usage: python -m components neon sweep --project-id P [--open-prs 1,2] [--yes]", file=sys.stderr)
        return 2
    from .neon_sweep import main

    return main(argv[1:])


COMMANDS = {"plan": _plan, "pr": _pr, "neon": _neon}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
