"""KindCluster: a local Kubernetes cluster in Docker, managed through the ``kind`` CLI.

There is no Pulumi provider for kind, so a Python dynamic provider drives the CLI. It:

- adopts a cluster that already has the name (``kind create`` would fail on a re-run);
- writes kubeconfig only to a throw-away file (``--kubeconfig``), never ``~/.kube/config``;
- reports a cluster deleted outside Pulumi as gone on ``pulumi refresh``;
- treats deleting an already-gone cluster as success.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from typing import Any, Optional, Sequence, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, ResourceProvider

from ..config import KIND_NODE_IMAGE

RESOURCE_KIND = "kind-cluster"
#: Inputs whose change means a new cluster (kind cannot reconfigure a running one).
REPLACE_KEYS = ("name", "node_image", "config")
CREATE_WAIT = "180s"


class KindError(Exception):
    """The kind CLI failed; the message carries its stderr."""


def _kind(binary: str, *args: str, timeout: int = 600) -> str:
    exe = shutil.which(binary) or binary
    try:
        done = subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise KindError(f"the kind CLI ({binary!r}) is not on PATH; install it from https://kind.sigs.k8s.io") from None
    if done.returncode != 0:
        raise KindError(f"kind {' '.join(args)} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def existing_clusters(binary: str = "kind") -> list[str]:
    # "No kind clusters found." goes to stderr with exit 0, so stdout holds names only.
    return [line.strip() for line in _kind(binary, "get", "clusters").splitlines() if line.strip()]


class KindProvider(ResourceProvider):
    """Dynamic provider around the kind CLI. Keeps no state of its own (pickled into Pulumi state)."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = []
        name = news.get("name")
        if not isinstance(name, str) or not name or len(name) > 50:
            failures.append(CheckFailure("name", f"{name!r} is not a kind cluster name (1-50 characters)"))
        if not isinstance(news.get("node_image"), str) or ":" not in news.get("node_image", ""):
            failures.append(CheckFailure("node_image", f"{news.get('node_image')!r} is not a pinned image (name:tag)"))
        return CheckResult(news, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(replaces), replaces=replaces, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        name, binary = props["name"], props.get("kind_binary") or "kind"
        adopted = name in existing_clusters(binary)
        if not adopted:
            with tempfile.TemporaryDirectory(prefix="pgtiers-kind-") as tmp:
                config_path = os.path.join(tmp, "kind.yaml")
                with open(config_path, "w") as fh:
                    fh.write(props["config"])
                _kind(binary, "create", "cluster", "--name", name, "--image", props["node_image"],
                      "--config", config_path, "--kubeconfig", os.path.join(tmp, "kubeconfig"),
                      "--wait", CREATE_WAIT)
        return CreateResult(id_=name, outs=self._outputs(props, binary, adopted))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        binary = props.get("kind_binary") or "kind"
        if id_ not in existing_clusters(binary):
            return ReadResult(id_="", outs={})  # deleted outside Pulumi: the engine drops it
        return ReadResult(id_=id_, outs=self._outputs(props, binary, props.get("adopted", False)))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        binary = props.get("kind_binary") or "kind"
        if id_ not in existing_clusters(binary):
            return  # already gone: nothing to do
        with tempfile.TemporaryDirectory(prefix="pgtiers-kind-") as tmp:
            _kind(binary, "delete", "cluster", "--name", id_, "--kubeconfig", os.path.join(tmp, "kubeconfig"))

    @staticmethod
    def _outputs(props: dict[str, Any], binary: str, adopted: bool) -> dict[str, Any]:
        # `kind get kubeconfig` prints to stdout and writes no file.
        kubeconfig = _kind(binary, "get", "kubeconfig", "--name", props["name"])
        return {**props, "kubeconfig": kubeconfig, "context": f"kind-{props['name']}", "adopted": adopted}


class PortMapping(TypedDict, total=False):
    container_port: int
    """Port on the kind node (a NodePort number)."""
    host_port: int
    """Port on the laptop."""
    listen_address: str
    """Host address to bind; default 127.0.0.1 so the database is not exposed to the network."""


def kind_config(port_mappings: Sequence[PortMapping] = (), data_dir: Optional[str] = None) -> str:
    """The kind cluster config file for one control-plane node."""
    node: dict[str, Any] = {"role": "control-plane"}
    if port_mappings:
        node["extraPortMappings"] = [
            {"containerPort": m["container_port"], "hostPort": m["host_port"],
             "listenAddress": m.get("listen_address", "127.0.0.1"), "protocol": "TCP"}
            for m in port_mappings
        ]
    if data_dir:
        # local-path-provisioner keeps PersistentVolumes here; mapping it to the host keeps the
        # data when the cluster is deleted and created again.
        node["extraMounts"] = [{"hostPath": data_dir, "containerPath": "/var/local-path-provisioner"}]
    return yaml.safe_dump({"kind": "Cluster", "apiVersion": "kind.x-k8s.io/v1alpha4", "nodes": [node]},
                          sort_keys=False)


class KindClusterArgs(TypedDict, total=False):
    name: str
    """Name of the kind cluster; its kubeconfig context is ``kind-<name>``."""
    node_image: str
    """Pinned kind node image (default: the version pgtiers is tested against)."""
    port_mappings: Sequence[PortMapping]
    """NodePorts to publish on the laptop (``containerPort`` must equal the Service's ``nodePort``)."""
    data_dir: Optional[str]
    """Host directory for PersistentVolume data, so it survives recreating the cluster."""
    kind_binary: str
    """The kind executable (default ``kind`` from PATH)."""


class _KindClusterResource(pulumi.dynamic.Resource):
    kubeconfig: pulumi.Output[str]
    context: pulumi.Output[str]

    def __init__(self, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions):
        super().__init__(KindProvider(), name, {"kubeconfig": None, "context": None, "adopted": None, **props}, opts)


class KindCluster(pulumi.ComponentResource):
    """A kind cluster plus a Kubernetes provider built from its kubeconfig.

    Example::

        cluster = KindCluster("dev", {"name": "pgtiers-dev",
                                      "port_mappings": [{"container_port": 30432, "host_port": 15432}]})
        k8s.core.v1.Namespace("app", opts=pulumi.ResourceOptions(provider=cluster.provider))
    """

    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    """Secret: it holds the cluster's client key."""
    context: pulumi.Output[str]
    provider: k8s.Provider

    def __init__(self, name: str, args: KindClusterArgs, opts: Optional[pulumi.ResourceOptions] = None):
        super().__init__("pgtiers:index:KindCluster", name, None, opts)
        props = {
            "resource_kind": RESOURCE_KIND,
            "name": args["name"],
            "node_image": args.get("node_image") or KIND_NODE_IMAGE,
            "config": kind_config(args.get("port_mappings") or (), args.get("data_dir")),
            "kind_binary": args.get("kind_binary") or "kind",
        }
        cluster = _KindClusterResource(
            f"{name}-cluster", props,
            pulumi.ResourceOptions(parent=self, additional_secret_outputs=["kubeconfig"]),
        )
        self.cluster_name = pulumi.Output.from_input(args["name"])
        self.kubeconfig = pulumi.Output.secret(cluster.kubeconfig)
        self.context = cluster.context
        self.provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=self.kubeconfig,
            # Server-side apply is the provider's default; say so, the operators' CRDs need it.
            enable_server_side_apply=True,
            # A kind cluster is disposable and may vanish with the machine (a CI runner): then its
            # objects are gone too, and `pulumi destroy`/`refresh` drop them instead of failing.
            delete_unreachable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"cluster_name": self.cluster_name, "kubeconfig": self.kubeconfig,
                               "context": self.context})
