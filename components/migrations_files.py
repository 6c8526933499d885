"""A local Atlas migration directory as data: its files, a content hash, and a faithful apply.

``AtlasMigrations`` ships the files in a ConfigMap and names its Job after ``directory_hash`` so a
changed migration set runs a new Job and an unchanged one runs none. ``apply_migrations`` executes
the same files with the semantics ``atlas migrate apply`` uses for plain SQL files on PostgreSQL,
so tests and the sandbox seed checks can prove a migration set on a real server without the Atlas
binary (which no package we can install ships).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from components import atlas_sum

if TYPE_CHECKING:
    import psycopg

# A ConfigMap key must match this; every file becomes one key, so a name outside it would only
# fail at `pulumi up` time inside the Kubernetes API.
_CONFIGMAP_KEY = re.compile(r"[-._a-zA-Z0-9]+")
# etcd's object limit, which caps a whole ConfigMap; leave room for metadata.
CONFIGMAP_DATA_LIMIT = 1_000_000

# Atlas's defaults for PostgreSQL: revisions live in their own schema, and concurrent `migrate
# apply` runs serialise on a session advisory lock with this name (sql/migrate/migrate.go).
REVISIONS_SCHEMA = "atlas_schema_revisions"
_LOCK_NAME = "atlas_migration_execute"
_REVISION_TYPE_EXECUTE = 2  # migrate.RevisionTypeExecute
_OPERATOR_VERSION = "pgtiers-python"
# File-level directives whose semantics this runner does not reproduce; Atlas's image does.
_UNSUPPORTED_DIRECTIVE = re.compile(r"^--\s*atlas:(txmode|checkpoint)\b.*$", re.MULTILINE)


class MigrationsError(ValueError):
    """The migration directory is unusable, or applying it failed; the message says which file."""


def read_migrations_dir(directory: str | Path) -> dict[str, str]:
    """Read the files Atlas uses (top-level ``*.sql`` and ``atlas.sum``) as ``{name: text}``, name-sorted.

    Verifies atlas.sum first, because ``atlas migrate apply`` refuses a directory whose sum does not
    match: better to fail at preview than in a Job inside the cluster.
    """
    root = Path(directory)
    sum_path = root / atlas_sum.SUM_FILE
    # Read once, check what was read: the ConfigMap then carries exactly the bytes that were verified.
    try:
        sql_files = atlas_sum.migration_files(root)
        sum_raw = sum_path.read_bytes() if sum_path.is_file() else None
        atlas_sum.check(sql_files, None if sum_raw is None else sum_raw.decode("utf-8", errors="replace"),
                        str(sum_path))
    except atlas_sum.AtlasSumError as err:
        raise MigrationsError(str(err)) from None
    if not sql_files:
        raise MigrationsError(f"migration directory {str(root)!r} has no .sql files")
    files: dict[str, str] = {}
    for name, raw in [*sql_files, (atlas_sum.SUM_FILE, sum_raw)]:
        if not _CONFIGMAP_KEY.fullmatch(name):
            raise MigrationsError(f"migration file name {name!r} cannot be a ConfigMap key; "
                                  f"use only letters, digits, '-', '_' and '.'")
        try:
            # Decoded from bytes, not read in text mode: newline translation would change what
            # atlas.sum hashed.
            files[name] = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise MigrationsError(f"migration file {name!r} is not UTF-8 text; a ConfigMap cannot carry it") from None
    size = sum(len(content.encode()) for content in files.values())
    if size > CONFIGMAP_DATA_LIMIT:
        raise MigrationsError(f"migration directory {str(root)!r} holds {size} bytes, more than a ConfigMap "
                              f"can carry ({CONFIGMAP_DATA_LIMIT}); squash old migrations with a checkpoint")
    return files


def directory_hash(files: Mapping[str, str | bytes], length: int = 10) -> str:
    """A short lowercase hex digest of names and contents, usable inside a Kubernetes name.

    Each name and content is length-prefixed, so moving bytes between a name and its content or
    between files cannot produce the same digest.
    """
    if not 1 <= length <= 64:
        raise ValueError(f"length must be between 1 and 64, got {length}")
    digest = hashlib.sha256()
    for name in sorted(files, key=lambda n: n.encode()):
        content = files[name]
        for part in (name.encode(), content.encode() if isinstance(content, str) else content):
            digest.update(len(part).to_bytes(8, "big"))
            digest.update(part)
    return digest.hexdigest()[:length]


def version_of(name: str) -> str:
    """Atlas's ``LocalFile.Version``: the part of the name before the first '_', without '.sql'."""
    return name.removesuffix(".sql").split("_", 1)[0]


def _description_of(name: str) -> str:
    parts = name.split("_", 1)
    return parts[1].removesuffix(".sql") if len(parts) == 2 else ""


def _line_of(text: str, position: str | None) -> str:
    if not position:
        return ""
    # PostgreSQL's position is 1-based, in characters of the whole multi-statement query.
    line = text.count("\n", 0, int(position) - 1) + 1
    return f" line {line}"


def _ensure_revisions_table(conn: psycopg.Connection) -> None:
    # The column set of Atlas's revisions table (cmd/atlas/internal/migrate/ent/schema/revision.go),
    # so `atlas migrate status` reads what this runner wrote.
    with conn.transaction():
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{REVISIONS_SCHEMA}"')
        conn.execute(f'''CREATE TABLE IF NOT EXISTS "{REVISIONS_SCHEMA}"."atlas_schema_revisions" (
            "version" character varying NOT NULL PRIMARY KEY,
            "description" character varying NOT NULL,
            "type" bigint NOT NULL DEFAULT {_REVISION_TYPE_EXECUTE},
            "applied" bigint NOT NULL DEFAULT 0,
            "total" bigint NOT NULL DEFAULT 0,
            "executed_at" timestamptz NOT NULL,
            "execution_time" bigint NOT NULL,
            "error" text NULL,
            "error_stmt" text NULL,
            "hash" character varying NOT NULL,
            "partial_hashes" jsonb NULL,
            "operator_version" character varying NOT NULL)''')


def _user_tables(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema', %s) ORDER BY 1",
        (REVISIONS_SCHEMA,)).fetchall()
    return [r[0] for r in rows]


def _pending(files: Mapping[str, str], applied: list[str], *, database_tables: list[str],
             allow_dirty: bool) -> list[str]:
    """Atlas's ``Executor.Pending`` (sql/migrate/migrate.go) for the default linear exec order."""
    sql_names = sorted((n for n in files if n.endswith(".sql")), key=lambda n: n.encode())
    by_version: dict[str, str] = {}
    for name in sql_names:
        if (other := by_version.setdefault(version_of(name), name)) != name:
            raise MigrationsError(f"migration files {other!r} and {name!r} share version {version_of(name)!r}")
    if not applied:
        if database_tables and not allow_dirty:
            raise MigrationsError(f"the database is not clean (found {', '.join(database_tables[:5])}) and has no "
                                  f"migration history; baseline it or pass allow_dirty=True, as Atlas requires")
        pending = sql_names
    else:
        first, last = min(applied), max(applied)
        pending = [n for n in sql_names if version_of(n) > last]
        # A file inside the applied range that never ran was added out of order (usually a merge of
        # two branches): Atlas stops rather than run it after newer migrations.
        if skipped := [n for n in sql_names if first <= version_of(n) < last and version_of(n) not in applied]:
            raise MigrationsError(f"migration {', '.join(skipped)} added out of order: it sorts before the last "
                                  f"applied version {last}; give it a newer version")
    for name in pending:
        if match := _UNSUPPORTED_DIRECTIVE.search(files[name]):
            raise MigrationsError(f"{name}: the directive {match.group(0).strip()!r} is not supported here; "
                                  f"apply this directory with the atlas image")
    return pending


def apply_migrations(conninfo: str, files: Mapping[str, str], *, allow_dirty: bool = False,
                     lock_timeout_s: float = 10.0) -> list[str]:
    """Apply pending migrations the way ``atlas migrate apply`` does; return the versions applied.

    ``files`` is what ``read_migrations_dir`` returns (its atlas.sum is re-verified here). Each
    pending file runs in its own transaction together with its revision row, in version order, so
    a failing file leaves the database at the previous version. Re-running applies nothing.
    """
    sql_files = sorted(((n, c.encode()) for n, c in files.items() if n.endswith(".sql")),
                       key=lambda item: item[0].encode())
    # Atlas refuses a directory whose atlas.sum is missing or stale, before touching the database.
    try:
        atlas_sum.check(sql_files, files.get(atlas_sum.SUM_FILE))
    except atlas_sum.AtlasSumError as err:
        raise MigrationsError(str(err)) from None
    hashes = {entry.name: entry.hash for entry in atlas_sum.compute(sql_files)}

    # Imported here: the Pulumi program imports this module for the files and the hash only, and
    # psycopg is a test/tooling dependency, not a runtime one.
    import psycopg

    try:
        conn = psycopg.connect(conninfo, autocommit=True)
    except psycopg.OperationalError as err:
        # libpq's message names host, port and cause, never the password.
        raise MigrationsError(f"cannot connect to the database: {str(err).strip()}") from None
    with conn:
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(lock_timeout_s * 1000)}ms",))
        try:
            conn.execute("SELECT pg_advisory_lock(hashtext(%s))", (_LOCK_NAME,))
        except psycopg.errors.LockNotAvailable:
            raise MigrationsError(f"another migration run holds the lock {_LOCK_NAME!r} "
                                  f"(waited {lock_timeout_s:g}s)") from None
        # A session lock: closing the connection releases it, even after a failed file.
        conn.execute("SET lock_timeout = DEFAULT")
        _ensure_revisions_table(conn)
        applied = [r[0] for r in conn.execute(
            f'SELECT version FROM "{REVISIONS_SCHEMA}"."atlas_schema_revisions" '
            f'WHERE type & {_REVISION_TYPE_EXECUTE} <> 0 ORDER BY version').fetchall()]
        pending = _pending(files, applied, database_tables=_user_tables(conn), allow_dirty=allow_dirty)
        for name in pending:
            _apply_file(conn, name, files[name], hashes.get(name, ""))
    return [version_of(n) for n in pending]


def _apply_file(conn: psycopg.Connection, name: str, sql: str, file_hash: str) -> None:
    import psycopg

    started = time.monotonic_ns()
    try:
        with conn.transaction():
            # No parameters: psycopg sends the file as one simple-protocol query, which runs every
            # statement in it (with no '%' placeholders) and yields one result per statement.
            cursor = conn.execute(sql.encode())
            statements = 0
            while True:
                if cursor.pgresult is not None and cursor.pgresult.status != psycopg.pq.ExecStatus.EMPTY_QUERY:
                    statements += 1
                if not cursor.nextset():
                    break
            conn.execute(
                f'INSERT INTO "{REVISIONS_SCHEMA}"."atlas_schema_revisions" (version, description, type, applied, '
                f'total, executed_at, execution_time, hash, operator_version) '
                f'VALUES (%s, %s, %s, %s, %s, now(), %s, %s, %s)',
                (version_of(name), _description_of(name), _REVISION_TYPE_EXECUTE, statements, statements,
                 time.monotonic_ns() - started, file_hash, _OPERATOR_VERSION))
    except psycopg.Error as err:
        where = _line_of(sql, err.diag.statement_position)
        raise MigrationsError(f"{name}{where}: {err.diag.message_primary or err}; "
                              f"this file was rolled back, earlier files stay applied") from None
