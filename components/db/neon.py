"""NeonBranchDb: a Neon branch per pull request / agent run, ready before Pulumi hears back.

The work happens in ``NeonBranchProvider``, a Python dynamic provider over our own
``NeonClient``: get-or-create the branch by exact name (a retried CI job adopts what it made
before, and never lands on another branch), a read-write compute with CU limits, the app's
role and database, a password that is never the parent's, and only then the URLs.

A schema-only branch (``schema_only``) is a new root with the parent's schema and no rows, so
Atlas would find tables but no migration history and refuse to apply ("not clean"). For those,
the provider copies the rows of the tables in ``keep_rows_of`` (by default Atlas's revisions
table) from the parent into the new branch, so Atlas applies only migrations newer than the
parent's.

Branches it creates carry the annotation ``pgtiers-managed: "true"`` (plus ``pgtiers-parent``
and, for ``pr-<n>`` names, ``pgtiers-pr``): that is how the sweeper
(``components.neon_sweep``) tells them from branches people made by hand.

The provider object is pickled into the state by Pulumi, so it holds plain numbers only; the
API key is read from ``NEON_API_KEY`` at call time and never stored.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping, Optional, Sequence, TypedDict
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pulumi
import pulumi.dynamic as dyn
from pulumi.runtime import rpc

from ..connection import DatabaseConnection
from ..migrations_files import REVISIONS_SCHEMA
from ..neon_api import NeonApiError, NeonClient

PORT = 5432
MAX_TTL_SECONDS = 30 * 24 * 3600  # Neon accepts expires_at at most 30 days ahead
MARK_KEY = "pgtiers-managed"
PARENT_KEY = "pgtiers-parent"
PR_KEY = "pgtiers-pr"
PR_NAME = re.compile(r"pr-(\d+)")
PROJECT_ID = re.compile(r"[a-z0-9-]{1,60}")
#: A plain PostgreSQL identifier; keep_rows_of entries are ``schema.table`` of two of them,
#: used exactly as written (quoted), so no SQL can ride along.
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_$]{0,62}"
QUALIFIED_TABLE = re.compile(rf"({IDENTIFIER})\.({IDENTIFIER})")
MAX_KEEP_ROWS_OF = 20
#: Where ``atlas migrate apply --revisions-schema atlas_schema_revisions`` keeps its history.
ATLAS_REVISIONS_TABLE = f"{REVISIONS_SCHEMA}.atlas_schema_revisions"
PSYCOPG_REQUIREMENT = "psycopg[binary]>=3.2,<4"

#: Inputs whose change means a different branch: replace, never mutate in place.
REPLACE_KEYS = ("project_id", "branch_name", "parent_branch", "database", "role", "schema_only")
#: Inputs Neon can change on a live branch.
UPDATE_KEYS = ("ttl_seconds", "min_cu", "max_cu", "suspend_timeout_seconds")
#: ``keep_rows_of`` acts once, when the branch is created: changing it later changes nothing.
INPUT_KEYS = REPLACE_KEYS + UPDATE_KEYS + ("api_url", "keep_rows_of")
SECRET_OUTPUTS = ["password", "database_url", "direct_url"]
DEFAULTS: dict[str, Any] = {"database": "app", "role": "app", "schema_only": False}


class NeonBranchError(Exception):
    """The branch cannot be used or changed safely; the message says which and why."""


# ---- input validation (shared by check() and the component) -----------------------------


def _known(value: Any) -> bool:
    # During preview the engine passes this sentinel for values that are not known yet.
    return value is not None and value != rpc.UNKNOWN and not isinstance(value, pulumi.Output)


def _whole(value: Any) -> Optional[int]:
    # Numbers cross the engine as floats: 3600.0 is a fine ttl, 3600.5 is not.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value) if float(value).is_integer() else None


def validate_inputs(inputs: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(key, reason)`` for every bad input; each reason names the value and what is allowed."""
    problems: list[tuple[str, str]] = []

    def bad(key: str, allowed: str) -> None:
        problems.append((key, f"{key}: {inputs.get(key)!r} is not allowed; {allowed}"))

    project = inputs.get("project_id")
    if project is None:
        problems.append(("project_id", "project_id: required; the Neon project id, e.g. 'shiny-wind-028834'"))
    elif _known(project) and not (isinstance(project, str) and PROJECT_ID.fullmatch(project)):
        bad("project_id", "expected a Neon project id: 1-60 characters of a-z, 0-9 and '-'")
    name = inputs.get("branch_name")
    if name is None:
        problems.append(("branch_name", "branch_name: required; e.g. 'pr-42'"))
    elif _known(name) and not (isinstance(name, str) and 0 < len(name) <= 256 and name.strip() == name):
        bad("branch_name", "expected 1-256 characters without leading or trailing spaces")
    for key in ("parent_branch", "api_url"):
        value = inputs.get(key)
        if _known(value) and not (isinstance(value, str) and value):
            bad(key, "expected a non-empty string or nothing")
    api_url = inputs.get("api_url")
    if _known(api_url) and isinstance(api_url, str) and not api_url.startswith(("http://", "https://")):
        bad("api_url", "expected an http(s) URL such as https://console.neon.tech/api/v2")
    for key in ("database", "role"):
        value = inputs.get(key)
        if _known(value) and not (isinstance(value, str) and 0 < len(value) <= 63):
            bad(key, "expected a PostgreSQL name of 1-63 characters")
    schema_only = inputs.get("schema_only")
    if _known(schema_only) and not isinstance(schema_only, bool):
        bad("schema_only", "expected true or false")
    problems += _keep_rows_of_problems(inputs.get("keep_rows_of"), schema_only)
    ttl = inputs.get("ttl_seconds")
    if _known(ttl) and not (_whole(ttl) is not None and 0 < _whole(ttl) <= MAX_TTL_SECONDS):
        bad("ttl_seconds", f"expected whole seconds from 1 to {MAX_TTL_SECONDS} (30 days, Neon's limit)")
    cus = {}
    for key in ("min_cu", "max_cu"):
        value = inputs.get(key)
        if not _known(value):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0.25:
            bad(key, "expected compute units of at least 0.25")
        else:
            cus[key] = value
    if len(cus) == 2 and cus["min_cu"] > cus["max_cu"]:
        problems.append(("min_cu", f"min_cu: {cus['min_cu']!r} is more than max_cu {cus['max_cu']!r}; "
                                   "min_cu must not exceed max_cu"))
    suspend = inputs.get("suspend_timeout_seconds")
    if _known(suspend):
        whole = _whole(suspend)
        if whole is None or not (whole in (-1, 0) or 60 <= whole <= 604800):
            bad("suspend_timeout_seconds", "expected -1 (never), 0 (Neon's default) or 60-604800 seconds")
    return problems


def _keep_rows_of_problems(value: Any, schema_only: Any) -> list[tuple[str, str]]:
    if not _known(value):
        return []
    key = "keep_rows_of"
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        return [(key, f"{key}: {value!r} is not allowed; expected a list of schema-qualified table "
                      f"names such as [{ATLAS_REVISIONS_TABLE!r}]")]
    if len(value) > MAX_KEEP_ROWS_OF:
        return [(key, f"{key}: {len(value)} tables is not allowed; expected at most {MAX_KEEP_ROWS_OF}")]
    for name in value:
        if not _known(name):
            continue
        if not (isinstance(name, str) and QUALIFIED_TABLE.fullmatch(name)):
            return [(key, f"{key}: {name!r} is not allowed; expected 'schema.table' where each part is a "
                          "PostgreSQL identifier (a letter or '_', then letters, digits, '_' or '$', "
                          "at most 63), used exactly as written")]
    known = [n for n in value if _known(n)]
    if len(set(known)) != len(known):
        twice = next(n for n in known if known.count(n) > 1)
        return [(key, f"{key}: {twice!r} is listed twice")]
    if known and schema_only is False:
        return [(key, f"{key}: {known!r} is not allowed without schema_only; a branch with the parent's "
                      "data already has those rows")]
    return []


def expires_at_for(ttl_seconds: Any, now: Optional[datetime] = None) -> Optional[str]:
    """RFC 3339 with whole seconds, as Neon asks; ``None`` when no TTL."""
    if ttl_seconds is None:
        return None
    moment = (now or datetime.now(timezone.utc)) + timedelta(seconds=int(ttl_seconds))
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def pooled_host_for(host: str, endpoint_id: str) -> str:
    """``ep-x-1.us-east-2.aws.neon.tech`` → ``ep-x-1-pooler.us-east-2.aws.neon.tech``."""
    first, _, rest = host.partition(".")
    if first != endpoint_id or not rest:
        raise NeonBranchError(f"endpoint host {host!r} does not start with its id {endpoint_id!r}")
    return f"{endpoint_id}-pooler.{rest}"


def _is_expired(branch: Mapping[str, Any]) -> bool:
    value = branch.get("expires_at")
    if not value:
        return False
    return datetime.fromisoformat(value.replace("Z", "+00:00")) <= datetime.now(timezone.utc)


# ---- keep_rows_of: rows a schema-only branch copies from its parent ------------------------


def default_keep_rows_of(schema_only: Any) -> Any:
    """Atlas's history table for a schema-only branch, nothing otherwise (an Output in, an Output out)."""
    if isinstance(schema_only, bool):
        return [ATLAS_REVISIONS_TABLE] if schema_only else []
    return pulumi.Output.from_input(schema_only).apply(lambda s: [ATLAS_REVISIONS_TABLE] if s else [])


def _with_password(uri: str, password: str) -> str:
    parts = urlsplit(uri)
    user = quote(parts.username or "", safe="")
    netloc = f"{user}:{quote(password, safe='')}@{parts.netloc.rpartition('@')[2]}"
    return urlunsplit(parts._replace(netloc=netloc))


def _scrub(text: str, secrets: Sequence[str]) -> str:
    """``text`` without any of ``secrets`` (passwords, whole URIs, and the passwords inside URIs)."""
    words: set[str] = set()
    for secret in secrets:
        if not secret:
            continue
        words.add(secret)
        if "://" in secret:
            raw = urlsplit(secret).netloc.rpartition("@")[0].partition(":")[2]
            words.update({raw, unquote(raw)})
    for word in sorted((w for w in words if len(w) >= 4), key=len, reverse=True):
        text = text.replace(word, "***")
    return text


def copy_rows(source_uri: str, target_uri: str, tables: Sequence[str], *, source: str, target: str,
              secrets: Sequence[str] = ()) -> dict[str, Optional[int]]:
    """Copy each table's rows from ``source_uri`` into the same table at ``target_uri``.

    Every table is read from one snapshot of the source and written in one transaction on the
    target: all tables arrive or none. A table missing on the source is skipped (``None``: no
    history yet); a table that already has rows on the target is left alone (``0``), which makes a
    re-run a no-op. Identity/serial sequences on the target are moved past the copied values.
    Errors name the table and both branches (``source``/``target`` are descriptions), never a
    password or URI. Returns ``{table: rows copied or None}``.
    """
    try:
        import psycopg
        from psycopg import sql
    except ImportError:
        raise NeonBranchError(f"keep_rows_of: copying {', '.join(tables)} into {target} needs psycopg 3; "
                              f"add {PSYCOPG_REQUIREMENT!r} to the program's requirements") from None
    secrets = [*secrets, source_uri, target_uri]

    def reason(err: Exception) -> str:
        diag = getattr(err, "diag", None)
        text = (diag.message_primary if diag is not None and diag.message_primary else str(err)).strip()
        return _scrub(text, secrets)

    def connect(uri: str, what: str) -> "psycopg.Connection":
        try:
            return psycopg.connect(uri, connect_timeout=30, application_name="pgtiers-neon-keep-rows")
        except psycopg.Error as err:
            raise NeonBranchError(f"keep_rows_of: cannot connect to {what} to copy {', '.join(tables)}: "
                                  f"{reason(err)}") from None

    copied: dict[str, Optional[int]] = {}
    src = connect(source_uri, source)
    try:
        dst = connect(target_uri, target)
        try:
            # One snapshot of the parent for every table, read-only.
            src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            src.read_only = True
            with src.transaction(), dst.transaction():
                for table in tables:
                    try:
                        copied[table] = _copy_table(src, dst, sql, table)
                    except psycopg.Error as err:
                        raise NeonBranchError(f"keep_rows_of: copying {table} from {source} into {target} "
                                              f"failed, nothing was copied: {reason(err)}") from None
                    except LookupError:
                        raise NeonBranchError(f"keep_rows_of: {table} exists on {source} but not on "
                                              f"{target}; nothing was copied") from None
        finally:
            dst.close()
    finally:
        src.close()
    return copied


def _copy_table(src: Any, dst: Any, sql: Any, table: str) -> Optional[int]:
    match = QUALIFIED_TABLE.fullmatch(table)
    if match is None:  # validate_inputs rejects these first; never build SQL from anything else
        raise ValueError(f"keep_rows_of: {table!r} is not 'schema.table'")
    ident = sql.Identifier(*match.groups())
    quoted = ident.as_string(src)
    if src.execute("SELECT to_regclass(%s)", [quoted]).fetchone()[0] is None:
        return None
    columns = [row[0] for row in src.execute(
        "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
        "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum", [quoted])]
    if dst.execute("SELECT to_regclass(%s)", [quoted]).fetchone()[0] is None:
        raise LookupError(table)
    # Self-conflicting: two copies into the same branch take turns, and the second sees rows.
    dst.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(ident))
    if dst.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(ident)).fetchone()[0]:
        return 0
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    with src.cursor() as reader, dst.cursor() as writer:
        with reader.copy(sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(names, ident)) as out, \
                writer.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(ident, names)) as into:
            for chunk in out:
                into.write(chunk)
    for column in columns:
        sequence = dst.execute("SELECT pg_get_serial_sequence(%s, %s)", [quoted, column]).fetchone()[0]
        if sequence:
            dst.execute(sql.SQL("SELECT setval(%s::regclass, m) FROM (SELECT max({}) AS m FROM {}) s "
                                "WHERE m IS NOT NULL").format(sql.Identifier(column), ident), [sequence])
    return dst.execute(sql.SQL("SELECT count(*) FROM {}").format(ident)).fetchone()[0]


# ---- the dynamic provider ------------------------------------------------------------------


class NeonBranchProvider(dyn.ResourceProvider):
    """CRUD for one Neon branch with a compute, a role and a database.

    Keyword arguments tune the HTTP client (retry deadline per call, operation timeout,
    polling); they are plain floats so the pickled provider stays small and portable.
    """

    def __init__(self, *, deadline: float = 120.0, op_timeout: float = 600.0,
                 poll_initial: float = 0.1, poll_max: float = 0.2, backoff_base: float = 0.2) -> None:
        super().__init__()
        self.backoff_base = float(backoff_base)
        self.deadline = float(deadline)
        self.op_timeout = float(op_timeout)
        self.poll_initial = float(poll_initial)
        self.poll_max = float(poll_max)

    def _client(self, props: Mapping[str, Any]) -> NeonClient:
        return NeonClient(base_url=props.get("api_url") or None, deadline=self.deadline,
                          poll_initial=self.poll_initial, poll_max=self.poll_max,
                          backoff_base=self.backoff_base)

    # -- check / diff --

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> dyn.CheckResult:
        inputs = {**DEFAULTS, **{k: v for k, v in news.items() if v is not None}}
        failures = [dyn.CheckFailure(key, reason) for key, reason in validate_inputs(inputs)]
        return dyn.CheckResult(inputs, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.DiffResult:
        replaces = [k for k in REPLACE_KEYS if olds.get(k) != news.get(k)]
        changed = replaces + [k for k in UPDATE_KEYS + ("api_url",) if olds.get(k) != news.get(k)]
        # Same project and name: the new branch would be found by name and adopted, then the
        # old one deleted — i.e. the new one. Delete first so the name is free.
        same_name = all(olds.get(k) == news.get(k) for k in ("project_id", "branch_name"))
        return dyn.DiffResult(changes=bool(changed), replaces=replaces,
                              stables=["branch_id"] if not replaces else [],
                              delete_before_replace=bool(replaces) and same_name)

    # -- create --

    def create(self, props: dict[str, Any]) -> dyn.CreateResult:
        inputs = {**DEFAULTS, **{k: props.get(k) for k in INPUT_KEYS if props.get(k) is not None}}
        problems = validate_inputs(inputs)
        if problems:
            raise NeonBranchError("; ".join(reason for _, reason in problems))
        project = inputs["project_id"]
        with self._client(inputs) as client:
            branches, annotations = client.list_branches(project)
            parent = self._parent(branches, inputs)
            mine = self._named(branches, inputs["branch_name"])
            if mine is None:
                created = self._create_branch(client, inputs, parent)
                if created is None:  # the POST's answer was lost: look again rather than duplicate
                    branches, annotations = client.list_branches(project, search=inputs["branch_name"])
                    mine = self._named(branches, inputs["branch_name"])
                    if mine is None:
                        raise NeonBranchError(f"creating branch {inputs['branch_name']!r} failed; see the error above")
            if mine is not None:
                self._check_adoptable(mine, annotations.get(mine["id"]), inputs, parent)
                created = self._adopt(client, inputs, mine)
            outs = self._finish(client, inputs, parent, created)
            if inputs.get("schema_only") and inputs.get("keep_rows_of"):
                # New or adopted alike: a table that already has rows on the branch is skipped,
                # so a re-run after a failed copy finishes it and never duplicates a row.
                self._keep_rows(client, inputs, parent, outs)
        return dyn.CreateResult(outs["branch_id"], outs)

    @staticmethod
    def _named(branches: list[dict], name: str) -> Optional[dict]:
        same = [b for b in branches if b["name"] == name]
        if len(same) > 1:
            ids = ", ".join(b["id"] for b in same)
            raise NeonBranchError(f"branch_name: {len(same)} branches are named {name!r} ({ids}); "
                                  "refusing to guess which one is ours — delete the extras")
        return same[0] if same else None

    @staticmethod
    def _parent(branches: list[dict], inputs: Mapping[str, Any]) -> dict:
        wanted = inputs.get("parent_branch")
        if wanted is None:
            found = [b for b in branches if b.get("default")]
            if not found:
                raise NeonBranchError(f"project {inputs['project_id']!r} has no default branch to branch from")
            return found[0]
        by_id = [b for b in branches if b["id"] == wanted]
        by_name = [b for b in branches if b["name"] == wanted]
        if by_id:
            return by_id[0]
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            raise NeonBranchError(f"parent_branch: {wanted!r} names {len(by_name)} branches; give the branch id")
        raise NeonBranchError(f"parent_branch: {wanted!r} is neither the id nor the name of a branch "
                              f"in project {inputs['project_id']!r}")

    @staticmethod
    def _check_adoptable(branch: dict, annotation: Optional[dict], inputs: Mapping[str, Any],
                         parent: dict) -> None:
        name = inputs["branch_name"]
        if branch.get("default") or branch.get("protected"):
            kind = "default" if branch.get("default") else "protected"
            raise NeonBranchError(f"branch_name: {name!r} is the project's {kind} branch ({branch['id']}); "
                                  "pgtiers never takes over a default or protected branch")
        value = (annotation or {}).get("value") or {}
        if value.get(MARK_KEY) != "true":
            raise NeonBranchError(f"branch_name: a branch named {name!r} ({branch['id']}) exists but pgtiers "
                                  "did not create it; choose another name or delete that branch")
        if value.get(PARENT_KEY) not in (None, parent["id"]):
            raise NeonBranchError(f"branch_name: {name!r} ({branch['id']}) was branched from "
                                  f"{value[PARENT_KEY]}, not from parent_branch {parent['name']!r} "
                                  f"({parent['id']}); delete it or use another name")
        schema_only = branch.get("init_source") == "schema-only"
        if schema_only != bool(inputs.get("schema_only")):
            raise NeonBranchError(f"schema_only: {inputs.get('schema_only')!r} does not match existing branch "
                                  f"{name!r} ({branch['id']}), which is {'' if schema_only else 'not '}schema-only")

    def _endpoint_options(self, inputs: Mapping[str, Any]) -> dict:
        options: dict[str, Any] = {"type": "read_write"}
        if inputs.get("min_cu") is not None:
            options["autoscaling_limit_min_cu"] = inputs["min_cu"]
        if inputs.get("max_cu") is not None:
            options["autoscaling_limit_max_cu"] = inputs["max_cu"]
        if inputs.get("suspend_timeout_seconds") is not None:
            options["suspend_timeout_seconds"] = int(inputs["suspend_timeout_seconds"])
        return options

    def _create_branch(self, client: NeonClient, inputs: Mapping[str, Any], parent: dict) -> Optional[dict]:
        project = inputs["project_id"]
        branch: dict[str, Any] = {"name": inputs["branch_name"], "parent_id": parent["id"]}
        if inputs.get("schema_only"):
            branch["init_source"] = "schema-only"
        if inputs.get("ttl_seconds") is not None:
            branch["expires_at"] = expires_at_for(inputs["ttl_seconds"])
        mark = {MARK_KEY: "true", PARENT_KEY: parent["id"]}
        pr = PR_NAME.fullmatch(inputs["branch_name"])
        if pr:
            mark[PR_KEY] = pr.group(1)
        body = {"branch": branch, "endpoints": [self._endpoint_options(inputs)], "annotation_value": mark}
        try:
            answer = client.request("POST", f"/projects/{project}/branches", json=body) or {}
        except NeonApiError as exc:
            if exc.status is None:  # transport failure after sending: it may exist now
                return None
            raise
        client.wait_for_operations(project, answer.get("operations", []), timeout=self.op_timeout)
        return {"branch": answer["branch"], "endpoints": answer.get("endpoints", []),
                "roles": answer.get("roles", []), "databases": answer.get("databases", []), "new": True}

    def _adopt(self, client: NeonClient, inputs: Mapping[str, Any], branch: dict) -> dict:
        project, branch_id = inputs["project_id"], branch["id"]
        # A re-run may find the branch mid-operation (the previous run died waiting): the next
        # mutation would answer 423 anyway, so the client's retries cover it.
        endpoints = client.list_branch_endpoints(project, branch_id)
        return {"branch": branch, "endpoints": endpoints, "roles": client.list_roles(project, branch_id),
                "databases": client.list_databases(project, branch_id), "new": False}

    def _finish(self, client: NeonClient, inputs: Mapping[str, Any], parent: dict, state: dict) -> dict:
        project, branch_id = inputs["project_id"], state["branch"]["id"]
        base = f"/projects/{project}/branches/{branch_id}"
        call = {"project_id": project, "op_timeout": self.op_timeout}

        endpoint = next((e for e in state["endpoints"] if e.get("type") == "read_write"), None)
        if endpoint is None:  # an adopted branch whose compute was never made (or was removed)
            endpoint = client.call("POST", f"/projects/{project}/endpoints",
                                   json={"endpoint": {**self._endpoint_options(inputs), "branch_id": branch_id}},
                                   **call)["endpoint"]

        role = inputs["role"]
        if any(r["name"] == role for r in state["roles"]):
            # Inherited from the parent (same password as the parent) or adopted (password not
            # known to us): a fresh one either way, so a PR URL never carries the parent's.
            password = client.call("POST", f"{base}/roles/{role}/reset_password", **call)["role"]["password"]
        else:
            password = client.call("POST", f"{base}/roles", json={"role": {"name": role}}, **call)["role"].get("password")
            if not password:  # projects with store_passwords off return none: make one we can hand out
                password = client.call("POST", f"{base}/roles/{role}/reset_password", **call)["role"]["password"]

        if not any(d["name"] == inputs["database"] for d in state["databases"]):
            client.call("POST", f"{base}/databases",
                        json={"database": {"name": inputs["database"], "owner_name": role}}, **call)

        branch = self._wait_ready(client, project, branch_id)
        return self._outputs(inputs, parent["id"], branch, endpoint, password)

    def _keep_rows(self, client: NeonClient, inputs: Mapping[str, Any], parent: dict,
                   outs: Mapping[str, Any]) -> None:
        """Copy the ``keep_rows_of`` tables' rows from the parent into the new schema-only branch."""
        project, database = inputs["project_id"], inputs["database"]
        where = f"branch {inputs['branch_name']!r} ({outs['branch_id']})"
        source = f"parent branch {parent.get('name')!r} ({parent['id']})"
        parent_db = next((d for d in client.list_databases(project, parent["id"]) if d["name"] == database), None)
        if parent_db is None:
            return  # the parent has no such database, hence no history to keep
        # Read as the app role when the parent has it (Atlas ran as that role there), else as the
        # database's owner. Both passwords come from the API and go nowhere else.
        parent_roles = {r["name"] for r in client.list_roles(project, parent["id"])}
        reader = inputs["role"] if inputs["role"] in parent_roles else parent_db["owner_name"]
        try:
            parent_uri = client.connection_uri(project, parent["id"], database, reader, pooled=False)
            child_uri = client.connection_uri(project, outs["branch_id"], database, inputs["role"],
                                              endpoint_id=outs["endpoint_id"], pooled=False)
        except NeonApiError as exc:
            raise NeonBranchError(f"keep_rows_of: cannot get the direct connection of {source} or {where} "
                                  f"to copy {', '.join(inputs['keep_rows_of'])}: {exc}") from None
        if not urlsplit(child_uri).password:  # projects that do not store passwords
            child_uri = _with_password(child_uri, outs["password"])
        copy_rows(parent_uri, child_uri, list(inputs["keep_rows_of"]), source=source, target=where,
                  secrets=[outs["password"], parent_uri, child_uri])

    def _wait_ready(self, client: NeonClient, project: str, branch_id: str) -> dict:
        # All operations are finished here, so the branch is normally ready on the first look.
        waited = 0.0
        interval = self.poll_initial
        while True:
            found = client.get_branch(project, branch_id)
            if found is None:
                raise NeonBranchError(f"branch {branch_id} disappeared while it was being set up")
            branch = found["branch"]
            if branch.get("current_state") == "ready":
                return branch
            if waited >= self.op_timeout:
                raise NeonBranchError(f"branch {branch_id} is still {branch.get('current_state')!r} "
                                      f"after {waited:.0f}s")
            client.pause(interval)
            waited += interval
            interval = min(self.poll_max, interval * 1.5)

    @staticmethod
    def _outputs(inputs: Mapping[str, Any], parent_id: str, branch: Mapping[str, Any],
                 endpoint: Mapping[str, Any], password: str) -> dict:
        host = endpoint["host"]
        pooled = pooled_host_for(host, endpoint["id"])
        conn = DatabaseConnection(host=host, port=PORT, database=inputs["database"],
                                  username=inputs["role"], password=password, pooled_host=pooled)
        return {
            **{k: inputs.get(k) for k in INPUT_KEYS},
            "parent_id": parent_id,
            "branch_id": branch["id"],
            "endpoint_id": endpoint["id"],
            "host": host,
            "pooled_host": pooled,
            "port": PORT,
            "expires_at": branch.get("expires_at"),
            "password": password,
            "database_url": conn.url(),
            "direct_url": conn.direct_url(),
        }

    # -- read / update / delete --

    def read(self, id_: str, props: dict[str, Any]) -> dyn.ReadResult:
        project = props.get("project_id")
        with self._client(props) as client:
            found = client.get_branch(project, id_)
            if found is None or _is_expired(found["branch"]):
                # Gone (deleted by hand, swept, or its TTL passed): an empty id tells the engine.
                return dyn.ReadResult("", {})
            branch = found["branch"]
            endpoints = client.list_branch_endpoints(project, id_)
        endpoint = next((e for e in endpoints if e["id"] == props.get("endpoint_id")), None) or next(
            (e for e in endpoints if e.get("type") == "read_write"), None)
        state = {k: v for k, v in props.items() if k != dyn.dynamic.PROVIDER_KEY}
        if endpoint is None:
            return dyn.ReadResult(id_, {**state, "expires_at": branch.get("expires_at")})
        inputs = {**DEFAULTS, **{k: props.get(k) for k in INPUT_KEYS if props.get(k) is not None}}
        outs = self._outputs(inputs, props.get("parent_id", ""), branch, endpoint, props.get("password", ""))
        return dyn.ReadResult(id_, {**state, **outs})

    def _guarded(self, client: NeonClient, project: str, branch_id: str, action: str) -> Optional[dict]:
        found = client.get_branch(project, branch_id)
        if found is None:
            return None
        branch = found["branch"]
        if branch.get("default") or branch.get("protected"):
            kind = "default" if branch.get("default") else "protected"
            raise NeonBranchError(f"refusing to {action} branch {branch['name']!r} ({branch_id}): it is the "
                                  f"project's {kind} branch")
        return branch

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> dyn.UpdateResult:
        project = news["project_id"]
        inputs = {**DEFAULTS, **{k: news.get(k) for k in INPUT_KEYS if news.get(k) is not None}}
        problems = validate_inputs(inputs)
        if problems:
            raise NeonBranchError("; ".join(reason for _, reason in problems))
        outs = {k: v for k, v in olds.items() if k != dyn.dynamic.PROVIDER_KEY}
        outs.update({k: inputs.get(k) for k in INPUT_KEYS})
        with self._client(inputs) as client:
            branch = self._guarded(client, project, id_, "change")
            if branch is None:
                raise NeonBranchError(f"branch {id_} no longer exists (expired or deleted); "
                                      "run `pulumi refresh` so it is created again")
            if olds.get("ttl_seconds") != news.get("ttl_seconds"):
                expires_at = expires_at_for(news.get("ttl_seconds"))
                answer = client.call("PATCH", f"/projects/{project}/branches/{id_}",
                                     json={"branch": {"expires_at": expires_at}},
                                     project_id=project, op_timeout=self.op_timeout)
                outs["expires_at"] = answer["branch"].get("expires_at")
            changed = {k for k in ("min_cu", "max_cu", "suspend_timeout_seconds") if olds.get(k) != news.get(k)}
            options = {k: v for k, v in self._endpoint_options(inputs).items() if k != "type"}
            if changed and options:
                client.call("PATCH", f"/projects/{project}/endpoints/{olds['endpoint_id']}",
                            json={"endpoint": options}, project_id=project, op_timeout=self.op_timeout)
        return dyn.UpdateResult(outs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        project = props["project_id"]
        with self._client(props) as client:
            if self._guarded(client, project, id_, "delete") is None:
                return  # already gone: that is what delete wanted
            client.delete_branch(project, id_, op_timeout=self.op_timeout)


# ---- the Pulumi resources -------------------------------------------------------------------


class NeonBranchDbArgs(TypedDict, total=False):
    project_id: pulumi.Input[str]
    """Neon project id (required), e.g. ``shiny-wind-028834``."""
    branch_name: pulumi.Input[str]
    """Exact branch name (required), e.g. ``pr-42``; an existing pgtiers branch of that name is adopted."""
    parent_branch: Optional[pulumi.Input[str]]
    """Branch to copy from, by name or id (default: the project's default branch)."""
    database: pulumi.Input[str]
    """Database the app owns (default ``app``); created if the parent lacks it."""
    role: pulumi.Input[str]
    """Role the app logs in as (default ``app``); its password is reset on every new branch."""
    schema_only: pulumi.Input[bool]
    """Copy the parent's schema without its data (default false)."""
    keep_rows_of: Optional[pulumi.Input[Sequence[str]]]
    """Tables (``schema.table``) whose rows a new schema-only branch copies from the parent, in one
    transaction, when created. Default: Atlas's history table ``atlas_schema_revisions.atlas_schema_revisions``
    when ``schema_only``, else none (a full branch has every row already)."""
    ttl_seconds: Optional[pulumi.Input[int]]
    """Server-side expiry, 1 s to 30 days from creation; None for no expiry."""
    min_cu: Optional[pulumi.Input[float]]
    """Autoscaling minimum in compute units (>= 0.25; default: the project's setting)."""
    max_cu: Optional[pulumi.Input[float]]
    """Autoscaling maximum in compute units (>= min_cu; default: the project's setting)."""
    suspend_timeout_seconds: Optional[pulumi.Input[int]]
    """Scale to zero after this idle time: -1 never, 0 Neon's default, else 60-604800."""
    api_url: Optional[pulumi.Input[str]]
    """Neon API base URL (default ``NEON_API_URL`` or https://console.neon.tech/api/v2)."""


class NeonBranch(dyn.Resource, name="NeonBranch"):
    """The dynamic resource behind ``NeonBranchDb``; outputs named as in ``NeonBranchProvider``."""

    branch_id: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    parent_id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]
    port: pulumi.Output[int]
    expires_at: pulumi.Output[Optional[str]]
    password: pulumi.Output[str]
    database_url: pulumi.Output[str]
    direct_url: pulumi.Output[str]

    def __init__(self, name: str, props: Mapping[str, Any], opts: Optional[pulumi.ResourceOptions] = None,
                 provider: Optional[NeonBranchProvider] = None) -> None:
        outputs = dict.fromkeys(("parent_id", "branch_id", "endpoint_id", "host", "pooled_host", "port",
                                 "expires_at", "password", "database_url", "direct_url"))
        super().__init__(provider or NeonBranchProvider(), name, {**props, **outputs}, opts)


class NeonBranchDb(pulumi.ComponentResource):
    """A Neon branch with its own compute, role and database, as a ``DatabaseConnection``.

    Example::

        db = NeonBranchDb("pr-db", {"project_id": "shiny-wind-028834", "branch_name": "pr-42",
                                    "ttl_seconds": 7 * 24 * 3600})
        AppDatabaseSecret("app-db", {"connection": db.connection, "namespaces": ["app"]})
    """

    connection: pulumi.Output[DatabaseConnection]
    """Secret. ``url()`` goes through the ``-pooler`` host; ``direct_url()`` (migrations) does not."""
    branch_id: pulumi.Output[str]
    endpoint_id: pulumi.Output[str]
    host: pulumi.Output[str]
    pooled_host: pulumi.Output[str]
    expires_at: pulumi.Output[Optional[str]]
    password: pulumi.Output[str]
    database_url: pulumi.Output[str]
    direct_url: pulumi.Output[str]

    def __init__(self, name: str, args: NeonBranchDbArgs, opts: Optional[pulumi.ResourceOptions] = None,
                 *, provider: Optional[NeonBranchProvider] = None) -> None:
        props = {**DEFAULTS, **{k: v for k, v in dict(args).items() if v is not None}}
        if "keep_rows_of" not in props:
            props["keep_rows_of"] = default_keep_rows_of(props["schema_only"])
        unknown = sorted(set(props) - set(INPUT_KEYS))
        if unknown:
            raise ValueError(f"NeonBranchDb {name}: unknown argument {unknown[0]!r}; allowed: {', '.join(INPUT_KEYS)}")
        problems = validate_inputs(props)
        if problems:  # fail before anything registers, with the same words check() would use
            raise ValueError(f"NeonBranchDb {name}: {problems[0][1]}")
        super().__init__("pgtiers:index:NeonBranchDb", name, None, opts)
        branch = NeonBranch(f"{name}-branch", props, pulumi.ResourceOptions(
            parent=self, additional_secret_outputs=SECRET_OUTPUTS), provider=provider)
        self.branch_id = branch.branch_id
        self.endpoint_id = branch.endpoint_id
        self.host = branch.host
        self.pooled_host = branch.pooled_host
        self.expires_at = branch.expires_at
        self.password = pulumi.Output.secret(branch.password)
        self.database_url = pulumi.Output.secret(branch.database_url)
        self.direct_url = pulumi.Output.secret(branch.direct_url)
        self.connection = pulumi.Output.secret(pulumi.Output.all(
            branch.host, branch.pooled_host, branch.password, props["database"], props["role"],
        ).apply(lambda v: DatabaseConnection(host=v[0], port=PORT, database=v[3], username=v[4],
                                             password=v[2], pooled_host=v[1])))
        self.register_outputs({
            "branch_id": self.branch_id, "endpoint_id": self.endpoint_id, "host": self.host,
            "pooled_host": self.pooled_host, "expires_at": self.expires_at,
        })
