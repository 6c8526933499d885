"""Fake answers for the Kubernetes-native tiers: operator custom resources and the backup bucket.

Each returns what the real provider reports once Pulumi's await logic is satisfied (a CNPG
Cluster with its Ready condition, an ACK DBInstance that is ``available`` with its endpoint),
so code that reads ``status`` sees realistic values in the plan.
"""

from __future__ import annotations

from pulumi.runtime.mocks import MockResourceArgs

from .fakes import _k8s_metadata, _suffix, fake

FAKE_REGION = "us-east-1"
FAKE_ACCOUNT = "123456789012"


@fake("aws:s3/bucket:Bucket")
def _bucket(args: MockResourceArgs) -> dict:
    name = args.inputs.get("bucket") or f"{args.inputs.get('bucketPrefix') or args.name + '-'}{_suffix(args.name)}"
    return {"bucket": name, "arn": f"arn:aws:s3:::{name}", "region": FAKE_REGION,
            "bucketRegionalDomainName": f"{name}.s3.{FAKE_REGION}.amazonaws.com",
            "tagsAll": args.inputs.get("tags") or {}}


@fake("kubernetes:postgresql.cnpg.io/v1:Cluster")
def _cnpg_cluster(args: MockResourceArgs) -> dict:
    spec = args.inputs.get("spec") or {}
    instances = int(spec.get("instances", 1))
    name = (args.inputs.get("metadata") or {}).get("name", args.name)
    return {"metadata": _k8s_metadata(args), "status": {
        "phase": "Cluster in healthy state", "instances": instances, "readyInstances": instances,
        "currentPrimary": f"{name}-1", "writeService": f"{name}-rw", "readService": f"{name}-r",
        "conditions": [{"type": "Ready", "status": "True", "reason": "ClusterIsReady"}]}}


@fake("kubernetes:postgresql.cnpg.io/v1:Backup")
def _cnpg_backup(args: MockResourceArgs) -> dict:
    return {"metadata": _k8s_metadata(args), "status": {"phase": "completed", "method": "plugin"}}


@fake("kubernetes:rds.services.k8s.aws/v1alpha1:DBInstance")
def _ack_db_instance(args: MockResourceArgs) -> dict:
    spec = args.inputs.get("spec") or {}
    ident = spec.get("dbInstanceIdentifier") or args.name
    return {"metadata": _k8s_metadata(args), "status": {
        "dbInstanceStatus": "available",
        "endpoint": {"address": f"{ident}.c9akciq32.{FAKE_REGION}.rds.amazonaws.com", "port": 5432,
                     "hostedZoneID": "Z2R2ITUGPM61AM"},
        "ackResourceMetadata": {"arn": f"arn:aws:rds:{FAKE_REGION}:{FAKE_ACCOUNT}:db:{ident}",
                                "ownerAccountID": FAKE_ACCOUNT, "region": FAKE_REGION},
        "conditions": [{"type": "ACK.ResourceSynced", "status": "True"}]}}
