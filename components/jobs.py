"""The run-once Kubernetes Job that migrations, the connectivity check and seed data share.

One container, restricted (non-root, no privilege escalation, read-only root filesystem, no
capabilities, no service-account token), writable only in a small ``/tmp`` emptyDir. The Job never
restarts a Pod in place, bounds its retries and its run time, and goes away a while after it
finishes. Pulumi replaces it whole (delete first) because a Job's template is immutable.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Optional, Sequence, Union

import pulumi
import pulumi_kubernetes as k8s

from .config import POSTGRES_IMAGES

RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


def short_hash(*parts: str, length: int = 10) -> str:
    """The first ``length`` hex digits of a SHA-256 over ``parts`` (JSON-encoded, so no two
    different sequences of parts hash the same input): short enough for a Kubernetes name."""
    return hashlib.sha256(json.dumps(list(parts)).encode()).hexdigest()[:length]


def postgres_major(version: Union[int, str], field: str) -> int:
    """The major of a server version given as ``16`` or ``"16.4"`` (Aurora lets a stack pin a minor)."""
    try:
        major = int(str(version).split(".")[0])  # str(True) is "True": refused too
    except ValueError:
        major = 0
    if major < 1:
        raise ValueError(f"{field}: {version!r} is not a PostgreSQL version (a major such as 16, or \"16.4\")")
    return major


def psql_image(version: Union[int, str], field: str) -> str:
    """The pinned official ``postgres`` image whose ``psql`` talks to a server of ``version``.

    The server's own major when it is pinned; otherwise the newest pinned one. psql is
    backward compatible: a newer client talks to every older server (back to 9.2), while an older
    client may not know a newer server. So a server major without a pinned image of its own
    (Aurora 13, say, or one newer than the table) still gets a client, and no valid stack fails here.
    """
    major = postgres_major(version, field)
    return POSTGRES_IMAGES[major] if major in POSTGRES_IMAGES else POSTGRES_IMAGES[max(POSTGRES_IMAGES)]


def pod_security(uid: int) -> dict:
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def run_once_job(resource_name: str, *, job_name: pulumi.Input[str], namespace: pulumi.Input[str],
                 labels: dict[str, str], uid: int, container: dict[str, Any],
                 volumes: Sequence[dict[str, Any]] = (), tmp_size: str,
                 backoff_limit: int, active_deadline_seconds: int, ttl_seconds_after_finished: int,
                 parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource],
                 custom_timeouts: Optional[pulumi.CustomTimeouts] = None) -> k8s.batch.v1.Job:
    """The Job ``job_name`` running ``container`` once as ``uid`` with ``volumes``, plus a ``tmp_size``
    emptyDir mounted on ``/tmp`` (after the container's own ``volumeMounts``; the last volume)."""
    container = {
        **container,
        "volumeMounts": [*container.get("volumeMounts", []), {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": RESTRICTED_CONTAINER,
    }
    return k8s.batch.v1.Job(
        resource_name,
        metadata={"name": job_name, "namespace": namespace, "labels": labels},
        spec={
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": active_deadline_seconds,
            "ttlSecondsAfterFinished": ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(uid),
                    "containers": [container],
                    "volumes": [*volumes, {"name": "tmp", "emptyDir": {"sizeLimit": tmp_size}}],
                },
            },
        },
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(depends_on),
            # A spec change that keeps the Job's name: its template is immutable, so replace it whole.
            delete_before_replace=True,
            custom_timeouts=custom_timeouts))
