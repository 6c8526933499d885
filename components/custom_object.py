"""CustomObject: a Kubernetes custom resource whose ``status`` can be read back.

``pulumi_kubernetes.apiextensions.CustomResource`` registers only ``apiVersion``, ``kind``,
``metadata`` and ``spec``, so the engine's answer for ``status`` (an RDS endpoint, a CNPG phase)
is dropped. Declaring ``status`` as an output-only property keeps it; it is never sent as input.
"""

from __future__ import annotations

from typing import Any, Optional

import pulumi
from pulumi_kubernetes import _utilities
from pulumi_kubernetes.apiextensions import CustomResource, CustomResourceArgs


class CustomObject(CustomResource):
    """A custom resource with ``status`` as an output (read after Pulumi's await logic)."""

    status: pulumi.Output[Any]

    def __init__(self, resource_name: str, api_version: str, kind: str, spec: Optional[pulumi.Input[Any]] = None,
                 metadata: Optional[pulumi.Input[Any]] = None, opts: Optional[pulumi.ResourceOptions] = None):
        opts = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(version=_utilities.get_version()))
        props = CustomResourceArgs.__new__(CustomResourceArgs)
        props.__dict__.update(api_version=api_version, kind=kind, metadata=metadata, spec=spec, status=None)
        # Same type token as CustomResource, so state and the engine treat it identically.
        pulumi.CustomResource.__init__(self, f"kubernetes:{api_version}:{kind}", resource_name, props, opts)

    @property
    def object_name(self) -> pulumi.Output[str]:
        """``metadata.name`` (custom resources' metadata is an untyped map, so no ``.metadata.name``)."""
        return self.metadata.apply(lambda m: (m or {}).get("name"))

    @property
    def object_namespace(self) -> pulumi.Output[str]:
        """``metadata.namespace``."""
        return self.metadata.apply(lambda m: (m or {}).get("namespace"))
