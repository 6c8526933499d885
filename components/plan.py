"""The offline plan: evaluate the real program under the SDK's mocks, with no CLI, cloud or cluster.

``evaluate()`` is the harness the tests use too: it loads ``Pulumi.yaml`` and
``Pulumi.<stack>.yaml`` the way the CLI would, runs ``__main__.py`` (or any function) against a
spying monitor, and returns every registration as the engine would have seen it: inputs
(secrets marked), ``protect``, ``retainOnDelete``, parent, provider and dependencies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import runpy
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import yaml

PROJECT_DIR = Path(__file__).resolve().parent.parent

# Wire markers of the Pulumi property protocol (sdk/python/lib/pulumi/runtime/rpc.py).
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
OUTPUT_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"

REDACTED = "[secret]"
UNKNOWN_SHOWN = "[unknown]"


@dataclasses.dataclass
class Registration:
    """One resource as the engine would see it."""

    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    provider: str
    protect: bool
    retain_on_delete: bool
    dependencies: list[str]
    property_dependencies: dict[str, list[str]]
    additional_secret_outputs: list[str]
    inputs: dict[str, Any]
    """Inputs with secret values kept, wrapped as ``Secret(value)``."""
    delete_before_replace: bool = False
    ignore_changes: list[str] = dataclasses.field(default_factory=list)
    replace_on_changes: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Secret:
    """A value that was marked secret on the wire."""

    value: Any


def _decode(value: Any) -> Any:
    """Turn a deserialized-from-JSON property value into Python, keeping secrets visible as such."""
    if isinstance(value, dict):
        sig = value.get(SIG_KEY)
        if sig == SECRET_SIG:
            return Secret(_decode(value.get("value")))
        if sig == RESOURCE_SIG:
            return {"$resource": value.get("urn")}
        if sig == OUTPUT_SIG:
            inner = _decode(value.get("value", UNKNOWN))
            return Secret(inner) if value.get("secret") else inner
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf Struct numbers are doubles; Kubernetes wants integers back
    return value


def redact(value: Any) -> Any:
    """Replace every secret with ``[secret]`` and every unknown with ``[unknown]``."""
    if isinstance(value, Secret):
        # Keep a secret map's key names (e.g. the Secret's eight keys): names are not secret.
        if isinstance(value.value, dict):
            return {k: REDACTED for k in value.value}
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    if value == UNKNOWN:
        return UNKNOWN_SHOWN
    return value


def unwrap(value: Any) -> Any:
    """Drop the secret markers (for tests that need the real value)."""
    if isinstance(value, Secret):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _refs_to_urns(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SIG_KEY) == RESOURCE_SIG:
            return value.get("urn", "")
        return {k: _refs_to_urns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_refs_to_urns(v) for v in value]
    return value


def _resource_refs_as_urns(request):
    """The request with every resource reference among its inputs replaced by the resource's URN.

    The SDK's mock monitor rebuilds referenced resources (e.g. the ``eks.Cluster`` handed to
    ``eks.ManagedNodeGroup``) as live objects on a worker thread's event loop, which the program's
    loop then cannot await. The engine itself hands a URN to providers that take no references;
    the fakes need no more. The spy still records the reference as ``{"$resource": urn}``.
    """
    from google.protobuf import json_format

    if not request.object or RESOURCE_SIG not in str(request.object):
        return request
    plain = _refs_to_urns(json_format.MessageToDict(request.object))
    copy = type(request)()
    copy.CopyFrom(request)
    copy.object.Clear()
    copy.object.update(plain)
    return copy


def _spy_monitor_class():
    from google.protobuf import json_format
    from pulumi.runtime.mocks import MockMonitor

    class SpyMonitor(MockMonitor):
        """A mock monitor that records what the engine would receive."""

        def __init__(self, mocks):
            super().__init__(mocks)
            self.registrations: list[Registration] = []

        def RegisterResource(self, request):
            response = super().RegisterResource(_resource_refs_as_urns(request))
            if request.type == "pulumi:pulumi:Stack":
                return response
            inputs = _decode(json_format.MessageToDict(request.object)) if request.object else {}
            self.registrations.append(Registration(
                urn=response.urn,
                type=request.type,
                name=request.name,
                parent=request.parent,
                custom=bool(request.custom),
                provider=request.provider,
                protect=bool(request.protect),
                retain_on_delete=bool(request.retainOnDelete),
                dependencies=list(request.dependencies),
                property_dependencies={k: list(v.urns) for k, v in request.propertyDependencies.items()},
                additional_secret_outputs=list(request.additionalSecretOutputs),
                inputs=inputs,
                delete_before_replace=bool(request.deleteBeforeReplace),
                ignore_changes=list(request.ignoreChanges),
                replace_on_changes=list(request.replaceOnChanges),
            ))
            return response

    return SpyMonitor


# --- config as the CLI would pass it ------------------------------------------------------------


def stack_config(stack: str, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Pulumi.yaml defaults overlaid with Pulumi.<stack>.yaml, as ``ns:key`` -> string.

    The SDK does not read these files (the CLI does), so the harness must.
    """
    project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())
    name = project["name"]
    values: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        if isinstance(decl, dict) and "value" in decl:
            values[full] = decl["value"]
        elif isinstance(decl, dict) and "default" in decl:
            values[full] = decl["default"]
        elif not isinstance(decl, dict):
            values[full] = decl
    stack_file = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise FileNotFoundError(f"no stack file {stack_file.name} in {project_dir}")
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        full = key if ":" in key else f"{name}:{key}"
        values[full] = value
    return {k: _config_string(v) for k, v in values.items()}


def _config_string(value: Any) -> str:
    # The CLI hands the program strings; structured values arrive as JSON.
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --- evaluation -------------------------------------------------------------------------------


@dataclasses.dataclass
class Evaluation:
    project: str
    stack: str
    preview: bool
    resources: list[Registration]
    outputs: dict[str, Any]
    """Stack outputs; secret ones wrapped in ``Secret``."""

    def by_type(self, type_: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_]

    def one(self, type_: str, name: Optional[str] = None) -> Registration:
        found = [r for r in self.by_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one {type_} {name or ''}, found {[r.name for r in found]}")
        return found[0]

    def get(self, urn: str) -> Registration:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def transitive_dependencies(self, urn: str) -> set[str]:
        """Every URN this resource waits for: dependencies, their parents' children, recursively."""
        seen: set[str] = set()
        todo = [urn]
        while todo:
            current = self.get(todo.pop())
            deps = set(current.dependencies)
            for urns in current.property_dependencies.values():
                deps.update(urns)
            if current.provider:
                deps.add(current.provider.rsplit("::", 1)[0])
            # Depending on a component means depending on everything under it.
            for dep in list(deps):
                deps.update(r.urn for r in self.resources if self._descends(r, dep))
            for dep in deps - seen:
                seen.add(dep)
                if any(r.urn == dep for r in self.resources):
                    todo.append(dep)
        return seen

    def _descends(self, r: Registration, ancestor: str) -> bool:
        parent = r.parent
        while parent:
            if parent == ancestor:
                return True
            parent = next((x.parent for x in self.resources if x.urn == parent), "")
        return False


def evaluate(
    stack: str,
    *,
    preview: bool = False,
    project_dir: Path = PROJECT_DIR,
    config: Optional[dict[str, str]] = None,
    program: Optional[Callable[[], None]] = None,
    project: Optional[str] = None,
) -> Evaluation:
    """Run the program (``__main__.py`` by default) under mocks and return what was registered.

    ``config`` replaces the stack files (full ``ns:key`` -> string map). Raises whatever the
    program raises (``ConfigError`` for bad settings) after the runtime has shut down cleanly.
    """
    import pulumi
    from pulumi.runtime import settings as runtime_settings
    from pulumi.runtime.config import set_all_config
    from pulumi.runtime.mocks import set_mocks
    from pulumi.runtime.stack import run_pulumi_func
    from pulumi.runtime.sync_await import _sync_await

    from .fakes import FakeCloud

    if project is None:
        project = yaml.safe_load((project_dir / "Pulumi.yaml").read_text())["name"]
    if config is None:
        config = stack_config(stack, project_dir)

    # One root stack per evaluation: forget the previous one before installing new mocks.
    runtime_settings.reset_options(project=project, stack=stack, preview=preview)
    set_all_config(dict(config))
    monitor = _spy_monitor_class()(FakeCloud(preview=preview))
    set_mocks(monitor.mocks, project=project, stack=stack, preview=preview, monitor=monitor)

    main = project_dir / "__main__.py"

    def run() -> None:
        if program is not None:
            program()
        else:
            with _on_path(project_dir):
                runpy.run_path(str(main), run_name="__main__")

    _sync_await(run_pulumi_func(run))
    _refuse_duplicate_urns(monitor.registrations)
    root = runtime_settings.get_root_resource()
    outputs = {}
    for key, output in (root.outputs.items() if root is not None else []):
        value = _sync_await(pulumi.Output.from_input(output).future(with_unknowns=True))
        secret = _sync_await(pulumi.Output.from_input(output).is_secret())
        value = _plain(value)
        outputs[key] = Secret(value) if secret else value
    return Evaluation(project, stack, bool(preview), list(monitor.registrations), outputs)


class PlanError(Exception):
    """The program ran, but the engine would refuse what it registered."""


def _refuse_duplicate_urns(registrations: list[Registration]) -> None:
    # The mock monitor accepts two resources with one URN; the real engine stops the update.
    seen: set[str] = set()
    for r in registrations:
        if r.urn in seen:
            raise PlanError(f"two resources share the URN {r.urn}; `pulumi up` would stop with a duplicate-URN error")
        seen.add(r.urn)


def _plain(value: Any) -> Any:
    from pulumi.output import Unknown

    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@contextlib.contextmanager
def _on_path(directory: Path):
    old_cwd = os.getcwd()
    sys.path.insert(0, str(directory))
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(old_cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(str(directory))


# --- rendering --------------------------------------------------------------------------------

DYNAMIC_PROVIDER_INPUT = "__provider"


def plan_document(ev: Evaluation) -> dict[str, Any]:
    """The ``plan.json`` document of DESIGN.md §6."""
    resources = []
    for r in ev.resources:
        inputs = dict(r.inputs)
        if DYNAMIC_PROVIDER_INPUT in inputs:
            # The pickled provider is code, not configuration: show that it is there, not its bytes.
            inputs[DYNAMIC_PROVIDER_INPUT] = "[pickled dynamic provider]"
        resources.append({
            "urn": r.urn,
            "type": r.type,
            "name": r.name,
            "parent": r.parent,
            "custom": r.custom,
            "provider": r.provider.rsplit("::", 1)[0] if r.provider else "",
            "protect": r.protect,
            "retainOnDelete": r.retain_on_delete,
            "dependencies": sorted(set(r.dependencies)),
            "inputs": redact(inputs),
        })
    return {"project": ev.project, "stack": ev.stack, "preview": ev.preview,
            "resources": resources, "outputs": redact(ev.outputs)}


def kubernetes_objects(ev: Evaluation) -> list[tuple[Registration, dict[str, Any]]]:
    """Every Kubernetes object the stack would apply, as a manifest (secrets redacted)."""
    found = []
    for r in ev.resources:
        if not r.custom or not r.type.startswith("kubernetes:") or r.type.startswith("pulumi:providers"):
            continue
        if r.type.startswith("kubernetes:helm.sh/") or r.type.startswith("kubernetes:yaml"):
            continue  # charts render inside the provider; their values are in plan.json
        group_version, kind = r.type.split(":")[1], r.type.split(":")[2]
        group, _, version = group_version.partition("/")
        manifest = {"apiVersion": version if group == "core" else f"{group}/{version}", "kind": kind}
        body = redact({k: v for k, v in r.inputs.items() if k not in ("apiVersion", "kind")})
        manifest.update(body)
        for key in ("data", "stringData"):
            if isinstance(manifest.get(key), str):
                # A secret map not known yet (preview): keep the manifest a valid object and say why.
                del manifest[key]
                notes = manifest.setdefault("metadata", {}).setdefault("annotations", {})
                notes["pgtiers.plan/redacted"] = f"{key} is secret and not known before the database exists"
        found.append((r, manifest))
    return found


def mermaid(ev: Evaluation) -> str:
    """cluster → database → Secret → app, from what was registered."""
    lines = ["flowchart LR"]
    comps = {r.urn: r for r in ev.resources if not r.custom}
    ids = {urn: f"c{i}" for i, urn in enumerate(comps)}
    for urn, r in comps.items():
        lines.append(f'  {ids[urn]}["{r.type.split(":")[-1]}<br/>{r.name}"]')
    for urn, r in comps.items():
        for dep in sorted(d for d in _component_deps(ev, r) if d in comps):
            lines.append(f"  {ids[dep]} --> {ids[urn]}")
    app = [r for r in ev.resources if r.type == "kubernetes:core/v1:Secret" and "DATABASE_URL" in str(r.inputs.get("stringData", {}))]
    for i, secret in enumerate(app):
        ns = (secret.inputs.get("metadata") or {}).get("namespace", "?")
        lines.append(f'  app{i}(["app in {redact(ns)}"])')
        owner = _owning_component(ev, secret)
        if owner in ids:
            lines.append(f"  {ids[owner]} -- envFrom --> app{i}")
    return "\n".join(lines) + "\n"


def _owning_component(ev: Evaluation, r: Registration) -> str:
    parent = r.parent
    while parent:
        owner = next((x for x in ev.resources if x.urn == parent), None)
        if owner is None or not owner.custom:
            return parent
        parent = owner.parent
    return ""


def _component_deps(ev: Evaluation, comp: Registration) -> set[str]:
    """Components whose resources this component's resources depend on."""
    members = [r for r in ev.resources if _owning_component(ev, r) == comp.urn]
    deps: set[str] = set()
    for m in members:
        urns = set(m.dependencies)
        for v in m.property_dependencies.values():
            urns.update(v)
        if m.provider:
            urns.add(m.provider.rsplit("::", 1)[0])
        for urn in urns:
            dep = next((x for x in ev.resources if x.urn == urn), None)
            if dep is None:
                continue
            deps.add(dep.urn if not dep.custom else _owning_component(ev, dep))
    return {d for d in deps if d and d != comp.urn}


def tree(ev: Evaluation) -> str:
    children: dict[str, list[Registration]] = {}
    for r in ev.resources:
        children.setdefault(r.parent, []).append(r)
    roots = [r for r in ev.resources if r.parent not in {x.urn for x in ev.resources}]
    out = io.StringIO()

    def walk(r: Registration, depth: int) -> None:
        flags = "".join([" [protect]" if r.protect else "", " [retain]" if r.retain_on_delete else ""])
        out.write(f"{'  ' * depth}{r.type}  {r.name}{flags}\n")
        for c in children.get(r.urn, []):
            walk(c, depth + 1)

    for r in roots:
        walk(r, 0)
    return out.getvalue()


def write_plan(ev: Evaluation, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    manifests = out_dir / "manifests"
    manifests.mkdir(exist_ok=True)
    for old in manifests.glob("*.yaml"):
        old.unlink()
    plan_path = out_dir / "plan.json"
    plan_path.write_text(json.dumps(plan_document(ev), indent=2, sort_keys=False) + "\n")
    for i, (r, manifest) in enumerate(kubernetes_objects(ev)):
        kind = manifest["kind"].lower()
        name = (manifest.get("metadata") or {}).get("name", r.name)
        ns = (manifest.get("metadata") or {}).get("namespace")
        stem = f"{i:03d}-{kind}-{(ns + '-') if isinstance(ns, str) else ''}{name}".replace("/", "_")
        (manifests / f"{stem}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    mmd = out_dir / "architecture.mmd"
    mmd.write_text(mermaid(ev))
    return {"plan": plan_path, "manifests": manifests, "architecture": mmd}


def iter_secret_values(ev: Evaluation) -> Iterable[str]:
    """Every string that was secret anywhere in the evaluation (for leak checks)."""

    def walk(value: Any, inside: bool) -> Iterable[str]:
        if isinstance(value, Secret):
            yield from walk(value.value, True)
        elif isinstance(value, dict):
            for v in value.values():
                yield from walk(v, inside)
        elif isinstance(value, list):
            for v in value:
                yield from walk(v, inside)
        elif inside and isinstance(value, str) and value and value != UNKNOWN:
            yield value

    for r in ev.resources:
        yield from walk(r.inputs, False)
    yield from walk(ev.outputs, False)


def run_cli(stack: str, out_dir: Optional[Path], preview: bool, project_dir: Path = PROJECT_DIR,
            stream=sys.stdout) -> int:
    """``python -m components plan``: exit 0 with files written, 2 with one line on bad config."""
    from .config import ConfigError

    try:
        ev = evaluate(stack, preview=preview, project_dir=project_dir)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except PlanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    out_dir = out_dir or Path("plan-out") / stack
    paths = write_plan(ev, out_dir)
    stream.write(tree(ev))
    stream.write(f"\n{len(ev.resources)} resources; wrote {paths['plan']}, {paths['manifests']}/, {paths['architecture']}\n")
    return 0


__all__ = ["evaluate", "Evaluation", "Registration", "Secret", "redact", "unwrap", "stack_config",
           "plan_document", "kubernetes_objects", "mermaid", "write_plan", "run_cli"]
