"""Check custom resources and Helm values against the published schemas in ../shared/reference.

``jsonschema`` alone would accept a misspelt field (CRD schemas rarely forbid extra keys, and the
API server silently prunes them), so ``unknown_fields`` also walks the object and reports every
key the schema does not declare: ``isWalArchiver`` for ``isWALArchiver`` fails here, not in prod.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Iterator, Optional

import jsonschema
import pytest
import yaml

from components.plan import UNKNOWN_SHOWN

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


def require_reference() -> Path:
    if not REFERENCE.exists():
        pytest.skip(reason=f"{REFERENCE} is absent: the CRDs and chart schemas ship beside the CI checkout only")
    return REFERENCE


@functools.lru_cache(maxsize=None)
def _crds() -> dict[tuple[str, str, str], dict[str, Any]]:
    found = {}
    for path in sorted((require_reference() / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            found[(group, version["name"], kind)] = version["schema"]["openAPIV3Schema"]
    return found


def crd_schema(api_version: str, kind: str) -> Optional[dict[str, Any]]:
    group, _, version = api_version.rpartition("/")
    return _crds().get((group, version, kind))


def chart_schema(file_name: str) -> dict[str, Any]:
    return json.loads((require_reference() / "chart-schemas" / file_name).read_text())


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> Iterator[str]:
    """Paths of keys that ``schema`` does not declare."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from unknown_fields(item, extra, f"{path}.{key}")
            elif properties is not None and extra is not True:
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{i}]")


def without_unknowns(value: Any, path: tuple = (), dropped: Optional[set] = None) -> Any:
    """Drop values a preview cannot know yet (shown as ``[unknown]``), noting where they were."""
    dropped = dropped if dropped is not None else set()
    if isinstance(value, dict):
        kept = {}
        for k, v in value.items():
            if v == UNKNOWN_SHOWN:
                dropped.add((*path, k))
            else:
                kept[k] = without_unknowns(v, (*path, k), dropped)
        return kept
    if isinstance(value, list):
        return [without_unknowns(v, (*path, i), dropped) for i, v in enumerate(value) if v != UNKNOWN_SHOWN]
    return value


def check_custom_resource(manifest: dict[str, Any]) -> None:
    """Validate apiVersion/kind/spec of one manifest against its CRD; fail on undeclared fields.

    In preview some values are unknown: they are left out, and only a "required" complaint about
    exactly those keys is forgiven; every other rule still applies to what is known.
    """
    dropped: set = set()
    manifest = without_unknowns(manifest, (), dropped)
    schema = crd_schema(manifest["apiVersion"], manifest["kind"])
    assert schema is not None, f"no CRD in {REFERENCE / 'crds'} for {manifest['apiVersion']} {manifest['kind']}"
    body = {k: manifest[k] for k in ("apiVersion", "kind", "spec") if k in manifest}
    validator = jsonschema.Draft7Validator({"type": "object", "properties": {
        "apiVersion": schema["properties"]["apiVersion"], "kind": schema["properties"]["kind"],
        "spec": schema["properties"]["spec"]}, "required": ["spec"]})
    for error in validator.iter_errors(body):
        if error.validator == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            if missing and all((*error.absolute_path, k) in dropped for k in missing):
                continue
        raise error
    stray = list(unknown_fields(manifest["spec"], schema["properties"]["spec"], "spec"))
    assert not stray, f"{manifest['kind']} {manifest.get('metadata', {}).get('name')}: undeclared fields {stray}"


def check_values(values: dict[str, Any], schema: dict[str, Any], chart: str) -> None:
    jsonschema.validate(values, schema)
    stray = list(unknown_fields(values, schema, "values"))
    assert not stray, f"{chart}: values the chart does not declare: {stray}"
