"""A throwaway PostgreSQL cluster owned by the project, used when DATABASE_URL is unset.

The cluster lives in ``.pgtenancy/`` under the project (or working) directory, listens on a
Unix socket inside that directory and on a free loopback port, and is reused while it runs.
``initdb`` and ``pg_ctl`` refuse to run as root, so when root the cluster runs as the
unprivileged ``postgres`` user (override with ``PGTENANCY_CLUSTER_USER``).
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

DEFAULT_DBNAME = "pgtenancy"
SOCKET_PATH_LIMIT = 100  # sockaddr_un holds 107 bytes; leave room for ".s.PGSQL.NNNNN"


class ClusterError(RuntimeError):
    """The throwaway cluster could not be created, started or stopped."""


def _bindir() -> Path:
    env = os.environ.get("PG_BINDIR")
    if env:
        return Path(env)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "initdb").exists():
            return candidate
    for version in ("17", "16", "15"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    raise ClusterError("cannot find initdb: install PostgreSQL 15+ or set PG_BINDIR")


def _run_as() -> str | None:
    """The user to run the server as, or None to run as ourselves."""
    if os.geteuid() != 0:
        return None
    return os.environ.get("PGTENANCY_CLUSTER_USER", "postgres")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Cluster:
    """Where the throwaway cluster keeps its data, socket and port."""

    root: Path
    #: Extra server settings, ``name=value`` each (e.g. ``wal_level=logical`` for logical
    #: replication), passed as ``-c`` options every time the cluster starts.
    settings: tuple[str, ...] = ()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def port_file(self) -> Path:
        return self.root / "port"

    @property
    def port(self) -> int:
        return int(self.port_file.read_text().strip())

    @property
    def socket_dir(self) -> Path:
        return self.root

    def url(self, dbname: str = DEFAULT_DBNAME) -> str:
        host = quote(str(self.socket_dir), safe="")
        return f"postgresql://postgres@/{dbname}?host={host}&port={self.port}"

    # -- lifecycle -----------------------------------------------------------------
    def _cmd(self, args: list[str]) -> list[str]:
        user = _run_as()
        if user is None:
            return args
        return ["runuser", "-u", user, "--", *args]

    def is_running(self) -> bool:
        if not (self.data / "PG_VERSION").exists() or not self.port_file.exists():
            return False
        res = subprocess.run(
            self._cmd([str(_bindir() / "pg_ctl"), "-D", str(self.data), "status"]),
            capture_output=True,
            text=True,
        )
        return res.returncode == 0

    def ensure(self) -> Cluster:
        """Create the cluster if needed, start it if stopped, and create the default database."""
        if self.is_running():
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        user = _run_as()
        if user is not None:
            pw = pwd.getpwnam(user)
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
        os.chmod(self.root, 0o700)
        bindir = _bindir()
        if not (self.data / "PG_VERSION").exists():
            res = subprocess.run(
                self._cmd(
                    [
                        str(bindir / "initdb"),
                        "-D",
                        str(self.data),
                        "-U",
                        "postgres",
                        "--auth=trust",
                        "--encoding=UTF8",
                        "--locale=C",
                    ]
                ),
                capture_output=True,
                text=True,
            )
            if res.returncode != 0:
                raise ClusterError(f"initdb failed in {self.data}:\n{res.stdout}{res.stderr}")
        port = _free_port()
        tmp = self.port_file.with_suffix(".tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(self.port_file)
        options = " ".join(
            [
                f"-p {port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories='{self.socket_dir}'",
                "-c max_connections=200",
                "-c shared_buffers=256MB",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                *(f"-c {setting}" for setting in self.settings),
            ]
        )
        res = subprocess.run(
            self._cmd(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                    "start",
                ]
            ),
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise ClusterError(f"pg_ctl start failed:\n{res.stdout}{res.stderr}\n{log[-2000:]}")
        self._create_default_db()
        return self

    def _create_default_db(self) -> None:
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
                    exists = conn.execute(
                        "select 1 from pg_database where datname = %s", (DEFAULT_DBNAME,)
                    ).fetchone()
                    if not exists:
                        conn.execute(f'create database "{DEFAULT_DBNAME}"')
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> bool:
        if not self.is_running():
            return False
        subprocess.run(
            self._cmd([str(_bindir() / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"]),
            capture_output=True,
            text=True,
            check=True,
        )
        return True


def _project_root() -> Path:
    env = os.environ.get("PGTENANCY_HOME")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if (candidate / "pyproject.toml").exists() or (candidate / ".git").exists():
            return candidate
    return here


def _usable(root: Path) -> bool:
    """Whether the cluster user can reach ``root`` and the socket path fits."""
    if len(str(root / "s")) + len("/.s.PGSQL.65535") > SOCKET_PATH_LIMIT:
        return False
    user = _run_as()
    if user is None:
        return True
    probe = root.parent if not root.exists() else root
    res = subprocess.run(["runuser", "-u", user, "--", "test", "-x", str(probe)])
    return res.returncode == 0


def local_cluster() -> Cluster:
    """The project's throwaway cluster (not started)."""
    project = _project_root()
    root = project / ".pgtenancy"
    if not _usable(root):
        # The cluster user cannot reach the project (a private temporary checkout, say) or
        # the socket path would be too long: keep the cluster in a short, shared place.
        digest = hashlib.sha256(str(project).encode()).hexdigest()[:10]
        root = Path(tempfile.gettempdir()) / f"pgtenancy-{digest}"
    return Cluster(root)


def database_url(dbname: str | None = None) -> str:
    """DATABASE_URL when set, else the throwaway cluster's URL (started on demand)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return local_cluster().ensure().url(dbname or DEFAULT_DBNAME)
