"""A loopback fake of the Neon API v2, shaped after ../shared/reference/neon-openapi.json.

It is deliberately unfriendly in the ways the real service is: operations take time and run
one after another per branch, mutating a branch while one runs answers 423 Locked, random 423s
and 429 bursts can be switched on (seeded, so a failing run can be replayed), expired branches
vanish, default and protected branches refuse deletion, and branching copies the parent's role
passwords. Branch names are not unique (the worst case for a get-or-create caller).

Every request and response is recorded in ``exchanges`` so tests can validate both against
the published description.

A branch's database can be bound to a database on a real PostgreSQL (``bind_database``): then
``GET /projects/{id}/connection_uri`` answers a URI that reaches it, and a schema-only child of
a bound branch gets a real database too, made the way Neon's schema-only branching behaves
(``CREATE DATABASE ... TEMPLATE parent``, then every user table emptied).
"""

from __future__ import annotations

import dataclasses
import json
import random
import re
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

API_PREFIX = "/api/v2"
MAX_TTL = timedelta(days=30)
WORDS_A = ("aged", "bitter", "calm", "dark", "floral", "icy", "little", "noisy", "proud", "shiny")
WORDS_B = ("salad", "sound", "breeze", "hill", "dream", "smoke", "sunset", "paper", "wind", "pine")


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@dataclasses.dataclass
class Exchange:
    method: str
    path: str  # without the /api/v2 prefix
    query: dict[str, list[str]]
    body: Any
    status: int
    response: Any
    headers: dict[str, str]


class FakeError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeNeon:
    """State plus an HTTP server on 127.0.0.1:<random port>. Use as a context manager."""

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        op_seconds: float = 0.0,
        locked_rate: float = 0.0,
        burst_rate: float = 0.0,
        burst_length: int = 3,
        retry_after: Optional[str] = None,
        seed: int = 0,
        region: str = "us-east-2",
        gone_delete_status: int = 404,
        expiry_lag: float = 0.0,
    ) -> None:
        self.api_key = api_key
        self.op_seconds = op_seconds
        self.locked_rate = locked_rate
        self.burst_rate = burst_rate
        self.burst_length = burst_length
        self.retry_after = retry_after
        self.region = region
        self.gone_delete_status = gone_delete_status
        self.expiry_lag = timedelta(seconds=expiry_lag)  # Neon's expiry job runs late
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.exchanges: list[Exchange] = []
        self.fail_actions: set[str] = set()  # operation actions that end "failed"
        self.wall_offset = timedelta(0)
        self.projects: dict[str, dict] = {}
        self.branches: dict[str, dict] = {}  # id -> branch (+ private keys starting with "_")
        self.endpoints: dict[str, dict] = {}
        self.operations: dict[str, dict] = {}
        #: (branch id, Neon database name) -> the real database it stands for (see bind_database).
        self.bound: dict[tuple[str, str], dict] = {}
        self._burst_left = 0
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ---- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> "FakeNeon":
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        # A short poll interval so leaving the context (shutdown) takes milliseconds, not 0.5 s.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        for branch_id in {k[0] for k, v in self.bound.items() if v["owned"]}:
            self._drop_owned_databases(branch_id)

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}{API_PREFIX}"

    # ---- clocks -----------------------------------------------------------------------

    def now(self) -> datetime:
        """The fake's wall clock; ``advance`` moves it so TTLs can pass without waiting."""
        return datetime.now(timezone.utc) + self.wall_offset

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.wall_offset += timedelta(seconds=seconds)

    # ---- seeding ----------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.choice(WORDS_A)}-{self.rng.choice(WORDS_B)}-{self.rng.randrange(10**6):06d}"

    def _password(self) -> str:
        alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        return "".join(self.rng.choice(alphabet) for _ in range(12))

    def add_project(self, project_id: str, *, role: str = "neondb_owner", database: str = "neondb") -> dict:
        """A project with its default branch ``main`` (ready, with a compute, a role and a db)."""
        with self.lock:
            self.projects[project_id] = {"id": project_id}
            main = self.add_branch(project_id, "main", default=True)
            main["_roles"][role] = self._role(main["id"], role, self._password())
            main["_databases"][database] = self._database(main["id"], database, role)
            self._add_endpoint(project_id, main["id"], {"type": "read_write"})
            return main

    def add_branch(self, project_id: str, name: str, *, parent_id: Optional[str] = None,
                   default: bool = False, protected: bool = False, expires_at: Optional[datetime] = None,
                   annotation: Optional[dict[str, str]] = None, created_at: Optional[datetime] = None) -> dict:
        """Insert a ready branch directly (no operations): for arranging a test's world."""
        with self.lock:
            stamp = _iso(created_at or self.now())
            branch = {
                "id": self._id("br"), "project_id": project_id, "name": name,
                "current_state": "ready", "state_changed_at": stamp, "logical_size": 30,
                "creation_source": "console", "default": default, "protected": protected,
                "cpu_used_sec": 0, "compute_time_seconds": 0, "active_time_seconds": 0,
                "written_data_bytes": 0, "data_transfer_bytes": 0,
                "created_at": stamp, "updated_at": stamp, "init_source": "parent-data",
                "_roles": {}, "_databases": {}, "_annotation": dict(annotation or {}),
                "_ops": [],
            }
            if parent_id:
                parent = self.branches[parent_id]
                branch["parent_id"] = parent_id
                branch["parent_lsn"] = "0/1DE2850"
                branch["_roles"] = {k: {**v, "branch_id": branch["id"]} for k, v in parent["_roles"].items()}
                branch["_databases"] = {k: {**v, "branch_id": branch["id"]} for k, v in parent["_databases"].items()}
            if expires_at is not None:
                branch["expires_at"] = _iso(expires_at)
            self.branches[branch["id"]] = branch
            return branch

    def _role(self, branch_id: str, name: str, password: str) -> dict:
        stamp = _iso(self.now())
        return {"branch_id": branch_id, "name": name, "password": password, "protected": False,
                "created_at": stamp, "updated_at": stamp}

    def _database(self, branch_id: str, name: str, owner: str) -> dict:
        stamp = _iso(self.now())
        return {"id": self.rng.randrange(10**6), "branch_id": branch_id, "name": name,
                "owner_name": owner, "created_at": stamp, "updated_at": stamp}

    def bind_database(self, branch_id: str, database: str, *, host: str, port: int, dbname: str,
                      user: str, password: str) -> None:
        """Make ``connection_uri`` for this branch's ``database`` reach a real PostgreSQL database.

        The answer's URI carries ``user``/``password`` (the real server's), whatever ``role_name``
        asked for: the fake has no way to make Neon's roles on a real server. The role and the
        database must still exist on the branch, as Neon requires.
        """
        with self.lock:
            branch = self.branches[branch_id]
            if database not in branch["_databases"]:
                raise KeyError(f"branch {branch_id} has no database {database!r}; add it first")
            self.bound[(branch_id, database)] = {"host": host, "port": int(port), "dbname": dbname,
                                                 "user": user, "password": password, "owned": False}

    def bound_conninfo(self, branch_id: str, database: str) -> str:
        """libpq key=value conninfo of a bound database (for tests to look inside)."""
        b = self.bound[(branch_id, database)]
        return (f"host={b['host']} port={b['port']} dbname={b['dbname']} user={b['user']} "
                f"password={b['password']} sslmode=disable")

    def _admin(self, binding: dict) -> Any:
        import psycopg  # test dependency: only a bound fake needs it

        return psycopg.connect(host=binding["host"], port=binding["port"], dbname="postgres",
                               user=binding["user"], password=binding["password"], sslmode="disable",
                               autocommit=True)

    def _schema_only_copy(self, parent_id: str, child_id: str) -> None:
        """Neon's schema-only branching on the real server: the same schema, no rows."""
        import psycopg

        for (branch_id, database), binding in list(self.bound.items()):
            if branch_id != parent_id:
                continue
            # Unique on the server: seeded fakes in one session repeat branch ids.
            dbname = f"{child_id}_{database}"[:50] + f"_{uuid.uuid4().hex[:12]}"
            child = {**binding, "dbname": dbname, "owned": True}
            try:
                self._make_schema_only_database(binding, child)
            except psycopg.Error as exc:
                raise FakeError(500, "", f"schema-only copy of {database} failed in the fake: {exc}") from None
            self.bound[(child_id, database)] = child

    def _make_schema_only_database(self, parent: dict, child: dict) -> None:
        import psycopg
        from psycopg import sql

        dbname = child["dbname"]
        # CREATE DATABASE waits up to 5 s for sessions still closing on the template.
        with self._admin(parent) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(dbname), sql.Identifier(parent["dbname"])))
        with psycopg.connect(host=child["host"], port=child["port"], dbname=dbname, user=child["user"],
                             password=child["password"], sslmode="disable", autocommit=True) as conn:
            tables = conn.execute(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition").fetchall()
            if tables:
                conn.execute(f"TRUNCATE {', '.join(t[0] for t in tables)} RESTART IDENTITY")

    def _drop_owned_databases(self, branch_id: str) -> None:
        for key in [k for k in self.bound if k[0] == branch_id]:
            binding = self.bound.pop(key)
            if not binding["owned"]:
                continue
            try:
                from psycopg import sql

                with self._admin(binding) as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(binding["dbname"])))
            except Exception:  # best effort: the test server is thrown away anyway
                pass

    # ---- queries for tests ------------------------------------------------------------

    def branches_named(self, project_id: str, name: str) -> list[dict]:
        with self.lock:
            self._purge_expired()
            return [b for b in self.branches.values() if b["project_id"] == project_id and b["name"] == name]

    def role_password(self, branch_id: str, role: str) -> str:
        return self.branches[branch_id]["_roles"][role]["password"]

    def busy_seconds(self, branch_id: str) -> float:
        """Total time the branch's operations kept it busy (the service's own share of a create)."""
        ops = [self.operations[i] for i in self.branches.get(branch_id, {}).get("_ops", [])]
        ops += [op for op in self.operations.values() if op["branch_id"] == branch_id and op["_deleted_branch"]]
        return sum(op["_end"] - op["_start"] for op in ops)

    # ---- operations -------------------------------------------------------------------

    def _add_operation(self, project_id: str, branch_id: str, action: str,
                       endpoint_id: Optional[str] = None, deleted_branch: bool = False) -> dict:
        # Operations on one branch run back to back: each starts when the previous one ends.
        now = time.monotonic()
        queue = [self.operations[i] for i in self.branches.get(branch_id, {}).get("_ops", [])]
        start = max([now] + [op["_end"] for op in queue])
        stamp = _iso(self.now())
        op = {
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)), "project_id": project_id,
            "branch_id": branch_id, "action": action, "status": "scheduling", "failures_count": 0,
            "created_at": stamp, "updated_at": stamp, "total_duration_ms": 0,
            "_start": start, "_end": start + self.op_seconds, "_deleted_branch": deleted_branch,
        }
        if endpoint_id:
            op["endpoint_id"] = endpoint_id
        self.operations[op["id"]] = op
        if branch_id in self.branches:
            self.branches[branch_id]["_ops"].append(op["id"])
        return op

    def _op_view(self, op: dict) -> dict:
        now = time.monotonic()
        view = {k: v for k, v in op.items() if not k.startswith("_")}
        if now < op["_start"]:
            view["status"] = "scheduling"
        elif now < op["_end"]:
            view["status"] = "running"
            view["total_duration_ms"] = int((now - op["_start"]) * 1000)
        else:
            failed = op["action"] in self.fail_actions
            view["status"] = "failed" if failed else "finished"
            if failed:
                view["error"] = f"{op['action']} failed (injected by the fake)"
            view["total_duration_ms"] = int((op["_end"] - op["_start"]) * 1000)
        return view

    def _busy(self, branch_id: str) -> bool:
        now = time.monotonic()
        return any(now < self.operations[i]["_end"] for i in self.branches[branch_id]["_ops"])

    def _branch_view(self, branch: dict) -> dict:
        view = {k: v for k, v in branch.items() if not k.startswith("_")}
        if self._busy(branch["id"]) and any(
            self.operations[i]["action"] == "create_timeline" for i in branch["_ops"]
            if time.monotonic() < self.operations[i]["_end"]
        ):
            view["current_state"] = "init"
            view["pending_state"] = "ready"
        return view

    def _annotation(self, branch: dict) -> dict:
        return {"object": {"type": "console/branch", "id": branch["id"]}, "value": dict(branch["_annotation"]),
                "created_at": branch["created_at"], "updated_at": branch["updated_at"]}

    def _purge_expired(self) -> None:
        now = self.now()
        for branch in list(self.branches.values()):
            if branch.get("expires_at") and _parse_time(branch["expires_at"]) + self.expiry_lag <= now:
                self._remove_branch(branch["id"])

    def _remove_branch(self, branch_id: str) -> None:
        for ep_id in [e for e, ep in self.endpoints.items() if ep["branch_id"] == branch_id]:
            del self.endpoints[ep_id]
        del self.branches[branch_id]
        self._drop_owned_databases(branch_id)

    def _add_endpoint(self, project_id: str, branch_id: str, options: dict) -> dict:
        if any(ep["branch_id"] == branch_id and ep["type"] == "read_write" for ep in self.endpoints.values()):
            raise FakeError(400, "", "branch already has a read_write endpoint")
        ep_id = self._id("ep")
        stamp = _iso(self.now())
        endpoint = {
            "host": f"{ep_id}.{self.region}.aws.neon.tech", "id": ep_id, "project_id": project_id,
            "branch_id": branch_id, "region_id": f"aws-{self.region}",
            "autoscaling_limit_min_cu": options.get("autoscaling_limit_min_cu", 0.25),
            "autoscaling_limit_max_cu": options.get("autoscaling_limit_max_cu", 0.25),
            "type": options["type"], "current_state": "idle", "settings": {"pg_settings": {}},
            "pooler_enabled": False, "pooler_mode": "transaction", "disabled": False,
            "passwordless_access": True, "creation_source": "console", "created_at": stamp,
            "updated_at": stamp, "proxy_host": f"{self.region}.aws.neon.tech",
            "suspend_timeout_seconds": options.get("suspend_timeout_seconds", 0),
            "provisioner": "k8s-neonvm",
        }
        self.endpoints[ep_id] = endpoint
        return endpoint

    # ---- request handling -------------------------------------------------------------

    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any,
               headers: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        with self.lock:
            if headers.get("authorization") != f"Bearer {self.api_key}":
                return 401, {"code": "", "message": "authorization failed"}, {}
            self._purge_expired()
            if self._burst_left or (self.burst_rate and self.rng.random() < self.burst_rate):
                self._burst_left = (self._burst_left or self.burst_length) - 1
                extra = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
                return 429, {"code": "", "message": "rate limit exceeded"}, extra
            if method != "GET" and self.locked_rate and self.rng.random() < self.locked_rate:
                return 423, {"code": "", "message": "project already has running operations (injected)"}, {}
            try:
                status, payload = self._route(method, path, query, body)
            except FakeError as exc:
                return exc.status, {"code": exc.code, "message": exc.message}, {}
            return status, payload, {}

    def _project(self, project_id: str) -> None:
        if project_id not in self.projects:
            raise FakeError(404, "", f"project {project_id} not found")

    def _branch(self, project_id: str, branch_id: str) -> dict:
        self._project(project_id)
        branch = self.branches.get(branch_id)
        if branch is None or branch["project_id"] != project_id:
            raise FakeError(404, "", f"branch {branch_id} not found")
        return branch

    def _mutable(self, branch: dict) -> None:
        if self._busy(branch["id"]):
            raise FakeError(423, "", f"branch {branch['id']} has running operations, please retry")

    def _route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) < 2 or parts[0] != "projects":
            raise FakeError(404, "", f"no route for {method} {path}")
        pid, rest = parts[1], parts[2:]
        self._project(pid)
        route = (method, tuple("{}" if i % 2 else p for i, p in enumerate(rest)))
        if route == ("GET", ("branches",)):
            return 200, self._list_branches(pid, query)
        if route == ("POST", ("branches",)):
            return 201, self._create_branch(pid, body or {})
        if route == ("GET", ("connection_uri",)):
            return 200, self._connection_uri(pid, query)
        if route == ("GET", ("operations", "{}")):
            op = self.operations.get(rest[1])
            if op is None or op["project_id"] != pid:
                raise FakeError(404, "", f"operation {rest[1]} not found")
            return 200, {"operation": self._op_view(op)}
        if route == ("POST", ("endpoints",)):
            spec = (body or {}).get("endpoint") or {}
            branch = self._branch(pid, spec.get("branch_id", ""))
            self._mutable(branch)
            endpoint = self._add_endpoint(pid, branch["id"], spec)
            op = self._add_operation(pid, branch["id"], "start_compute", endpoint["id"])
            return 201, {"endpoint": endpoint, "operations": [self._op_view(op)]}
        if route == ("PATCH", ("endpoints", "{}")):
            return 200, self._update_endpoint(pid, rest[1], body)
        if len(rest) < 2 or rest[0] != "branches":
            raise FakeError(404, "", f"no route for {method} {path}")
        branch = self._branch(pid, rest[1])
        sub = route[1][2:]
        if route[0] == "GET" and not sub:
            return 200, {"branch": self._branch_view(branch), "annotation": self._annotation(branch)}
        if route[0] == "DELETE" and not sub:
            return self._delete_branch(pid, branch)
        if route[0] == "PATCH" and not sub:
            return 200, self._update_branch(pid, branch, body)
        if route == ("GET", ("branches", "{}", "endpoints")):
            return 200, {"endpoints": [ep for ep in self.endpoints.values() if ep["branch_id"] == branch["id"]]}
        if route == ("GET", ("branches", "{}", "roles")):
            return 200, {"roles": [{k: v for k, v in r.items() if k != "password"} for r in branch["_roles"].values()]}
        if route == ("POST", ("branches", "{}", "roles")):
            return 201, self._create_role(pid, branch, body)
        if route == ("POST", ("branches", "{}", "roles", "{}", "reset_password")):
            return 200, self._reset_password(pid, branch, rest[3])
        if route == ("GET", ("branches", "{}", "databases")):
            return 200, {"databases": list(branch["_databases"].values())}
        if route == ("POST", ("branches", "{}", "databases")):
            return 201, self._create_database(pid, branch, body)
        raise FakeError(404, "", f"no route for {method} {path}")

    def _connection_uri(self, pid: str, query: dict) -> dict:
        def one(name: str) -> Optional[str]:
            return query.get(name, [None])[0]

        database, role = one("database_name"), one("role_name")
        if not database or not role:
            raise FakeError(400, "", "database_name and role_name are required")
        if one("pooled") not in (None, "true", "false"):
            raise FakeError(400, "", "pooled must be true or false")
        branch_id = one("branch_id") or next(
            b["id"] for b in self.branches.values() if b["project_id"] == pid and b["default"])
        branch = self._branch(pid, branch_id)
        endpoint_id = one("endpoint_id")
        if endpoint_id:
            endpoint = self.endpoints.get(endpoint_id)
            if endpoint is None or endpoint["branch_id"] != branch_id:
                raise FakeError(404, "", f"endpoint {endpoint_id} not found on branch {branch_id}")
        else:
            endpoint = next((e for e in self.endpoints.values()
                             if e["branch_id"] == branch_id and e["type"] == "read_write"), None)
            if endpoint is None:
                raise FakeError(404, "", f"branch {branch_id} has no read_write endpoint")
        if database not in branch["_databases"]:
            raise FakeError(404, "", f"database {database} not found")
        if role not in branch["_roles"]:
            raise FakeError(404, "", f"role {role} not found")
        binding = self.bound.get((branch_id, database))
        if binding is not None:  # the real server has no pooler: pooled or not, the same database
            return {"uri": f"postgresql://{quote(binding['user'], safe='')}:{quote(binding['password'], safe='')}"
                           f"@{binding['host']}:{binding['port']}/{quote(binding['dbname'], safe='')}"
                           "?sslmode=disable"}
        host = endpoint["host"]
        if one("pooled") == "true":
            first, _, rest = host.partition(".")
            host = f"{first}-pooler.{rest}"
        password = branch["_roles"][role]["password"]
        return {"uri": f"postgresql://{quote(role, safe='')}:{quote(password, safe='')}@{host}/"
                       f"{quote(database, safe='')}?sslmode=require"}

    def _list_branches(self, pid: str, query: dict) -> dict:
        found = [b for b in self.branches.values() if b["project_id"] == pid]
        search = query.get("search", [""])[0]
        if search:
            found = [b for b in found if search in b["name"] or search in b["id"]]
        found.sort(key=lambda b: (b["created_at"], b["id"]))
        start = int(query.get("cursor", ["0"])[0])
        limit = int(query.get("limit", ["10000"])[0])
        page = found[start:start + limit]
        body = {
            "branches": [self._branch_view(b) for b in page],
            "annotations": {b["id"]: self._annotation(b) for b in page if b["_annotation"]},
        }
        if start + limit < len(found):
            body["pagination"] = {"next": str(start + limit), "sort_by": "created_at", "sort_order": "asc"}
        return body

    def _create_branch(self, pid: str, body: dict) -> dict:
        spec = body.get("branch") or {}
        parent_id = spec.get("parent_id") or next(
            b["id"] for b in self.branches.values() if b["project_id"] == pid and b["default"])
        parent = self._branch(pid, parent_id)
        expires_at = None
        if spec.get("expires_at"):
            expires_at = _parse_time(spec["expires_at"])
            if not self.now() < expires_at <= self.now() + MAX_TTL:
                raise FakeError(400, "", "expires_at must be in the future and at most 30 days ahead")
        if spec.get("init_source") not in (None, "parent-data", "schema-only"):
            raise FakeError(400, "", f"unknown init_source {spec['init_source']!r}")
        branch = self.add_branch(pid, spec.get("name") or self._id("br"), parent_id=parent["id"],
                                 expires_at=expires_at, annotation=body.get("annotation_value"))
        branch["creation_source"] = "api"
        if spec.get("init_source") == "schema-only":
            branch["init_source"] = "schema-only"
            del branch["parent_id"], branch["parent_lsn"]  # a schema-only branch is a new root
            self._schema_only_copy(parent["id"], branch["id"])
        ops = [self._add_operation(pid, branch["id"], "create_timeline")]
        endpoints = []
        for options in body.get("endpoints") or []:
            endpoint = self._add_endpoint(pid, branch["id"], options)
            endpoints.append(endpoint)
            ops.append(self._add_operation(pid, branch["id"], "start_compute", endpoint["id"]))
        return {
            "branch": self._branch_view(branch), "endpoints": endpoints,
            "operations": [self._op_view(op) for op in ops],
            "roles": [{k: v for k, v in r.items() if k != "password"} for r in branch["_roles"].values()],
            "databases": list(branch["_databases"].values()),
        }

    def _delete_branch(self, pid: str, branch: dict) -> tuple[int, Any]:
        if branch["default"]:
            raise FakeError(400, "", "cannot delete the project's default branch")
        if branch["protected"]:
            raise FakeError(400, "", "cannot delete a protected branch")
        if any(b.get("parent_id") == branch["id"] for b in self.branches.values()):
            raise FakeError(400, "", "cannot delete a branch that has child branches")
        self._mutable(branch)
        view = self._branch_view(branch)
        ops = [self._add_operation(pid, branch["id"], "suspend_compute"),
               self._add_operation(pid, branch["id"], "delete_timeline")]
        for op in ops:
            op["_deleted_branch"] = True
        self._remove_branch(branch["id"])
        return 200, {"branch": view, "operations": [self._op_view(op) for op in ops]}

    def _update_branch(self, pid: str, branch: dict, body: Any) -> dict:
        spec = (body or {}).get("branch") or {}
        self._mutable(branch)
        if "expires_at" in spec:
            if branch["default"] or branch["protected"]:
                raise FakeError(400, "", "expires_at is not allowed on default or protected branches")
            if spec["expires_at"] is None:
                branch.pop("expires_at", None)
            else:
                when = _parse_time(spec["expires_at"])
                if not self.now() < when <= self.now() + MAX_TTL:
                    raise FakeError(400, "", "expires_at must be in the future and at most 30 days ahead")
                branch["expires_at"] = _iso(when)
        for key in ("name", "protected"):
            if key in spec:
                branch[key] = spec[key]
        branch["updated_at"] = _iso(self.now())
        return {"branch": self._branch_view(branch), "operations": []}

    def _update_endpoint(self, pid: str, endpoint_id: str, body: Any) -> dict:
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None or endpoint["project_id"] != pid:
            raise FakeError(404, "", f"endpoint {endpoint_id} not found")
        branch = self.branches[endpoint["branch_id"]]
        self._mutable(branch)
        spec = (body or {}).get("endpoint") or {}
        for key in ("autoscaling_limit_min_cu", "autoscaling_limit_max_cu", "suspend_timeout_seconds"):
            if key in spec:
                endpoint[key] = spec[key]
        if endpoint["autoscaling_limit_min_cu"] > endpoint["autoscaling_limit_max_cu"]:
            raise FakeError(400, "", "autoscaling_limit_min_cu must not exceed autoscaling_limit_max_cu")
        op = self._add_operation(pid, branch["id"], "apply_config", endpoint_id)
        return {"endpoint": endpoint, "operations": [self._op_view(op)]}

    def _create_role(self, pid: str, branch: dict, body: Any) -> dict:
        name = ((body or {}).get("role") or {}).get("name")
        if not name:
            raise FakeError(400, "", "role.name is required")
        self._mutable(branch)
        if name in branch["_roles"]:
            raise FakeError(409, "", f"role {name} already exists")
        role = branch["_roles"][name] = self._role(branch["id"], name, self._password())
        op = self._add_operation(pid, branch["id"], "apply_config")
        return {"role": dict(role), "operations": [self._op_view(op)]}

    def _reset_password(self, pid: str, branch: dict, name: str) -> dict:
        if name not in branch["_roles"]:
            raise FakeError(404, "", f"role {name} not found")
        self._mutable(branch)
        role = branch["_roles"][name]
        role["password"] = self._password()
        role["updated_at"] = _iso(self.now())
        op = self._add_operation(pid, branch["id"], "apply_config")
        return {"role": dict(role), "operations": [self._op_view(op)]}

    def _create_database(self, pid: str, branch: dict, body: Any) -> dict:
        spec = (body or {}).get("database") or {}
        if not spec.get("name") or not spec.get("owner_name"):
            raise FakeError(400, "", "database.name and database.owner_name are required")
        if spec["owner_name"] not in branch["_roles"]:
            raise FakeError(400, "", f"role {spec['owner_name']} does not exist")
        self._mutable(branch)
        if spec["name"] in branch["_databases"]:
            raise FakeError(409, "", f"database {spec['name']} already exists")
        database = branch["_databases"][spec["name"]] = self._database(branch["id"], spec["name"], spec["owner_name"])
        op = self._add_operation(pid, branch["id"], "apply_config")
        return {"database": dict(database), "operations": [self._op_view(op)]}


class _Handler(BaseHTTPRequestHandler):
    fake: FakeNeon
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, each keep-alive response
    # waits ~40 ms for a delayed ACK, which would dominate the benchmark.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {k.lower(): v for k, v in self.headers.items()}
        query = parse_qs(split.query)
        path = split.path[len(API_PREFIX):] if split.path.startswith(API_PREFIX) else split.path
        status, payload, extra = self.fake.handle(self.command, path, query, body, headers)
        # Neon returns 204 with no body for a branch delete that has nothing left to delete.
        if status == 404 and self.command == "DELETE" and self.fake.gone_delete_status == 204 \
                and re.fullmatch(r"/projects/[^/]+/branches/[^/]+", path):
            status, payload = 204, None
        request_id = headers.get("x-request-id") or str(uuid.uuid4())
        if isinstance(payload, dict) and status >= 400:
            payload["request_id"] = request_id
        data = json.dumps(payload).encode() if payload is not None else b""
        with self.fake.lock:
            self.fake.exchanges.append(Exchange(self.command, path, query, body, status, payload, headers))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Neon-Ret-Request-Id", request_id)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _serve


class OpenApiContract:
    """Checks recorded exchanges against the published OpenAPI description with jsonschema.

    OpenAPI 3.0 schemas are JSON Schema plus ``nullable``; that one keyword is rewritten so a
    stock Draft 7 validator understands it. Formats are not asserted (no extra dependency).
    """

    def __init__(self, spec_file: "Any") -> None:
        import jsonschema  # test dependency; imported here so the fake itself runs without it

        self.spec = self._nullable(json.loads(open(spec_file, encoding="utf-8").read()))
        self._jsonschema = jsonschema
        self._validators: dict[str, Any] = {}
        self.routes = []
        for template, item in self.spec["paths"].items():
            pattern = re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
            self.routes.append((pattern, template, item))

    @classmethod
    def _nullable(cls, node: Any) -> Any:
        if isinstance(node, dict):
            node = {k: cls._nullable(v) for k, v in node.items()}
            if node.pop("nullable", False) and isinstance(node.get("type"), str):
                node["type"] = [node["type"], "null"]
            return node
        if isinstance(node, list):
            return [cls._nullable(v) for v in node]
        return node

    def operation(self, method: str, path: str) -> tuple[str, dict, list]:
        for pattern, template, item in self.routes:
            if pattern.match(path) and method.lower() in item:
                return template, item[method.lower()], item.get("parameters", [])
        raise AssertionError(f"{method} {path} is not in the published API description")

    def _resolve(self, node: dict) -> dict:
        while "$ref" in node:
            target: Any = self.spec
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _check(self, schema: dict, value: Any, what: str) -> list[str]:
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:  # building one over the whole components tree is the slow part
            validator = self._validators[key] = self._jsonschema.Draft7Validator(
                {"allOf": [schema], "components": self.spec["components"]})
        return [f"{what}: {e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(value)]

    def errors(self, exchange: Exchange) -> list[str]:
        """Problems with one exchange's request (path, query, body) and response body."""
        template, op, shared_params = self.operation(exchange.method, exchange.path)
        what = f"{exchange.method} {template}"
        problems: list[str] = []
        values = dict(zip(template.strip("/").split("/"), exchange.path.strip("/").split("/")))
        for param in [self._resolve(p) for p in shared_params + op.get("parameters", [])]:
            schema = param.get("schema", {})
            if param["in"] == "path":
                problems += self._check(schema, unquote(values["{" + param["name"] + "}"]), f"{what} path {param['name']}")
            elif param["in"] == "query" and param["name"] in exchange.query:
                raw = exchange.query[param["name"]][0]
                value = int(raw) if schema.get("type") == "integer" else raw
                if schema.get("type") == "boolean" and raw in ("true", "false"):
                    value = raw == "true"
                problems += self._check(schema, value, f"{what} query {param['name']}")
        known = {self._resolve(p)["name"] for p in shared_params + op.get("parameters", []) if self._resolve(p)["in"] == "query"}
        problems += [f"{what}: query parameter {q!r} is not described" for q in exchange.query if q not in known]
        if "requestBody" in op and exchange.body is not None:
            body_schema = self._resolve(op["requestBody"])["content"]["application/json"]["schema"]
            problems += self._check(body_schema, exchange.body, f"{what} request body")
        elif exchange.body is not None:
            problems.append(f"{what}: sends a body the description does not define")
        responses = op["responses"]
        described = responses.get(str(exchange.status)) or responses.get("default")
        if described is None:
            problems.append(f"{what}: status {exchange.status} is not described")
            return problems
        content = self._resolve(described).get("content")
        if content is None:
            if exchange.response is not None:
                problems.append(f"{what}: status {exchange.status} must have no body")
        else:
            problems += self._check(content["application/json"]["schema"], exchange.response,
                                    f"{what} {exchange.status} response")
        return problems


def reference_spec(test_file: str) -> "Any":
    """../shared/reference/neon-openapi.json next to the checkout, or skip the test."""
    from pathlib import Path

    import pytest

    path = Path(test_file).resolve().parents[2] / "shared" / "reference" / "neon-openapi.json"
    if not path.exists():
        pytest.skip(reason=f"{path} is absent (the Neon API description ships only beside the CI checkout)")
    return path
