"""Every fixture made by real mdadm: examined (typed values and text equal mdadm's) and read
back through an assembled array (the fixture's data pattern)."""

from __future__ import annotations

import re

import pytest

import mdraid
from conftest import (
    expected_array,
    fixture_image,
    fixture_members,
    fixture_names,
    fixture_text,
    guest_names,
)

MEMBERS = [(fx, dev) for fx in fixture_names() for dev in fixture_members(fx)]


def test_fixtures_are_there():
    assert len(fixture_names()) >= 10
    assert len(MEMBERS) >= 20


def mdadm_fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        if " : " in line:
            k, v = line.split(" : ", 1)
            out.setdefault(k.strip(), v)
    return out


def sectors(v: str) -> int:
    return int(re.match(r"(\d+) sectors", v).group(1))


@pytest.mark.parametrize("fx,dev", MEMBERS, ids=[f"{f}/{d}" for f, d in MEMBERS])
def test_examine_equals_mdadm(fx: str, dev: str):
    img = fixture_image(fx, dev)
    want = fixture_text(fx, f"examine-{dev}.txt")
    sb = mdraid.examine(img)
    # mdadm's text, byte for byte.
    got = sb.examine_text(device=f"/dev/{dev}", homehost="mdlab", device_names=guest_names(fx))
    assert got == want
    # The typed attributes say what mdadm's text says.
    f = mdadm_fields(want)
    assert f["Magic"] == "a92b4efc"
    assert f["Version"].startswith(sb.version)
    assert f["Raid Level"] == f"raid{sb.level}"
    assert int(f["Raid Devices"]) == sb.raid_disks
    assert int(f["Events"].split(".")[-1]) == sb.events
    assert f["State"].split(",")[0].strip() == sb.state
    assert f["Checksum"].endswith("- correct") == sb.checksum_ok
    assert f["Creation Time"]
    if sb.version == "0.90":
        assert f["UUID"].split(" ")[0] == sb.array_uuid
        assert sb.data_offset == 0 and sb.name == ""
        assert int(f["Used Dev Size"].split(" ")[0]) * 2 == sb.data_size
        this = next(l for l in want.splitlines() if l.startswith("this"))
        assert int(this.split()[4]) == sb.dev_role
        assert sb.bitmap is None and sb.bad_blocks == []
        return
    assert f["Array UUID"] == sb.array_uuid
    assert f["Device UUID"] == sb.device_uuid
    assert f["Name"].split("  (")[0] == sb.name
    assert int(f["Feature Map"], 16) == sb.feature_map
    assert sectors(f["Avail Dev Size"]) == sb.data_size
    # mdadm prints no "Data Offset" line for 1.0 (data starts at sector 0).
    assert sectors(f.get("Data Offset", "0 sectors")) == sb.data_offset
    assert sectors(f["Super Offset"]) == sb.super_offset
    role = f["Device Role"]
    if role.startswith("Active device "):
        assert sb.role == "active" and sb.dev_role == int(role.split()[-1])
    else:
        assert sb.role == role.lower() and sb.dev_role is None
    if "Internal Bitmap" in f:
        assert sb.bitmap is not None
        bm = mdadm_fields(fixture_text(fx, f"bitmap-{dev}.txt"))
        assert int(bm["Events"]) == sb.bitmap.events
        assert int(bm["Events Cleared"]) == sb.bitmap.events_cleared
        assert int(bm["Sync Size"].split(" ")[0]) * 2 == sb.bitmap.sync_size
        m = re.match(r"(\d+) bits \(chunks\), (\d+) dirty", bm["Bitmap"])
        assert (sb.bitmap.chunks, sb.bitmap.dirty) == (int(m.group(1)), int(m.group(2)))
    else:
        assert sb.bitmap is None
    # "Bad Block Log : 512 entries available at offset 16 sectors - bad blocks present."
    present = f.get("Bad Block Log", "").endswith("bad blocks present.")
    assert bool(sb.bad_blocks) == present


@pytest.mark.parametrize("fx,dev", MEMBERS, ids=[f"{f}/{d}" for f, d in MEMBERS])
def test_examine_bitmap_equals_mdadm(fx: str, dev: str):
    img = fixture_image(fx, dev)
    want = fixture_text(fx, f"bitmap-{dev}.txt")
    sb = mdraid.examine(img)
    if sb.bitmap is None:
        # mdadm found no bitmap either: it complains (for 0.90, about the zeros it read).
        with pytest.raises(mdraid.FormatError, match="doesn't have bitmap"):
            mdraid.examine_bitmap(img, name=f"/dev/{dev}")
        assert "doesn't have bitmap" in want or "invalid bitmap magic" in want
        return
    assert mdraid.examine_bitmap(img, name=f"/dev/{dev}") == want


def test_bad_block_fixture_lists_its_entry():
    sb = mdraid.examine(fixture_image("r1-badblocks", "vda"))
    # badblocks-vda.txt: mdadm --examine-badblocks lists "4096 for 8 sectors".
    text = fixture_text("r1-badblocks", "badblocks-vda.txt")
    listed = [tuple(int(x) for x in re.findall(r"\d+", l)) for l in text.splitlines()[1:] if "for" in l]
    assert sb.bad_blocks == [(s, n) for s, n in listed] == [(4096, 8)]


@pytest.mark.parametrize("fx", fixture_names())
def test_fixture_reads_back_its_pattern(fx: str):
    paths = [fixture_image(fx, d) for d in fixture_members(fx)]
    with mdraid.Array.assemble(paths, readonly=True) as array:
        want = expected_array(fx, array.size)
        step = 1 << 20
        for off in range(0, array.size, step):
            n = min(step, array.size - off)
            assert array.read(off, n) == want[off : off + n], f"{fx}: bytes at {off}"
        # Unaligned reads go through the same path.
        assert array.read(4096 + 100, 1000) == want[4196:5196]
        buf = bytearray(777)
        assert array.readinto(3, memoryview(buf)) == 777
        assert buf == want[3:780]
        if fx == "r1-degraded-stale":
            assert [k[0] for k in array.kicked] == [str(paths[1])]
            assert "non-fresh" in array.kicked[0][1]
            assert array.degraded
        elif fx == "r1-missing":
            assert array.degraded and not array.kicked
        else:
            assert not array.kicked
        with pytest.raises(mdraid.ReadOnlyError):
            array.write(0, b"\0" * 512)
