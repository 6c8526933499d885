"""LocalPostgres on a cluster you already have (Docker Desktop, minikube, an existing kind).

    pulumi config set kubeContext docker-desktop
"""

import pulumi
import pulumi_kubernetes as k8s

from components import AppDatabaseSecret, LocalPostgres

config = pulumi.Config()
provider = k8s.Provider("existing", context=config.get("kubeContext") or "docker-desktop")
opts = pulumi.ResourceOptions(providers={"kubernetes": provider})

db = LocalPostgres("scratch", {"namespace": "scratch-db", "version": 17, "database": "shop", "node_port": None}, opts)
AppDatabaseSecret("shop", {"connection": db.connection, "namespaces": ["shop"], "create_namespaces": True}, opts)
pulumi.export("host", db.host)
