"""Every usage example in examples/ runs, as a team would import the components."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from components.plan import evaluate

from conftest import PROJECT

EXAMPLES = sorted((PROJECT / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("preview", [False, True], ids=["up", "preview"])
def test_example_runs(example: Path, preview: bool):
    ev = evaluate("example", preview=preview, config={},
                  program=lambda: runpy.run_path(str(example), run_name="__main__"))
    components = [r for r in ev.resources if r.type.startswith("pgtiers:index:")]
    assert components, f"{example.name} registered no pgtiers component"
    for r in ev.resources:
        if r.custom and r.type.startswith("kubernetes:"):
            assert r.provider, f"{r.name} uses the ambient kubeconfig"
