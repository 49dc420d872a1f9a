"""Arrays over image files and memory: create -> write -> fail -> add -> rebuild -> check,
re-add, non-blocking sync, detail, context manager, registry."""

from __future__ import annotations

import os
import time

import pytest

import mdraid


def blob(seed: int, n: int) -> bytes:
    return (seed.to_bytes(4, "little") * (n // 4 + 1))[:n]


def test_create_write_fail_add_rebuild_check_over_images(images):
    a, b, c = images(3)
    array = mdraid.Array.create([a, b], name="harness")
    assert array.detail().needs_resync  # a new array owes md a resync
    r = array.resync()
    assert r.action == "resync" and r.sectors_done > 0
    assert not array.detail().needs_resync
    size = array.size
    data = {0: blob(1, 1 << 20), size - 8192: blob(2, 8192), (2 << 20) + 12345: blob(3, 777)}
    for off, d in data.items():
        assert array.write(off, d) == len(d)
    array.flush()

    array.fail(str(b))
    assert array.degraded
    assert {m.name: m.state for m in array.members}[str(b)] == "faulty"
    # Degraded writes and reads go on with the survivor.
    data[4 << 20] = blob(4, 65536)
    array.write(4 << 20, bytearray(data[4 << 20]))
    for off, d in data.items():
        assert array.read(off, len(d)) == d

    array.remove(str(b))
    added = array.add(str(c))
    assert added.outcome == "rebuilt"
    assert added.sync.sectors_copied >= size // 512
    assert not array.degraded
    assert [m.state for m in array.members] == ["in_sync", "in_sync"]

    chk = array.check()
    assert (chk.action, chk.mismatch_sectors, chk.sectors_copied) == ("check", 0, 0)
    events = array.events
    array.stop()
    assert array.closed

    # The rebuilt image is a full member: assemble from it alone and read everything back.
    sb = mdraid.examine(c)
    assert sb.role == "active" and sb.dev_role == 1 and sb.state == "clean"
    assert sb.events == events
    with mdraid.Array.assemble([c], run=True) as only_c:
        for off, d in data.items():
            assert only_c.read(off, len(d)) == d
    with mdraid.Array.assemble([a, c]) as both:
        assert not both.degraded
        assert both.check().mismatch_sectors == 0
        # b was left behind: it still names the old array, but is stale.
        assert mdraid.examine(b).events < both.events


def test_re_add_copies_only_what_changed(images):
    a, b = images(2, 64 << 20)
    with mdraid.Array.create([a, b], assume_clean=True, bitmap_chunk=1 << 20) as array:
        array.write(0, blob(5, 8 << 20))
    # A clean stop of a complete array clears the bitmap: from here on it tracks changes.
    assert mdraid.examine(a).bitmap.dirty == 0
    with mdraid.Array.assemble([a, b]) as array:
        array.fail(1)
        array.write(1 << 20, blob(6, 4096))  # one bitmap chunk changes meanwhile
        array.remove(str(b))
        r = array.re_add(str(b))
        assert r.outcome == "re-added"
        assert 0 < r.sync.sectors_copied <= 2 * (1 << 20) // 512
        assert array.check().mismatch_sectors == 0
        assert array.read(1 << 20, 4096) == blob(6, 4096)


def test_repair_fixes_a_corrupted_mirror():
    a, b = mdraid.MemDevice(16 << 20), mdraid.MemDevice(16 << 20)
    with mdraid.Array.create([a, b], assume_clean=True, bitmap=False) as array:
        array.write(0, blob(7, 1 << 20))
        array.flush()
        off = mdraid.examine(b).data_offset * 512
        b.write(off + 8192, b"\xff" * 4096)  # mirror b now differs in 8 sectors
        # md counts mismatches per 64 KiB sync block (128 sectors), as mismatch_cnt does.
        assert array.check().mismatch_sectors == 128
        assert array.repair().mismatch_sectors == 128
        assert array.check().mismatch_sectors == 0
        assert b.read(off + 8192, 4096) == blob(7, 1 << 20)[8192 : 8192 + 4096]


def test_progress_callback_and_non_blocking_sync():
    a, b = mdraid.MemDevice(16 << 20), mdraid.MemDevice(16 << 20)
    array = mdraid.Array.create([a, b], assume_clean=True)
    seen: list[tuple[int, int]] = []
    r = array.check(progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == r.sectors_done
    assert all(x[0] <= y[0] for x, y in zip(seen, seen[1:]))

    # Paced by md's speed limit: 15 MiB at 4 MiB/s takes a few seconds of real time.
    array.set_speed_limits(1000, 4000)
    job = array.start_sync("check")
    assert job.action == "check"
    with pytest.raises(TimeoutError):
        job.wait(timeout=0.2)
    # The first report comes halfway (about 2 s in), the end about 2 s later.
    deadline = time.monotonic() + 30
    while job.progress()[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    done, total = job.progress()
    assert not job.done and 0 < done < total
    r = job.wait()
    assert job.done and r.mismatch_sectors == 0 and r.sectors_done == total
    assert job.wait().sectors_done == total  # the result stays
    array.stop()


def started(job: mdraid.SyncJob) -> int:
    """Waits for a paced job's first progress report; returns its total."""
    deadline = time.monotonic() + 30
    while job.progress()[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    done, total = job.progress()
    assert not job.done and 0 < done < total
    return total


def test_sync_stop_idle_and_frozen_as_mds_sync_action():
    a, b = mdraid.MemDevice(16 << 20), mdraid.MemDevice(16 << 20)
    array = mdraid.Array.create([a, b], assume_clean=True)
    array.set_speed_limits(1000, 4000)  # paced: a check takes about 4 s
    # idle on a running check: it ends at its checkpoint and nothing restarts it.
    job = array.start_sync("check")
    total = started(job)
    job.stop()
    r = job.wait(timeout=30)
    assert r.action == "check" and r.interrupted and 0 < r.sectors_done < total, r
    assert not array.sync_frozen
    # frozen on a running check: it ends, and no action starts on its own afterwards.
    job = array.start_sync("check")
    started(job)
    job.stop(freeze=True)
    assert job.wait(timeout=30).interrupted
    assert array.sync_frozen
    array.set_speed_limits(1000, 10**7)
    spare = mdraid.MemDevice(16 << 20)
    assert array.add(spare).outcome == "spare"
    array.fail(0)
    assert array.degraded
    assert [m.state for m in array.members] == ["faulty", "in_sync", "spare"]
    # idle ends the freeze and md's recovery check rebuilds the spare into the empty slot.
    r = array.sync_stop()
    assert r is not None and r.action == "recover" and not r.interrupted, r
    assert not array.degraded and not array.sync_frozen
    assert array.check().mismatch_sectors == 0
    # Between calls nothing runs: frozen and idle just set the state.
    assert array.sync_stop(freeze=True) is None and array.sync_frozen
    assert array.sync_stop() is None and not array.sync_frozen
    job = array.start_sync("check")
    r = job.wait(timeout=30)
    job.stop()  # no effect once ended
    assert not r.interrupted and job.wait().sectors_done == r.sectors_done
    array.stop()


def test_progress_callback_error_is_raised_after_the_action():
    a, b = mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)
    with mdraid.Array.create([a, b], assume_clean=True) as array:
        def boom(done, total):
            raise KeyError("from the callback")

        with pytest.raises(KeyError):
            array.check(progress=boom)
        assert array.check().mismatch_sectors == 0  # the array is fine


def test_spares_detail_and_text():
    devs = [mdraid.MemDevice(16 << 20, name=f"d{i}") for i in range(3)]
    array = mdraid.Array.create(devs, raid_disks=2, assume_clean=True, metadata="1.0")
    d = array.detail()
    assert (d.version, d.raid_disks, d.active_devices, d.spare_devices) == ("1.0", 2, 2, 1)
    assert d.name == "mdraid" and d.uuid == array.uuid == mdraid.examine(devs[0]).array_uuid
    assert [m.state for m in d.members] == ["in_sync", "in_sync", "spare"]
    array.write(0, blob(8, 65536))
    array.fail("d0")  # the spare is rebuilt into the empty slot at the next sync action
    array.check()
    d = array.detail()
    assert [m.state for m in d.members] == ["faulty", "in_sync", "in_sync"]
    assert d.members[2].slot == 0 and d.members[2].writes > 0
    text = array.detail_text("/dev/md9")
    assert text.startswith("/dev/md9:") and "Raid Level : raid1" in text
    assert "faulty" in text
    array.stop()


def test_metadata_versions_round_trip(images):
    for meta in ("1.2", "1.1", "1.0", "0.90"):
        a, b = images(2, 16 << 20, prefix=meta)
        with mdraid.Array.create([a, None], metadata=meta, bitmap=False) as array:
            assert array.degraded
            array.write(512, b"x" * 512)
        sb = mdraid.examine(a)
        assert sb.version == meta and sb.raid_disks == 2
        with mdraid.Array.assemble([a], run=True) as array:
            assert array.read(512, 512) == b"x" * 512
            assert array.add(str(b)).outcome == "rebuilt"
            assert not array.degraded


def test_registry_units_names_and_arrays():
    reg = mdraid.Registry()
    h = reg.probe(0)
    assert reg.info(0).name == "md0" and reg.info(0).state == "clear"
    a, b = mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)
    array = mdraid.Array.create([a, b], assume_clean=True)
    reg.attach(h, array)
    e = reg.info(0)
    assert (e.state, e.members, e.holders) == ("active", 2, 1)
    assert reg.array(h) is array
    named = reg.alloc_named("md_home")
    assert named.unit == 512 and reg.lookup("md_home").unit == 512
    with pytest.raises(mdraid.RegistryError) as ei:
        reg.alloc_named("md_home")
    assert ei.value.errno == 17  # EEXIST
    with pytest.raises(mdraid.RegistryError) as ei:
        reg.remove(0)
    assert ei.value.errno == 16  # EBUSY: running
    reg.stop(h)
    assert array.closed and reg.info(0).deleted
    assert reg.put(h) is array  # the last holder gone: removed, payload handed back
    assert reg.info(0) is None
    with pytest.raises(mdraid.InvalidArgument):
        reg.put(h)
    assert [e.name for e in reg.entries()] == ["md_home"]


def test_file_device_objects_as_members_and_examine_while_running(images):
    pa, pb = images(2, 16 << 20)
    fa, fb = mdraid.FileDevice(pa), mdraid.FileDevice(pb, name="second")
    array = mdraid.Array.create([fa, fb], homehost="lab", name="data", assume_clean=True)
    array.write(0, blob(9, 4096), fua=True)
    # examine looks without a lock, as mdadm -E does, while the array holds the members.
    sb = mdraid.examine(pa)
    assert sb.name == "lab:data" and sb.role == "active" and sb.dev_role == 0
    assert sb.state == "active"  # written since the last clean point
    text = sb.examine_text(homehost="lab")
    assert text.startswith(f"{pa}:\n") and "(local to host lab)" in text
    # The device objects read what the array wrote, at md's data offset.
    assert fb.read(sb.data_offset * 512, 4096) == blob(9, 4096)
    assert [m.name for m in array.members] == [str(pa), "second"]
    array.fail(fb)  # by device object
    assert {m.name: m.state for m in array.members}["second"] == "faulty"
    array.stop()
    assert mdraid.examine(fa).state == "clean"


def test_an_idle_array_goes_clean_on_tick():
    a, b = mdraid.MemDevice(8 << 20), mdraid.MemDevice(8 << 20)
    with mdraid.Array.create([a, b], assume_clean=True) as array:
        array.write(0, blob(10, 4096))
        assert array.detail().state == "active" and mdraid.examine(a).state == "active"
        time.sleep(0.4)  # md's safe-mode delay is ~200 ms
        array.tick()
        assert array.detail().state == "clean" and mdraid.examine(a).state == "clean"
