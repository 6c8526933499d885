"""The pip-installable package and the Pulumi program agree on their dependencies."""

from __future__ import annotations

import tomllib

from conftest import PROJECT


def _requirements() -> list[str]:
    lines = (PROJECT / "requirements.txt").read_text().splitlines()
    return sorted(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def test_pyproject_dependencies_match_requirements_txt():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    assert sorted(project["dependencies"]) == _requirements()


def test_every_requirement_has_a_compatible_range():
    for requirement in _requirements():
        assert ">=" in requirement and "<" in requirement.split(">=", 1)[1], requirement


def test_package_lists_every_components_subpackage():
    packages = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = sorted(str(p.parent.relative_to(PROJECT)).replace("/", ".")
                   for p in (PROJECT / "components").rglob("__init__.py"))
    assert sorted(packages) == found
