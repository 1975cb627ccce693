"""The spool keeps batches on disk in order, survives a restart and a torn last write, and gives each
process a slot of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.metering.spool import Spool, SpoolBusy, claim


def rows(start: int, count: int) -> list[tuple[object, ...]]:
    return [(float(i), f"req_{i}", None, 7) for i in range(start, start + count)]


def drain(spool: Spool, close: bool = False) -> list[tuple[object, ...]]:
    out = []
    while (batch := spool.peek()) is not None:
        events, _, size = batch
        out += events
        spool.pop(len(events), size)
    if close:
        spool.close()
    return out


def test_batches_come_back_in_order_across_a_restart(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 10**9)
    assert spool.append(rows(0, 25), [("req_0", 0.0, "[]", None)], batch_size=10) == 0
    assert spool.append(rows(25, 5), [], batch_size=10) == 0
    assert spool.events == 30
    events, contents, size = spool.peek() or ([], [], 0)
    assert events == rows(0, 10) and contents == [("req_0", 0.0, "[]", None)]
    spool.pop(len(events), size)
    spool.close()

    again = Spool(tmp_path / "s", 10**9)
    assert again.events == 20
    assert drain(again) == rows(10, 20)
    assert again.events == 0 and again.peek() is None
    again.append(rows(30, 2), [], batch_size=10)
    again.close()
    assert drain(Spool(tmp_path / "s", 10**9), close=True) == rows(30, 2)


def test_a_batch_cut_short_by_a_crash_is_discarded(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 10**9)
    spool.append(rows(0, 3), [], batch_size=10)
    spool.close()
    segment = next((tmp_path / "s").glob("*.jsonl"))
    segment.write_bytes(segment.read_bytes() + b'{"e": [[1.0, "req_torn"')
    assert drain(Spool(tmp_path / "s", 10**9), close=True) == rows(0, 3)


def test_a_full_spool_drops_and_counts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s", 600)
    dropped = spool.append(rows(0, 100), [], batch_size=10)
    assert 0 < dropped < 100 and spool.events == 100 - dropped
    spool.close()


def test_each_process_its_own_slot_and_orphans_adopted(tmp_path: Path) -> None:
    first, orphans = claim(tmp_path, 10**9)
    second, _ = claim(tmp_path, 10**9)
    assert first.directory != second.directory and not orphans
    with pytest.raises(SpoolBusy):
        Spool(first.directory, 10**9)  # held by another process (here: another open file)
    second.append(rows(0, 4), [], batch_size=10)
    second.close()  # its process ended with events left
    third, orphans = claim(tmp_path, 10**9)
    assert third.directory == second.directory  # the first free slot
    assert not orphans
    assert drain(third) == rows(0, 4)
    first.append(rows(4, 2), [], batch_size=10)
    first.close()
    third.close()
    mine, orphans = claim(tmp_path, 10**9)
    assert mine.directory.name == "slot-0" and orphans == []
    assert drain(mine, close=True) == rows(4, 2)


def test_a_slot_left_with_data_is_adopted_by_the_next_process(tmp_path: Path) -> None:
    a, _ = claim(tmp_path, 10**9)
    b, _ = claim(tmp_path, 10**9)
    c, _ = claim(tmp_path, 10**9)
    c.append(rows(0, 3), [], batch_size=10)
    c.close()  # three workers, then two after a restart: slot-2 keeps its events
    b.close()
    d, orphans = claim(tmp_path, 10**9)
    assert d.directory.name == "slot-1"
    assert [o.directory.name for o in orphans] == ["slot-2"]
    assert drain(orphans[0], close=True) == rows(0, 3)
    d.close()
    a.close()
