"""What `agentgw serve` checks before it listens, beyond what validating the config can see: the
host given on the command line, and whether this process may write where the ledger lives.

Each problem is one line saying what is wrong and what to do, printed instead of a traceback.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from gateway.config import Config
from gateway.exposure import dev_key_problems


def problems(config: Config, host_override: str | None = None, workers: int = 1) -> list[str]:
    """Every reason the gateway cannot serve `config` here; empty when it can."""
    found: list[str] = []
    if workers < 1:
        found.append(f"--workers {workers}: give 1 or more")
    if workers > 1 and config.state.url in ("memory", "memory://"):
        found.append(
            f"--workers {workers} with state: memory: each worker would keep its own counters, so every rate "
            f"limit and budget would allow {workers} times its cap. Give the workers a shared store "
            "(state: redis://host:6379/0), or serve with one worker"
        )
    if host_override is not None and not config.server.allow_dev_key_on_network:
        found += dev_key_problems(config.keys, host_override, "--host")
    if config.ledger.enabled:
        if config.ledger.kind == "sqlite":
            found += ledger_problems(Path(config.ledger.path))
        found += spool_problems(config.ledger.spool_path)
    return found


def spool_problems(directory: Path) -> list[str]:
    """The ledger's spool keeps events on disk while the database is down: its directory must be writable."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".agentgw-write-check-"):
            pass
    except OSError as exc:
        uid = os.getuid()
        return [
            f"ledger.spool_dir: cannot write {directory.absolute()} ({exc.strerror or exc}) as uid {uid}: give "
            "that user write access or point ledger.spool_dir elsewhere"
        ]
    return []


def ledger_problems(path: Path) -> list[str]:
    """The ledger needs its directory (for the file and SQLite's -wal and -shm files beside it)
    and the file itself writable by this process. A bind-mounted directory often is not: it keeps
    the host's owner, typically root, while the gateway runs as an unprivileged user."""
    path = path.absolute()
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory, prefix=".agentgw-write-check-"):
            pass
    except OSError as exc:
        return [_cannot_write(directory, exc)]
    try:
        if path.exists():
            with path.open("r+b"):
                pass
    except OSError as exc:
        return [_cannot_write(path, exc)]
    return []


def _cannot_write(where: Path, exc: OSError) -> str:
    uid, gid = os.getuid(), os.getgid()
    return (
        f"ledger.path: cannot write {where} ({exc.strerror or exc}) as uid {uid} (gid {gid}): "
        f"give that user write access (chown -R {uid}:{gid} {where}; for a bind mount, on the host "
        f"directory), run as its owner (docker run --user), or point ledger.path elsewhere"
    )
