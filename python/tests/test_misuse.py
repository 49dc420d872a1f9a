"""Misuse raises the documented exceptions, never a panic: wrong types, negative and
out-of-range offsets, closed arrays, bad parameters, Python devices that raise or return
short reads."""

from __future__ import annotations

import errno

import pytest

import mdraid
from conftest import RamDisk


@pytest.fixture
def array():
    a = mdraid.Array.create([mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)], assume_clean=True)
    yield a
    a.close()


def test_the_hierarchy():
    assert issubclass(mdraid.DeviceError, OSError)
    assert issubclass(mdraid.InvalidArgument, ValueError)
    assert issubclass(mdraid.ArrayClosedError, ValueError)
    assert issubclass(mdraid.SuperblockError, mdraid.FormatError)
    for e in (mdraid.DeviceError, mdraid.InvalidArgument, mdraid.FormatError, mdraid.AssemblyError,
              mdraid.ReadOnlyError, mdraid.RegistryError, mdraid.ArrayClosedError):
        assert issubclass(e, mdraid.MdraidError)


def test_wrong_types(array):
    with pytest.raises(TypeError):
        array.read("0", 5)
    with pytest.raises(TypeError):
        array.read(0.5, 5)
    with pytest.raises(TypeError):
        array.write(0, "text is not bytes")
    with pytest.raises(TypeError):
        array.write(0, 1234)
    with pytest.raises(TypeError):
        array.write(0, [1, 2, 3])
    with pytest.raises(TypeError):
        array.readinto(0, b"read-only bytes")
    with pytest.raises(TypeError):
        mdraid.Array.create("a.img")
    with pytest.raises(TypeError):
        mdraid.Array.create([object()])
    with pytest.raises(TypeError):
        array.fail(True)
    # bytes, bytearray and memoryview are all accepted
    for data in (b"\1" * 512, bytearray(b"\2" * 512), memoryview(b"\3" * 1024)[512:]):
        assert array.write(0, data) == 512
        assert array.read(0, 512) == bytes(data)


def test_negative_and_out_of_range_offsets(array):
    size = array.size
    for call in (
        lambda: array.read(-1, 10),
        lambda: array.read(0, -10),
        lambda: array.write(-512, b"x"),
        lambda: array.readinto(-1, bytearray(10)),
        lambda: array.read(size - 1, 2),
        lambda: array.read(size, 1),
        lambda: array.write(size - 511, b"\0" * 512),
        lambda: array.read(2**70, 1),
        lambda: array.read(0, 2**64),
    ):
        with pytest.raises(mdraid.InvalidArgument):
            call()
    assert array.read(size - 1, 1) == b"\0"
    assert array.read(size, 0) == b""


def test_bad_parameters():
    a, b = mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)
    for kw in ({"level": 5}, {"metadata": "2.0"}, {"bitmap": "sometimes"},
               {"bitmap_chunk": 3000}, {"uuid": "not-a-uuid"}, {"name": "x" * 40},
               {"write_mostly": [7]}):
        with pytest.raises(mdraid.InvalidArgument):
            mdraid.Array.create([a, b], **kw)
    with pytest.raises(mdraid.InvalidArgument):
        mdraid.Array.create([])
    with pytest.raises(mdraid.InvalidArgument):
        mdraid.Array.create([None, None])
    with pytest.raises(mdraid.InvalidArgument):
        mdraid.Array.create([a, a])  # the same device twice
    with pytest.raises(mdraid.InvalidArgument):
        mdraid.Array.create([mdraid.MemDevice(1 << 20, name="x"), mdraid.MemDevice(1 << 20, name="x")])
    with pytest.raises(mdraid.InvalidArgument):
        mdraid.MemDevice(-1)
    with pytest.raises(MemoryError):
        mdraid.MemDevice(1 << 62)  # refused, not an abort
    with pytest.raises(mdraid.InvalidArgument):
        mdraid.LatencyDevice(a, -5)
    f = mdraid.FaultyDevice(a)
    with pytest.raises(mdraid.InvalidArgument):
        f.fail("sideways")
    with pytest.raises(mdraid.InvalidArgument):
        f.fail("read", 100, 50)


def test_members_and_sync_misuse(array):
    with pytest.raises(mdraid.InvalidArgument):
        array.fail("nobody")
    with pytest.raises(mdraid.InvalidArgument):
        array.fail(5)
    with pytest.raises(mdraid.InvalidArgument):
        array.remove(0)  # in sync: fail it first
    array.fail(0)
    with pytest.raises(mdraid.InvalidArgument):
        array.fail(1)  # the last in-sync mirror
    with pytest.raises(mdraid.InvalidArgument):
        array.start_sync("defrag")
    with pytest.raises(mdraid.InvalidArgument):
        array.set_speed_limits(0, 10)
    with pytest.raises(mdraid.InvalidArgument):
        array.re_add(mdraid.MemDevice(8 << 20))  # never a member: no re-add
    with pytest.raises(TypeError):
        array.sync_stop(freeze="yes")


def test_sync_job_stop_misuse():
    devs = [mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)]
    with mdraid.Array.create(devs, assume_clean=True) as array:
        job = array.start_sync("check")
        with pytest.raises(TypeError):
            job.stop(freeze=1.5)
        assert not job.wait(timeout=30).interrupted


def test_closed_arrays(array):
    array.stop()
    assert array.closed
    for call in (
        lambda: array.read(0, 1),
        lambda: array.write(0, b"x"),
        array.flush,
        array.check,
        array.detail,
        array.stop,
        array.abandon,
        lambda: array.fail(0),
        lambda: array.add(mdraid.MemDevice(8 << 20)),
        lambda: array.size,
        lambda: array.start_sync("check"),
        array.sync_stop,
        lambda: array.sync_frozen,
    ):
        with pytest.raises(mdraid.ArrayClosedError):
            call()
    array.close()  # idempotent
    with array:  # entering a closed array is allowed; leaving it does nothing more
        pass
    assert "closed" in repr(array)


def test_context_manager_stops_even_on_error():
    a, b = mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)
    with pytest.raises(KeyError):
        with mdraid.Array.create([a, b], assume_clean=True) as arr:
            arr.write(0, b"y" * 512)
            raise KeyError("boom")
    assert arr.closed
    assert mdraid.examine(a).state == "clean"


class Raising(RamDisk):
    def __init__(self, size, exc):
        super().__init__(size)
        self.exc = exc
        self.armed = False

    def read(self, offset, length):
        if self.armed:
            raise self.exc
        return super().read(offset, length)


def test_python_device_raising_or_short_reading():
    # Assembly reads the superblock: the device's OSError errno comes through.
    d = Raising(8 << 20, OSError(errno.ENODEV, "gone"))
    mdraid.Array.create([d], assume_clean=True).stop()
    d.armed = True
    with pytest.raises(mdraid.DeviceError) as ei:
        mdraid.Array.assemble([d])
    assert ei.value.errno == errno.ENODEV
    # Any other exception is EIO.
    d.exc = ZeroDivisionError()
    with pytest.raises(mdraid.DeviceError) as ei:
        mdraid.examine(d)
    assert ei.value.errno == errno.EIO
    # A short read is EIO too.
    d.armed = False
    d.short_reads = True
    with pytest.raises(mdraid.DeviceError) as ei:
        mdraid.Array.assemble([d])
    assert ei.value.errno == errno.EIO
    d.short_reads = False

    # A read returning the wrong type, on the only mirror: the array read fails with EIO.
    class WrongType(RamDisk):
        bad = False

        def read(self, offset, length):
            return "not bytes" if self.bad else super().read(offset, length)

    w = WrongType(8 << 20)
    with mdraid.Array.create([w], assume_clean=True) as arr:
        w.bad = True
        with pytest.raises(mdraid.DeviceError) as ei:
            arr.read(0, 512)
        assert ei.value.errno == errno.EIO
        w.bad = False

    # An object that is not a device at all.
    class NoFlush:
        def read(self, o, n): ...
        def write(self, o, d): ...
        def size(self): return 1 << 20

    with pytest.raises(TypeError, match="flush"):
        mdraid.Array.create([NoFlush()])

    class BadSize(RamDisk):
        def size(self):
            return -5

    with pytest.raises(mdraid.InvalidArgument):
        mdraid.Array.create([BadSize(1 << 20)])


def test_device_calling_back_into_its_array_is_refused_not_deadlocked():
    class Reentrant(RamDisk):
        array = None
        seen: list = []

        def read(self, offset, length):
            if self.array is not None:
                assert not self.array.closed  # answered, not deadlocked
                try:
                    self.array.read(0, 1)
                except mdraid.InvalidArgument as e:
                    self.seen.append(e)
            return super().read(offset, length)

    r = Reentrant(8 << 20)
    with mdraid.Array.create([r, mdraid.MemDevice(8 << 20)], assume_clean=True) as arr:
        arr.write(0, b"z" * 4096)
        r.array = arr
        assert arr.read(0, 4096) == b"z" * 4096
        r.array = None
    assert Reentrant.seen and "own devices" in str(Reentrant.seen[0])


def test_examine_errors(tmp_path):
    with pytest.raises(mdraid.SuperblockError):
        mdraid.examine(mdraid.MemDevice(1 << 20))
    with pytest.raises(mdraid.DeviceError) as ei:
        mdraid.examine(tmp_path / "nope.img")
    assert ei.value.errno == errno.ENOENT
    with pytest.raises(mdraid.SuperblockError):
        mdraid.Array.assemble([mdraid.MemDevice(1 << 20)])
    p = tmp_path / "blank.img"
    p.write_bytes(b"\0" * (1 << 20))
    with pytest.raises(mdraid.FormatError):
        mdraid.examine_bitmap(p)
    q = tmp_path / "q.img"
    q.write_bytes(b"\0" * (8 << 20))
    with pytest.raises(mdraid.InvalidArgument, match="twice"):
        mdraid.Array.create([q, str(tmp_path / "." / "q.img")])
    # The same image opened twice by arrays: the second is refused (EBUSY), as md holds
    # members exclusively.
    with mdraid.Array.create([q], assume_clean=True):
        with pytest.raises(mdraid.DeviceError) as ei:
            mdraid.Array.assemble([q])
        assert ei.value.errno == errno.EBUSY
