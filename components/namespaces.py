"""The namespace a component's objects go in: a plain name, or a Namespace the component creates."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s


def namespace_for(name: str, namespace: pulumi.Input[str], create: bool,
                  opts: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """``namespace`` as an Output; with ``create``, a Namespace ``<name>-ns`` made with ``opts``
    (which decide its parent and protection) and the Output is its name, so objects placed in it
    wait for it."""
    if not create:
        return pulumi.Output.from_input(namespace)
    ns = k8s.core.v1.Namespace(
        f"{name}-ns", metadata={"name": namespace, "labels": {"app.kubernetes.io/part-of": "pgtiers"}}, opts=opts)
    return ns.metadata.name
