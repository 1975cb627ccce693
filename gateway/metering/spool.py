"""The ledger's spool: events the database could not take, kept on local disk in order until it can.

A spool is a directory of append-only segment files. Each line is one batch (`{"e": [event rows],
"c": [content rows]}`), written and fsynced before `append` returns, so a batch in the spool survives
the process being killed. `peek` reads the oldest batch not yet written; `pop` records it as written by
replacing a small cursor file (written, fsynced, renamed). A crash between the database's commit and
that `pop` replays the batch on the next start: the ledger's inserts skip request ids already stored,
so it still lands exactly once. A batch cut short by a crash mid-write (a last line without its
newline) was never acknowledged to anyone and is discarded.

Each process claims a slot of its own (`slot-0`, `slot-1`, ...) under the spool root with an exclusive
lock, so the workers of one server and gateways sharing a disk never write one file. A slot left with
data by a process that is gone (fewer workers after a restart) is adopted by the next process that
finds it unlocked, and replayed before its own.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from gateway.metering.ledger_schema import COLUMNS, COLUMNS_V1

log = logging.getLogger("agentgw.ledger")

Row = tuple[Any, ...]
SEGMENT_BYTES = 16 * 1024 * 1024
MAX_SLOTS = 256


class SpoolBusy(Exception):
    """Another process holds this slot."""


class Spool:
    """One slot: a FIFO of batches on disk. Not thread-safe; the ledger's writer is its only user."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        directory.mkdir(parents=True, exist_ok=True)
        self._lock = (directory / "lock").open("a+b")
        try:
            fcntl.flock(self._lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise SpoolBusy(str(directory)) from None
        self.events = 0  # events waiting
        self._bytes = 0  # bytes waiting
        self._head, self._offset = self._read_cursor()
        self._segments = sorted(int(p.stem) for p in directory.glob("*.jsonl"))
        for number in [n for n in self._segments if n < self._head]:
            (directory / f"{number:012d}.jsonl").unlink()  # fully written before the last cursor
        self._segments = [n for n in self._segments if n >= self._head]
        if self._segments and self._segments[0] != self._head:
            self._head, self._offset = self._segments[0], 0
        self._repair_tail()
        self._count()

    # -- the cursor -------------------------------------------------------------------------------
    def _read_cursor(self) -> tuple[int, int]:
        try:
            head, offset = (self.directory / "cursor").read_text().split()
            return int(head), int(offset)
        except (OSError, ValueError):
            return 0, 0

    def _write_cursor(self) -> None:
        tmp = self.directory / "cursor.tmp"
        with tmp.open("w") as out:
            out.write(f"{self._head} {self._offset}\n")
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.directory / "cursor")

    def _path(self, number: int) -> Path:
        return self.directory / f"{number:012d}.jsonl"

    def _repair_tail(self) -> None:
        """Cut a last line a crash left without its newline (that batch was never acknowledged)."""
        if not self._segments:
            return
        path = self._path(self._segments[-1])
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            with path.open("r+b") as out:
                out.truncate(keep)
                os.fsync(out.fileno())
            log.warning("ledger spool %s: discarded a batch cut short by a crash", path)

    def _count(self) -> None:
        for number in self._segments:
            with self._path(number).open("rb") as segment:
                if number == self._head:
                    segment.seek(self._offset)
                for line in segment:
                    self.events += len(orjson.loads(line)["e"])
                    self._bytes += len(line)

    # -- writing ----------------------------------------------------------------------------------
    def append(self, events: Sequence[Row], contents: Sequence[Row], batch_size: int) -> int:
        """Keep these rows durably, in batches of `batch_size` events; the number of events dropped
        (the spool is full, or a row cannot be serialized)."""
        lines: list[bytes] = []
        dropped = 0
        kept = 0
        for start in range(0, max(len(events), 1), batch_size):
            chunk = list(events[start : start + batch_size])
            line, bad = _encode(chunk, list(contents) if start == 0 else [])
            dropped += bad
            if line is None:
                continue
            if self._bytes + len(line) > self.max_bytes:
                dropped += len(chunk) - bad
                continue
            lines.append(line)
            kept += len(chunk) - bad
            self._bytes += len(line)
        if not lines:
            return dropped
        if not self._segments or self._path(self._segments[-1]).stat().st_size > SEGMENT_BYTES:
            self._segments.append(self._segments[-1] + 1 if self._segments else max(self._head, 1))
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                self._path(self._segments[-1]).touch()
                os.fsync(fd)
            finally:
                os.close(fd)
        with self._path(self._segments[-1]).open("ab") as out:
            out.write(b"".join(lines))
            out.flush()
            os.fsync(out.fileno())
        self.events += kept
        return dropped

    # -- replaying --------------------------------------------------------------------------------
    def peek(self) -> tuple[list[Row], list[Row], int] | None:
        """The oldest batch not yet written (events, contents, its size), or None when empty."""
        while self._segments:
            path = self._path(self._segments[0])
            with path.open("rb") as segment:
                segment.seek(self._offset if self._segments[0] == self._head else 0)
                line = segment.readline()
            if line:
                batch = orjson.loads(line)
                return [_padded(r) for r in batch["e"]], [tuple(r) for r in batch["c"]], len(line)
            if len(self._segments) == 1:
                return None
            path.unlink()  # fully written; the next segment starts at its beginning
            self._segments.pop(0)
            self._head, self._offset = self._segments[0], 0
            self._write_cursor()
        return None

    def pop(self, events: int, size: int) -> None:
        """The batch `peek` returned is in the database: move past it."""
        if self._segments and self._segments[0] != self._head:
            self._head, self._offset = self._segments[0], 0
        self._offset += size
        self.events -= events
        self._bytes -= size
        if self._bytes <= 0 and len(self._segments) == 1:
            self._path(self._segments[0]).unlink()  # empty again: start the next segment fresh
            self._head, self._offset = self._segments[0] + 1, 0
            self._segments.clear()
        self._write_cursor()

    def close(self) -> None:
        fcntl.flock(self._lock.fileno(), fcntl.LOCK_UN)
        self._lock.close()


def _encode(events: list[Row], contents: list[Row]) -> tuple[bytes | None, int]:
    try:
        return orjson.dumps({"e": events, "c": contents}) + b"\n", 0
    except TypeError:  # some value orjson cannot write (an integer beyond 64 bits): drop that row alone
        good_events = [r for r in events if _encodable(r)]
        good_contents = [r for r in contents if _encodable(r)]
        bad = len(events) - len(good_events)
        if not good_events and not good_contents:
            return None, bad
        return orjson.dumps({"e": good_events, "c": good_contents}) + b"\n", bad


def _encodable(row: Row) -> bool:
    try:
        orjson.dumps(row)
    except TypeError:
        return False
    return True


def claim(root: Path, max_bytes: int) -> tuple[Spool, list[Spool]]:
    """This process's slot under `root` (the first one free), and the slots with data that no running
    process holds (to replay first)."""
    root.mkdir(parents=True, exist_ok=True)
    mine: Spool | None = None
    for number in range(MAX_SLOTS):
        try:
            mine = Spool(root / f"slot-{number}", max_bytes)
            break
        except SpoolBusy:
            continue
    if mine is None:
        raise RuntimeError(f"ledger spool {root}: all {MAX_SLOTS} slots are taken by running processes")
    orphans: list[Spool] = []
    for directory in sorted(root.glob("slot-*")):
        if directory == mine.directory or not any(directory.glob("*.jsonl")):
            continue
        try:
            orphan = Spool(directory, max_bytes)
        except SpoolBusy:
            continue
        if orphan.events:
            orphans.append(orphan)
        else:
            orphan.close()
    return mine, orphans


def _padded(row: list[Any]) -> Row:
    """An event row as the ledger writes it now: a row spooled by an older version, before later
    migrations added columns (all of them nullable), gets NULL for those."""
    if len(COLUMNS_V1) <= len(row) < len(COLUMNS):
        return (*row, *(None,) * (len(COLUMNS) - len(row)))
    return tuple(row)
