"""Command line: ``python -m components plan --stack dev [--out DIR] [--preview]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components", description="pgtiers tools")
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="evaluate a stack offline and write plan.json, manifests and a diagram")
    plan.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    plan.add_argument("--out", type=Path, help="output directory (default plan-out/<stack>)")
    plan.add_argument("--preview", action="store_true", help="evaluate as `pulumi preview` would: computed values unknown")
    plan.add_argument("--project-dir", type=Path, help="folder with Pulumi.yaml (default: this checkout)")
    args = parser.parse_args(argv)

    if args.command == "plan":
        from .plan import PROJECT_DIR, run_cli

        return run_cli(args.stack, args.out, args.preview, args.project_dir or PROJECT_DIR)
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
