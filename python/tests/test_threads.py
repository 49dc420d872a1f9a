"""The GIL is released while the core works: reads of two arrays from two Python threads
overlap (wall time below the serial sum, measured in the same run), a Python thread runs while
another is inside a long sync action, and concurrent reads of one array are safe.

The devices are LatencyDevice wrappers whose requests sleep in Rust (2 ms each), so the time
is spent where only a released GIL lets another thread in. One Array serialises its own calls
(a mutex, taken without the GIL): parallelism comes from several arrays, as in a harness that
drives several arrays at once."""

from __future__ import annotations

import threading
import time

import mdraid

LATENCY_US = 2000
READS = 60


def slow_array(tag: str) -> mdraid.Array:
    devs = [mdraid.LatencyDevice(mdraid.MemDevice(8 << 20), LATENCY_US, name=f"{tag}{i}") for i in range(2)]
    array = mdraid.Array.create(devs, assume_clean=True, bitmap=False)
    array.write(0, bytes(range(256)) * 16 * READS)
    array.flush()
    return array


def read_loop(array: mdraid.Array, out: list) -> None:
    want = bytes(range(256)) * 16
    for i in range(READS):
        # Different places each time: each read costs one member request (one sleep).
        out.append(array.read(i * 4096, 4096) == want)


def test_reads_from_two_threads_overlap():
    arrays = [slow_array("x"), slow_array("y")]
    ok: list = []
    t0 = time.perf_counter()
    for a in arrays:
        read_loop(a, ok)
    serial = time.perf_counter() - t0

    threads = [threading.Thread(target=read_loop, args=(a, ok)) for a in arrays]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    concurrent = time.perf_counter() - t0
    assert all(ok) and len(ok) == 4 * READS
    # Two threads each sleeping in Rust: close to half the serial time if the GIL is free.
    assert concurrent < 0.8 * serial, f"concurrent {concurrent:.3f}s vs serial {serial:.3f}s"
    for a in arrays:
        a.stop()


def test_python_runs_during_a_sync_action():
    a, b = mdraid.MemDevice(16 << 20), mdraid.MemDevice(16 << 20)
    array = mdraid.Array.create([a, b], assume_clean=True)
    array.set_speed_limits(1000, 16000)  # about one second of real time
    ticks = 0
    done = threading.Event()

    def spin():
        nonlocal ticks
        while not done.is_set():
            ticks += 1

    t = threading.Thread(target=spin)
    t.start()
    before = ticks
    r = array.check()  # blocks this thread, in Rust, for about a second
    during = ticks - before
    done.set()
    t.join()
    assert r.mismatch_sectors == 0
    assert during > 10_000, f"the other thread ran only {during} loops"
    array.stop()


def test_concurrent_reads_and_writes_of_one_array_are_safe():
    a, b = mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)
    array = mdraid.Array.create([a, b], assume_clean=True)
    errors: list = []

    def worker(k: int) -> None:
        try:
            block = bytes([k]) * 65536
            for i in range(20):
                off = (k * 20 + i) * 65536
                array.write(off, block)
                if array.read(off, 65536) != block:
                    errors.append((k, i))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert array.check().mismatch_sectors == 0
    for k in range(4):
        assert array.read(k * 20 * 65536, 65536) == bytes([k]) * 65536
    array.stop()
