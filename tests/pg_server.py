"""A throwaway PostgreSQL server for tests marked ``postgres``.

`PgServer.start()` runs Debian's initdb and pg_ctl (from /usr/lib/postgresql/*/bin or
PATH) on a temporary data directory, listening on 127.0.0.1 on a free port with its unix
socket in that directory, tuned for speed (no fsync: the data is thrown away). initdb
refuses to run as root, so as root the server runs as the ``postgres`` system user
(created if missing). Each test gets a fresh database: CREATE DATABASE from a template
is a file copy, far faster than a new cluster.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
SUPERUSER = "postgres"
START_TIMEOUT = 60.0
FAST = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        "-c max_connections=100 -c shared_buffers=32MB")


def find_bin(name: str) -> str | None:
    """`name` from the newest /usr/lib/postgresql/*/bin, else from PATH."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit()
                        else 0)
    return candidates[-1] if candidates else shutil.which(name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class PgServer:
    root: Path  # temp dir: data/, the socket, the log
    port: int
    run_as: str | None  # the system user running the server when we are root
    version: int  # major version

    @classmethod
    def start(cls) -> PgServer:
        initdb, pg_ctl = find_bin("initdb"), find_bin("pg_ctl")
        if initdb is None or pg_ctl is None:
            raise FileNotFoundError("initdb/pg_ctl not found (install Debian's postgresql)")
        run_as = _server_user() if os.geteuid() == 0 else None
        root = Path(tempfile.mkdtemp(prefix="cairn-pg-"))
        if run_as is not None:
            entry = pwd.getpwnam(run_as)
            os.chown(root, entry.pw_uid, entry.pw_gid)
        server = cls(root, free_port(), run_as, _major_version(pg_ctl))
        server._run(initdb, "-D", str(root / "data"), "-U", SUPERUSER, "-A", "trust",
                    "-E", "UTF8", "--no-sync", "--locale=C")
        options = f"-p {server.port} -k {root} -c listen_addresses={HOST} {FAST}"
        server._run(pg_ctl, "-D", str(root / "data"), "-l", str(root / "server.log"),
                    "-o", options, "-w", "-t", str(int(START_TIMEOUT)), "start")
        return server

    def stop(self) -> None:
        pg_ctl = find_bin("pg_ctl")
        if pg_ctl is not None:
            subprocess.run(self._command(pg_ctl, "-D", str(self.root / "data"), "-m", "immediate",
                                         "-w", "stop"), capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def create_database(self, template: str | None = None) -> str:
        """A new, empty database (or a copy of database `template`); its name."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        # FILE_COPY: with fsync off, copying the files beats WAL-logging every block
        suffix = f" TEMPLATE {template}" if template else ""
        if self.version >= 15:
            suffix += " STRATEGY FILE_COPY"
        self.execute(f"CREATE DATABASE {name}{suffix}")
        return name

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(sql.encode())

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _command(self, *args: str) -> list[str]:
        if self.run_as is None:
            return list(args)
        return ["runuser", "-u", self.run_as, "--", *args]

    def _run(self, *args: str) -> None:
        result = subprocess.run(self._command(*args), capture_output=True, text=True,
                                cwd=self.root, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({result.returncode}):\n"
                               f"{result.stdout}{result.stderr}{self.log()}")


def _major_version(pg_ctl: str) -> int:
    out = subprocess.run([pg_ctl, "--version"], capture_output=True, text=True).stdout
    digits = out.split()[-1].split(".")[0] if out.split() else ""
    return int(digits) if digits.isdigit() else 0


def _server_user() -> str:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false",
                        "postgres"], check=True, capture_output=True)
    return "postgres"

