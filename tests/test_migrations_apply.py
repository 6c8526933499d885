"""The example migrations on a real PostgreSQL, with Atlas's apply semantics, and the sqlc queries
prepared against the schema they build; plus the migration directory's files and content hash."""

from __future__ import annotations

import itertools
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

import pgserver
from components import atlas_sum
from components.migrations_files import (MigrationsError, apply_migrations, directory_hash,
                                         read_migrations_dir)

REPO = Path(__file__).resolve().parent.parent
MIGRATIONS = REPO / "migrations"
QUERIES = REPO / "queries"
REVISIONS = '"atlas_schema_revisions"."atlas_schema_revisions"'

# sqlc's query annotation: `-- name: GetTask :one`.
_ANNOTATION = re.compile(r"^-- name: (\w+) :(\w+)\s*$", re.MULTILINE)
_SQLC_KINDS = {"one", "many", "exec", "execrows", "execresult", "execlastid"}
_db_names = itertools.count()


@pytest.fixture(scope="module")
def server() -> Iterator[pgserver.PgServer]:
    srv = pgserver.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def database(server: pgserver.PgServer) -> str:
    """A fresh, empty database per test, so order of tests never matters; returns its conninfo."""
    name = f"app_{next(_db_names)}"
    with psycopg.connect(server.superuser_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.superuser_conninfo.replace("dbname=postgres", f"dbname={name}")


@pytest.fixture
def migrated(database: str) -> str:
    apply_migrations(database, read_migrations_dir(MIGRATIONS))
    return database


def _versions() -> list[str]:
    return [name.split("_", 1)[0] for name, _ in atlas_sum.migration_files(MIGRATIONS)]


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, target)
    return target


def _add_migration(directory: Path, name: str, sql: str) -> dict[str, str]:
    (directory / name).write_text(sql)
    atlas_sum.write(directory)
    return read_migrations_dir(directory)


# --- applying ---------------------------------------------------------------------------------

def test_example_migrations_apply_in_version_order(database: str) -> None:
    assert apply_migrations(database, read_migrations_dir(MIGRATIONS)) == _versions()
    with psycopg.connect(database) as conn:
        columns = {r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'tasks'")}
        assert {"id", "project_id", "title", "status", "priority", "created_at", "assignee_id", "due_at"} <= columns
        indexes = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
        assert {"tasks_project_id_status_idx", "tasks_assignee_id_idx", "tasks_open_due_at_idx"} <= indexes
        rows = conn.execute(f"SELECT version, description, type, applied, total, hash FROM {REVISIONS} "
                            "ORDER BY version").fetchall()
    recorded = {e.name.split("_", 1)[0]: e.hash for e in atlas_sum.parse((MIGRATIONS / "atlas.sum").read_text())}
    assert [r[0] for r in rows] == _versions()
    assert rows[0][1] == "init"
    # Each revision carries its atlas.sum entry and the statement count Atlas would record.
    assert all(r[2] == 2 and r[3] == r[4] > 0 and r[5] == recorded[r[0]] for r in rows)
    assert rows[0][4] == 4  # three CREATE TABLE and one CREATE INDEX


def test_schema_enforces_its_constraints_and_defaults(migrated: str) -> None:
    with psycopg.connect(migrated) as conn:
        account = conn.execute("INSERT INTO accounts (email, display_name) VALUES ('a@example.com', 'A') "
                               "RETURNING id, created_at").fetchone()
        assert account[1] is not None  # the timestamp default
        project = conn.execute("INSERT INTO projects (account_id, name) VALUES (%s, 'p') RETURNING id",
                               (account[0],)).fetchone()[0]
        status = conn.execute("INSERT INTO tasks (project_id, title) VALUES (%s, 't') RETURNING status, priority",
                              (project,)).fetchone()
        assert status == ("todo", 3)
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation, match="tasks_status_check"):
            conn.execute("INSERT INTO tasks (project_id, title, status) VALUES (%s, 'x', 'later')", (project,))
        conn.rollback()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO projects (account_id, name) VALUES (999999, 'orphan')")
        conn.rollback()
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO accounts (email, display_name) VALUES ('a@example.com', 'again')")
        conn.rollback()
        conn.execute("DELETE FROM accounts WHERE id = %s", (account[0],))
        assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == 0  # cascaded


def test_reapplying_applies_nothing(migrated: str) -> None:
    assert apply_migrations(migrated, read_migrations_dir(MIGRATIONS)) == []
    with psycopg.connect(migrated) as conn:
        assert conn.execute(f"SELECT count(*) FROM {REVISIONS}").fetchone()[0] == len(_versions())


def test_a_new_migration_applies_alone(migrated: str, tmp_path: Path) -> None:
    files = _add_migration(_copy_migrations(tmp_path), "20261215100000_task_notes.sql",
                           'ALTER TABLE "tasks" ADD COLUMN "notes" text NULL;\n')
    assert apply_migrations(migrated, files) == ["20261215100000"]
    assert apply_migrations(migrated, files) == []


def test_a_failing_file_rolls_back_alone_and_names_its_line(migrated: str, tmp_path: Path) -> None:
    files = _add_migration(_copy_migrations(tmp_path), "20261215100000_broken.sql",
                           'CREATE TABLE "labels" ("id" bigint PRIMARY KEY);\n'
                           'INSERT INTO "labels" ("id", "name") VALUES (1, \'x\');\n')
    with pytest.raises(MigrationsError, match=r'20261215100000_broken\.sql line 2: column "name" of relation '
                                              r'"labels" does not exist; this file was rolled back'):
        apply_migrations(migrated, files)
    with psycopg.connect(migrated) as conn:
        assert conn.execute("SELECT to_regclass('public.labels')").fetchone()[0] is None
        assert conn.execute(f"SELECT count(*) FROM {REVISIONS}").fetchone()[0] == len(_versions())


def test_a_failing_ddl_statement_is_named_by_its_error(migrated: str, tmp_path: Path) -> None:
    # DDL errors carry no position, so there is no line to give; the file and the message remain.
    files = _add_migration(_copy_migrations(tmp_path), "20261215100000_broken.sql",
                           'CREATE TABLE "labels" ("id" bigint PRIMARY KEY);\n'
                           'CREATE INDEX "labels_name_idx" ON "labels" ("name");\n')
    with pytest.raises(MigrationsError, match=r'20261215100000_broken\.sql: column "name" does not exist'):
        apply_migrations(migrated, files)
    with psycopg.connect(migrated) as conn:
        assert conn.execute("SELECT to_regclass('public.labels')").fetchone()[0] is None


def test_a_migration_added_out_of_order_is_refused(migrated: str, tmp_path: Path) -> None:
    files = _add_migration(_copy_migrations(tmp_path), "20261205000000_late_merge.sql",
                           'ALTER TABLE "tasks" ADD COLUMN "late" text NULL;\n')
    with pytest.raises(MigrationsError, match=r"20261205000000_late_merge\.sql added out of order"):
        apply_migrations(migrated, files)


def test_a_stale_sum_is_refused_before_touching_the_database(database: str) -> None:
    files = read_migrations_dir(MIGRATIONS)
    name = sorted(n for n in files if n.endswith(".sql"))[0]
    files[name] = files[name].replace("display_name", "full_name")
    with pytest.raises(MigrationsError, match=f"edited after hashing: {re.escape(name)}"):
        apply_migrations(database, files)
    with psycopg.connect(database) as conn:
        assert conn.execute("SELECT to_regnamespace('atlas_schema_revisions')").fetchone()[0] is None


def test_a_dirty_database_needs_allow_dirty(database: str) -> None:
    with psycopg.connect(database) as conn:
        conn.execute("CREATE TABLE legacy (id int)")
    with pytest.raises(MigrationsError, match=r"not clean \(found public\.legacy\)"):
        apply_migrations(database, read_migrations_dir(MIGRATIONS))
    assert apply_migrations(database, read_migrations_dir(MIGRATIONS), allow_dirty=True) == _versions()


def test_a_concurrent_run_waits_for_the_lock_then_gives_up(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtext('atlas_migration_execute'))")
        with pytest.raises(MigrationsError, match="another migration run holds the lock"):
            apply_migrations(database, read_migrations_dir(MIGRATIONS), lock_timeout_s=0.2)
    assert apply_migrations(database, read_migrations_dir(MIGRATIONS)) == _versions()


def test_a_wrong_password_is_one_clear_error(database: str) -> None:
    wrong = database.replace(f"password={pgserver.SUPERUSER_PASSWORD}", "password=wrong")
    with pytest.raises(MigrationsError, match="cannot connect.*password authentication failed") as err:
        apply_migrations(wrong, read_migrations_dir(MIGRATIONS))
    assert "wrong" not in str(err.value)


# --- sqlc-style checks: every example query prepares against the migrated schema ----------------

def _queries() -> list[tuple[str, str, str, str]]:
    """(file, name, kind, sql) for every annotated query, the way sqlc splits query files."""
    found = []
    for path in sorted(QUERIES.glob("*.sql")):
        text = path.read_text()
        marks = list(_ANNOTATION.finditer(text))
        assert marks, f"{path.name} has no '-- name: X :kind' annotation"
        for mark, following in zip(marks, marks[1:] + [None]):
            body = text[mark.end():following.start() if following else len(text)].strip().rstrip(";")
            found.append((path.name, mark.group(1), mark.group(2), body))
    return found


def test_queries_are_annotated_uniquely() -> None:
    queries = _queries()
    names = [q[1] for q in queries]
    assert len(queries) >= 8
    assert len(names) == len(set(names))
    assert {q[2] for q in queries} <= _SQLC_KINDS


def test_every_query_prepares_against_the_schema(migrated: str) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        for file, name, kind, sql in _queries():
            try:
                conn.execute(f"PREPARE {name.lower()} AS {sql}")
            except psycopg.Error as err:
                pytest.fail(f"{file}: {name} does not prepare: {err.diag.message_primary}")
            params, results = conn.execute(
                "SELECT parameter_types::text[], result_types::text[] FROM pg_prepared_statements WHERE name = %s",
                (name.lower(),)).fetchone()
            placeholders = {int(n) for n in re.findall(r"\$(\d+)", sql)}
            assert len(params) == max(placeholders, default=0), f"{name}: parameters {params}"
            assert "unknown" not in params, f"{name}: a parameter's type cannot be inferred"
            # :one and :many return rows; the :exec kinds return none.
            assert bool(results) == (kind in {"one", "many"}), f"{name} :{kind} returns {results}"
        assert dict(conn.execute("SELECT name, parameter_types::text[] FROM pg_prepared_statements"))[
            "createtask"] == ["bigint", "text", "smallint", "bigint", "timestamp with time zone"]


def test_a_query_against_a_missing_column_does_not_prepare(migrated: str) -> None:
    # The control for the check above: PREPARE really resolves names against the schema.
    with psycopg.connect(migrated, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UndefinedColumn):
            conn.execute("PREPARE broken AS SELECT id, archived_at FROM tasks WHERE id = $1")


# --- the directory as files and as a hash -----------------------------------------------------

def test_read_migrations_dir_returns_what_atlas_uses(tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    (directory / "README.md").write_text("not a migration\n")
    files = read_migrations_dir(directory)
    assert list(files) == sorted(p.name for p in MIGRATIONS.glob("*.sql")) + ["atlas.sum"]
    assert files["atlas.sum"] == (MIGRATIONS / "atlas.sum").read_text()


def test_directory_hash_changes_exactly_when_a_byte_changes(tmp_path: Path) -> None:
    files = read_migrations_dir(MIGRATIONS)
    digest = directory_hash(files)
    assert re.fullmatch(r"[0-9a-f]{10}", digest)
    assert directory_hash(read_migrations_dir(MIGRATIONS)) == digest
    assert directory_hash(dict(reversed(list(files.items())))) == digest  # order of the mapping is irrelevant

    # Edit one byte on disk, rehash as a developer would: the directory hash moves.
    directory = _copy_migrations(tmp_path)
    target = directory / sorted(n for n in files if n.endswith(".sql"))[-1]
    raw = bytearray(target.read_bytes())
    raw[-2] ^= 0x01
    target.write_bytes(bytes(raw))
    atlas_sum.write(directory)
    assert directory_hash(read_migrations_dir(directory)) != digest

    # One byte in one file, with nothing else touched, also moves it.
    name = sorted(files)[0]
    assert directory_hash({**files, name: files[name] + " "}) != digest
    # Moving a byte from a file's content into its name is a different directory too.
    assert directory_hash({"ab": "c"}) != directory_hash({"a": "bc"})
    # Files Atlas ignores do not count.
    edited = directory_hash(read_migrations_dir(directory))
    (directory / "NOTES.txt").write_text("x")
    (directory / "seed").mkdir()
    (directory / "seed" / "1_data.sql").write_text("select 1;\n")
    assert directory_hash(read_migrations_dir(directory)) == edited


def test_read_migrations_dir_rejects_a_stale_sum(tmp_path: Path) -> None:
    directory = _copy_migrations(tmp_path)
    (directory / "20261215100000_unhashed.sql").write_text("select 1;\n")
    with pytest.raises(MigrationsError, match=r"added without rehashing: 20261215100000_unhashed\.sql"):
        read_migrations_dir(directory)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("20261215100000 bad name.sql", b"select 1;\n", "cannot be a ConfigMap key"),
    ("20261215100000_latin1.sql", "select 'caf\u00e9';\n".encode("latin-1"), "is not UTF-8 text"),
])
def test_read_migrations_dir_rejects_files_a_configmap_cannot_carry(tmp_path: Path, name: str, content: bytes,
                                                                  message: str) -> None:
    directory = _copy_migrations(tmp_path)
    (directory / name).write_bytes(content)
    atlas_sum.write(directory)
    with pytest.raises(MigrationsError, match=message):
        read_migrations_dir(directory)


def test_read_migrations_dir_rejects_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(MigrationsError, match="has no .sql files"):
        read_migrations_dir(tmp_path)
