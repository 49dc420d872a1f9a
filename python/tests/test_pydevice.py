"""Members written in Python (mdraid.BlockDevice subclasses) that fail reads and writes on
command: the array retries on the other mirror, repairs, degrades, and never returns wrong
data."""

from __future__ import annotations

import errno

import pytest

import mdraid
from conftest import RamDisk

SIZE = 16 << 20


def blob(seed: int, n: int) -> bytes:
    return (seed.to_bytes(4, "little") * (n // 4 + 1))[:n]


def make(**kw):
    a, b = RamDisk(SIZE, name="a"), RamDisk(SIZE, name="b")
    array = mdraid.Array.create([a, b], assume_clean=True, **kw)
    return array, a, b


def test_python_devices_hold_the_data():
    array, a, b = make()
    array.write(0, blob(1, 1 << 20))
    array.flush()
    assert a.writes > 0 and b.writes > 0 and a.flushes > 0
    off = mdraid.examine(a).data_offset * 512
    # Both mirrors hold the data, at md's data offset.
    assert bytes(a.data[off : off + (1 << 20)]) == bytes(b.data[off : off + (1 << 20)]) == blob(1, 1 << 20)
    info = {m.name: m for m in array.members}
    assert info["a"].write_bytes >= 1 << 20 and info["a"].errors == 0
    array.stop()
    assert mdraid.examine(a).state == "clean"


@pytest.mark.parametrize("reader", [0, 1])
def test_transient_read_errors_are_retried_and_repaired(reader: int):
    # Reads go to the first mirror unless it is write-mostly: steer them to `reader`.
    array, a, b = make(write_mostly=[0] if reader == 1 else [])
    bad, good = (a, b) if reader == 0 else (b, a)
    data = blob(2, 1 << 20)
    array.write(0, data)
    bad.fail_next_reads = 1
    for i in range(16):
        off = (i * 8192) % (1 << 20)
        assert array.read(off, 8192) == data[off : off + 8192]
    assert bad.failed_reads == 1
    assert good.reads >= 1  # the retry
    # Retried on the other mirror and rewritten on this one: nobody was failed.
    assert [m.state for m in array.members] == ["in_sync", "in_sync"]
    assert {m.name: m.errors for m in array.members} == {bad.name: 1, good.name: 0}
    # The engine counts the sectors it rewrote on the failing mirror (md's cnt_corrected_read).
    assert {m.name: m.corrected > 0 for m in array.members} == {bad.name: True, good.name: False}
    assert array.check().mismatch_sectors == 0
    array.stop()


def test_sticky_read_errors_fail_the_member_and_reads_go_on():
    array, a, b = make()
    data = blob(3, 1 << 20)
    array.write(0, data)
    a.fail_reads = True
    for i in range(64):
        off = (i * 8192) % (1 << 20)
        assert array.read(off, 8192) == data[off : off + 8192]
    assert a.failed_reads >= 1
    # The range could not be rewritten and re-read on a: md fails it; b serves everything.
    assert {m.name: m.state for m in array.members} == {"a": "faulty", "b": "in_sync"}
    assert array.degraded
    assert array.read(0, len(data)) == data
    array.stop()
    with pytest.raises(mdraid.DeviceError):
        mdraid.examine(a)  # still failing every read
    a.fail_reads = False
    assert mdraid.examine(b).events > mdraid.examine(a).events


def test_failed_writes_degrade_without_wrong_data():
    array, a, b = make(bitmap=True)
    old = blob(3, 128 << 10)
    array.write(0, old)
    array.flush()
    b.fail_writes = True
    new = blob(4, 128 << 10)
    array.write(0, new)  # succeeds: mirror a took it
    assert b.failed_writes > 0
    b.fail_writes = False
    # b holds stale data at those sectors now; no read may return it.
    for _ in range(32):
        assert array.read(0, len(new)) == new
    state = {m.name: m.state for m in array.members}
    sb_b = mdraid.examine(b)
    # md either recorded bad blocks on b (the log had room) or failed it.
    assert state["b"] == "faulty" or sb_b.bad_blocks
    # The survivor alone still serves everything.
    a.fail_reads = False
    b.fail_reads = True
    assert array.read(0, len(new)) == new
    b.fail_reads = False
    array.stop()
    # Reassembled: the stale mirror is not trusted for those sectors either.
    with mdraid.Array.assemble([a, b], run=True) as again:
        for _ in range(16):
            assert again.read(0, len(new)) == new


def test_every_mirror_failing_reads_is_an_eio_device_error():
    array, a, b = make()
    array.write(0, blob(5, 4096))
    a.fail_reads = b.fail_reads = True
    with pytest.raises(mdraid.DeviceError) as ei:
        array.read(0, 4096)
    assert ei.value.errno == errno.EIO
    assert isinstance(ei.value, OSError) and isinstance(ei.value, mdraid.MdraidError)
    a.fail_reads = b.fail_reads = False
    # The last mirror is never failed for a read error: once readable again, it serves.
    assert array.read(0, 4096) == blob(5, 4096)
    assert [m.state for m in array.members].count("in_sync") >= 1
    array.abandon()


def test_short_reads_count_as_io_errors():
    array, a, b = make()
    array.write(0, blob(6, 4096))
    a.short_reads = True
    for _ in range(4):
        assert array.read(0, 4096) == blob(6, 4096)  # served by b
    b.short_reads = True
    with pytest.raises(mdraid.DeviceError) as ei:
        array.read(0, 4096)
    assert ei.value.errno == errno.EIO
    array.abandon()


def test_faulty_device_wrapper_around_python_and_native_devices():
    inner = RamDisk(SIZE, name="py")
    fa = mdraid.FaultyDevice(inner, name="fa")
    fb = mdraid.FaultyDevice(mdraid.MemDevice(SIZE), name="fb")
    with mdraid.Array.create([fa, fb], assume_clean=True) as array:
        data = blob(7, 64 << 10)
        array.write(0, data)
        rule = fa.fail("read")
        for _ in range(8):
            assert array.read(0, len(data)) == data
        assert fa.remove(rule)
        dead = fb.kill()
        array.write(65536, data)  # fb dies on this write: recorded, a carries on
        assert fb.hits(dead) >= 1
        assert {m.name: m.state for m in array.members}["fb"] == "faulty"
        assert array.read(65536, len(data)) == data
        fb.clear()
        st = fb.stats()
        assert st["write_faults"] >= 1 and st["writes"] >= st["write_faults"]
        array.remove("fb")
        assert array.add(fb).outcome in ("re-added", "rebuilt")
        assert array.check().mismatch_sectors == 0
        assert inner.writes > 0  # the Python device under the wrapper saw the I/O
