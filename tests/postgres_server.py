"""A real PostgreSQL server for tests and benchmarks: a throwaway cluster on a free loopback port.

with PostgresServer() as server:   # skips the test if PostgreSQL is missing (fails when $CI is set)
    dsn = server.dsn("agentgw_t1")  # a database of its own (created on first use), password included
    server.pause(); server.resume() # SIGSTOP / SIGCONT on every server process: a hung database
    server.restart()                # a fast shutdown and a start on the same port; the data stays

As root (CI, this machine) the server runs as the `postgres` user, which initdb requires.
Durability is off (fsync, synchronous_commit): tests need speed, not crash safety of the files.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

STARTUP_TIMEOUT = 30.0
USER = "agentgw"
PASSWORD = "pg-test-SECRET-pass-7731"
SEARCH = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def postgres_bin_dir() -> Path | None:
    """The directory holding initdb and postgres, or None."""
    for directory in SEARCH:
        if os.access(Path(directory) / "postgres", os.X_OK):
            return Path(directory)
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def require_postgres() -> Path:
    """PostgreSQL's bin directory; otherwise skip the test, or fail it under CI (where it must be installed)."""
    import pytest

    directory = postgres_bin_dir()
    if directory is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed (CI must install it: apt-get install postgresql)")
        pytest.skip("PostgreSQL is not installed")
    return directory


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


class PostgresServer:
    """One postgres cluster on 127.0.0.1; `start()` after `stop()` reuses the port and the data."""

    def __init__(self, bin_dir: Path | None = None, port: int | None = None) -> None:
        self.bin_dir = bin_dir or require_postgres()
        self.port = port or free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="agentgw-pg-"))
        self._data = self._dir / "data"
        self._process: subprocess.Popen[bytes] | None = None
        self._databases: set[str] = {"postgres"}
        self._user = "postgres" if os.geteuid() == 0 else None
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self._dir, entry.pw_uid, entry.pw_gid)
        self._initdb()

    def _run_as(self) -> dict[str, object]:
        return {"user": self._user, "group": self._user} if self._user else {}

    def _initdb(self) -> None:
        pwfile = self._dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        if self._user:
            entry = pwd.getpwnam(self._user)
            os.chown(pwfile, entry.pw_uid, entry.pw_gid)
        command = [
            str(self.bin_dir / "initdb"), "-D", str(self._data), "-U", USER, f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, check=False, **self._run_as())  # type: ignore[call-overload]
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr.decode(errors='replace')[-2000:]}")

    def dsn(self, database: str = "postgres") -> str:
        """A URL for `database` (created on first use), with the password in it."""
        if database not in self._databases:
            self.execute(f'CREATE DATABASE "{database}"')
            self._databases.add(database)
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def execute(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with psql (over the server's own socket directory); its output."""
        result = subprocess.run(
            [str(self.bin_dir / "psql") if (self.bin_dir / "psql").exists() else "psql", "-X", "-q", "-A", "-t",
             "-h", str(self._dir), "-p", str(self.port), "-U", USER, "-d", database, "-v", "ON_ERROR_STOP=1",
             "-c", sql],
            capture_output=True, check=False, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> PostgresServer:
        if self.running:
            return self
        command = [
            str(self.bin_dir / "postgres"), "-D", str(self._data), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self._dir}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200", "-c", "shared_buffers=256MB", "-c", "log_min_messages=warning",
        ]  # fmt: skip
        log = (self._dir / "postgres.log").open("ab")
        self._process = subprocess.Popen(  # type: ignore[call-overload]
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._run_as()
        )
        log.close()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if _accepts(self.port) and self._ready():
                return self
            if self._process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self._process.returncode}: {self.log()[-2000:]}")
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"postgres did not start on port {self.port} within {STARTUP_TIMEOUT}s")

    def _ready(self) -> bool:
        result = subprocess.run(
            [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)], check=False
        )
        return result.returncode == 0

    def log(self) -> str:
        return (self._dir / "postgres.log").read_text(errors="replace")

    def pause(self) -> None:
        """Stall every server process (SIGSTOP): connections stay open, queries wait unanswered. The
        postmaster first (it forks no new backend then), then its children, each of which PostgreSQL
        puts in a session of its own (so a signal to the postmaster's group would miss them)."""
        assert self._process is not None
        for pid in self._tree():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._process is not None
        for pid in reversed(self._tree()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def _tree(self) -> list[int]:
        """The postmaster's pid and its children's."""
        assert self._process is not None
        root = self._process.pid
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == root:
                    children.append(int(stat.parent.name))
        return [root, *children]

    def stop(self) -> None:
        """A fast shutdown (SIGINT): sessions are ended, the data stays."""
        self._end(signal.SIGINT)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def restart(self) -> PostgresServer:
        self.stop()
        return self.start()

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        self._process = process
        self.resume()  # a paused server must run to handle its end
        self._process = None
        with contextlib.suppress(ProcessLookupError):
            if sig == signal.SIGKILL:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        if sig == signal.SIGKILL:  # the backends are gone with the group; nothing else to wait for
            return

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
