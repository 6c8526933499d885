"""Realistic fake provider answers for evaluating the program without the Pulumi CLI.

The offline plan and the tests share these. Each fake gets what the provider would get (the
resource's inputs, camelCase) and returns the outputs the real provider would add, so code that
reads ``status``, ``metadata.name`` or a kubeconfig works as it would under ``pulumi up``.
In preview mode nothing computed is returned: the SDK then marks those outputs unknown, as the
engine does before a resource exists.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Optional

from pulumi.runtime import Mocks
from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs

#: A password no real program would produce; tests grep every plan output for it.
FAKE_PASSWORD = "fake-P@ss:w/rd?#%&= 'é'"

FAKE_CA = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCmZha2UtY2EKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo="
FAKE_KEY_MARKER = "fake-client-key-data"


def fake_kubeconfig(context: str, server: str = "https://127.0.0.1:6443") -> str:
    return (
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- cluster:\n    certificate-authority-data: {FAKE_CA}\n    server: {server}\n  name: {context}\n"
        f"contexts:\n- context:\n    cluster: {context}\n    user: {context}\n  name: {context}\n"
        f"current-context: {context}\n"
        f"users:\n- name: {context}\n  user:\n    client-certificate-data: {FAKE_CA}\n"
        f"    client-key-data: {FAKE_KEY_MARKER}\n"
    )


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:8]


Fake = Callable[[MockResourceArgs], dict]

#: type token -> function returning the computed outputs of a created resource.
RESOURCE_FAKES: dict[str, Fake] = {}
#: function token -> function returning the result of an invoke.
CALL_FAKES: dict[str, Callable[[MockCallArgs], dict]] = {}


def fake(token: str):
    def register(fn: Fake) -> Fake:
        RESOURCE_FAKES[token] = fn
        return fn

    return register


@fake("random:index/randomPassword:RandomPassword")
def _random_password(args: MockResourceArgs) -> dict:
    return {"result": FAKE_PASSWORD, "bcryptHash": "$2a$10$fake"}


@fake("pulumi-python:dynamic:Resource")
def _dynamic(args: MockResourceArgs) -> dict:
    # Dynamic providers run in the engine, not here. KindCluster's untyped dynamic resource
    # marks itself with `resource_kind` (dynamic inputs keep their snake_case names).
    if args.inputs.get("resource_kind") != "kind-cluster":
        return {}
    name = args.inputs["name"]
    return {"kubeconfig": fake_kubeconfig(f"kind-{name}", "https://127.0.0.1:41235"), "context": f"kind-{name}"}


@fake("pulumi-python:dynamic:NeonBranch")
def _neon_branch(args: MockResourceArgs) -> dict:
    # What NeonBranchProvider.create returns for a ready branch on a fresh endpoint.
    endpoint = f"ep-fake-{_suffix(args.name)}"
    host = f"{endpoint}.us-east-2.aws.neon.tech"
    pooled = f"{endpoint}-pooler.us-east-2.aws.neon.tech"
    database, role = args.inputs.get("database", "app"), args.inputs.get("role", "app")
    from .connection import DatabaseConnection

    conn = DatabaseConnection(host, 5432, database, role, FAKE_PASSWORD, "require", pooled_host=pooled)
    return {"branch_id": f"br-fake-{_suffix(args.name)}", "endpoint_id": endpoint, "parent_id": "br-main-000000",
            "host": host, "pooled_host": pooled, "port": 5432, "expires_at": "2026-12-10T00:00:00Z",
            "password": FAKE_PASSWORD, "database_url": conn.url(), "direct_url": conn.direct_url()}


def _k8s_metadata(args: MockResourceArgs) -> dict:
    meta = dict(args.inputs.get("metadata") or {})
    if "name" not in meta:
        # The Kubernetes provider auto-names from the resource name plus a random suffix.
        meta["name"] = f"{args.name}-{_suffix(args.name)}"
    meta.setdefault("uid", f"00000000-0000-4000-8000-{_suffix(args.name)}0000")
    return meta


def _kubernetes(args: MockResourceArgs) -> dict:
    out = {"metadata": _k8s_metadata(args)}
    if args.typ == "kubernetes:core/v1:Service":
        spec = dict(args.inputs.get("spec") or {})
        if spec.get("clusterIP") != "None":
            spec.setdefault("clusterIP", "10.96.0.42")
        out["spec"] = spec
    return out


def _aws(args: MockResourceArgs) -> dict:
    # Generic shape of an AWS resource: an ARN and a physical name. Specific fakes (endpoints,
    # kubeconfigs) are registered with @fake by the modules that need them.
    service = args.typ.split(":")[1].split("/")[0]
    name = args.inputs.get("name") or f"{args.name}-{_suffix(args.name)}"
    return {"arn": f"arn:aws:{service}:us-east-1:123456789012:{args.name}/{name}", "name": name,
            "tagsAll": args.inputs.get("tags") or {}}


class FakeCloud(Mocks):
    """Answers every registration with inputs plus realistic computed outputs."""

    def __init__(self, preview: bool = False):
        self.preview = preview

    def new_resource(self, args: MockResourceArgs) -> tuple[Optional[str], dict]:
        outputs: dict[str, Any] = dict(args.inputs)
        if self.preview:
            # Before a resource exists the engine knows only its inputs.
            return None, outputs
        if args.typ in RESOURCE_FAKES:
            outputs.update(RESOURCE_FAKES[args.typ](args))
        elif args.typ.startswith("kubernetes:"):
            outputs.update(_kubernetes(args))
        elif args.typ.startswith("aws:"):
            outputs = {**_aws(args), **outputs}
        ident = args.resource_id or f"{args.name}-id"
        if args.typ.startswith("kubernetes:") and "metadata" in outputs:
            meta = outputs["metadata"]
            ident = f"{meta.get('namespace')}/{meta['name']}" if meta.get("namespace") else meta["name"]
        return ident, outputs

    def call(self, args: MockCallArgs):
        if args.token in CALL_FAKES:
            return CALL_FAKES[args.token](args)
        return {}


from . import fakes_k8s  # noqa: E402,F401  (registers operator fakes)
from . import fakes_aws  # noqa: E402,F401  (registers AWS fakes)
