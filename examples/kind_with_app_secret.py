"""A kind cluster, a disposable Postgres in it, and the Secret two app namespaces read."""

import pulumi

from components import AppDatabaseSecret, KindCluster, LocalPostgres

cluster = KindCluster("play", {"name": "play", "port_mappings": [{"container_port": 30433, "host_port": 25432}]})
opts = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider})
db = LocalPostgres("play-db", {"node_port": 30433}, opts)
secret = AppDatabaseSecret("play-app", {"connection": db.connection, "namespaces": ["web", "worker"],
                                        "create_namespaces": True}, opts)
pulumi.export("secrets", secret.secret_names)
