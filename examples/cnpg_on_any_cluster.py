"""CnpgCluster on a cluster you already have: no EKS component, just a Kubernetes provider.

    pulumi config set kubeContext my-cluster
    pulumi config set --path oidc.providerArn arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC
    pulumi config set --path oidc.issuer oidc.eks.eu-west-1.amazonaws.com/id/ABC

Without the ``oidc`` keys the cluster runs with no object-store backups (fine for a laptop,
not for data you keep). With them, the bucket, IRSA role and scheduled backups come along.
"""

import pulumi
import pulumi_kubernetes as k8s

from components import AppDatabaseSecret
from components.db.cnpg import CnpgCluster

config = pulumi.Config()
provider = k8s.Provider("existing", context=config.get("kubeContext") or "kind-pgtiers-dev")
oidc = config.get_object("oidc") or {}

db = CnpgCluster(
    "shop",
    {"namespace": "shop-db", "instances": 1 if not oidc else 3, "version": 17, "database": "shop", "username": "shop",
     "oidc_provider_arn": oidc.get("providerArn"), "oidc_issuer": oidc.get("issuer")},
    pulumi.ResourceOptions(providers={"kubernetes": provider}),
)
AppDatabaseSecret("shop", {"connection": db.connection, "namespaces": ["shop"], "create_namespaces": True},
                  pulumi.ResourceOptions(providers={"kubernetes": provider}))
pulumi.export("host", db.host)
pulumi.export("readerHost", db.reader_host)
