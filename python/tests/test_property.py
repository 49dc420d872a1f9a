"""Property test: random interleavings of writes, flushes, reads, member failures, re-adds and
power cuts of Python-defined devices with volatile write caches, held against a model.

- Before a power cut every read returns the last write (no wrong data, degraded or not).
- After a power cut (each disk keeps a random subset of its unflushed sectors, in order), the
  members assemble, resync, and every sector holds its last flushed value or a later write (no
  flushed or FUA write lost; unflushed writes may be torn at sector boundaries); the mirrors are
  identical after the resync (check finds 0 mismatches).

``MDRAID_HYPOTHESIS_EXAMPLES`` sets the number of cases (default 200).
"""

from __future__ import annotations

import os
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mdraid

DISK = 4 << 20
BLOCK = 4096
BLOCKS = 48  # the first 192 KiB of the array: plenty of overwrites
EXAMPLES = int(os.environ.get("MDRAID_HYPOTHESIS_EXAMPLES", "200"))


class VolatileDisk(mdraid.BlockDevice):
    """A disk with a write-back cache: writes land in the cache, flush makes them durable, a
    power cut keeps a random subset of the cached sectors (applied in the order written) and
    loses the rest. A dead disk fails every request."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.media = bytearray(DISK)
        self.cache: list[tuple[int, bytes]] = []
        self.dead = False

    def _check(self) -> None:
        if self.dead:
            raise OSError(5, f"{self.name} is dead")

    def read(self, offset: int, length: int) -> bytes:
        self._check()
        out = bytearray(self.media[offset : offset + length])
        end = offset + length
        for o, d in self.cache:
            lo, hi = max(o, offset), min(o + len(d), end)
            if lo < hi:
                out[lo - offset : hi - offset] = d[lo - o : hi - o]
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        self._check()
        self.cache.append((offset, bytes(data)))

    def flush(self) -> None:
        self._check()
        for o, d in self.cache:
            self.media[o : o + len(d)] = d
        self.cache.clear()

    def size(self) -> int:
        return DISK

    def power_cut(self, rng: random.Random) -> None:
        for o, d in self.cache:
            for s in range(0, len(d), 512):
                if rng.random() < 0.5:
                    self.media[o + s : o + s + 512] = d[s : s + 512]
        self.cache.clear()
        self.dead = False  # a power cycle brings a dead disk back (stale, to be kicked)


def block_data(block: int, tag: int) -> bytes:
    line = f"block {block:04d} tag {tag:08d} ".encode()
    return (line * (BLOCK // len(line) + 1))[:BLOCK]


ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.integers(0, BLOCKS - 1)),
        st.tuples(st.just("read"), st.integers(0, BLOCKS - 1)),
        st.tuples(st.just("flush")),
        st.tuples(st.just("fua"), st.integers(0, BLOCKS - 1)),
        st.tuples(st.just("kill"), st.integers(0, 1)),
        st.tuples(st.just("fail"), st.integers(0, 1)),
        st.tuples(st.just("readd"), st.integers(0, 1)),
        st.tuples(st.just("cut"), st.integers(0, 2**32)),
    ),
    max_size=40,
)


class Model:
    def __init__(self) -> None:
        self.flushed = [bytes(BLOCK)] * BLOCKS
        self.since: list[list[bytes]] = [[] for _ in range(BLOCKS)]
        self.tag = 0

    def current(self, b: int) -> bytes:
        return self.since[b][-1] if self.since[b] else self.flushed[b]

    def allowed_after_cut(self, b: int, got: bytes) -> bool:
        """Each sector holds its last flushed value or a later write's (an unflushed
        multi-sector write may be torn at sector boundaries, as on a real disk)."""
        versions = [self.flushed[b], *self.since[b]]
        return all(
            any(got[s : s + 512] == v[s : s + 512] for v in versions) for s in range(0, BLOCK, 512)
        )

    def all_flushed(self) -> None:
        for b in range(BLOCKS):
            self.flushed[b] = self.current(b)
            self.since[b] = []


def states(array: mdraid.Array) -> dict[str, str]:
    return {m.name: m.state for m in array.members}


def bring_back(array: mdraid.Array, disks: list[VolatileDisk]) -> None:
    """Kicked or removed disks come back (re-add or rebuild), so both mirrors run again."""
    st_ = states(array)
    for d in disks:
        if st_.get(d.name) == "faulty":
            array.remove(d.name)
        if st_.get(d.name) in (None, "faulty"):
            r = array.add(d)
            assert r.outcome in ("re-added", "rebuilt"), r
    if "spare" in states(array).values():
        # Assembly kept it as a spare: md's recovery check (run before any sync action)
        # rebuilds it into the empty slot.
        array.resync()
    assert sorted(states(array).values()) == ["in_sync", "in_sync"], states(array)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    metadata=st.sampled_from(["1.2", "1.1", "1.0", "0.90"]),
    bitmap=st.booleans(),
    script=ops,
)
def test_random_interleavings_hold_the_model(metadata: str, bitmap: bool, script: list) -> None:
    disks = [VolatileDisk("d0"), VolatileDisk("d1")]
    array = mdraid.Array.create(disks, metadata=metadata, bitmap=bitmap, assume_clean=True,
                                uuid="01234567:89abcdef:01234567:89abcdef")
    m = Model()
    for op in script:
        kind = op[0]
        if kind in ("write", "fua"):
            b = op[1]
            m.tag += 1
            data = block_data(b, m.tag)
            array.write(b * BLOCK, data, fua=(kind == "fua"))
            m.since[b].append(data)
            if kind == "fua":
                # Durable when it returns: a cut can no longer lose it.
                m.flushed[b] = data
                m.since[b] = []
        elif kind == "read":
            b = op[1]
            assert array.read(b * BLOCK, BLOCK) == m.current(b), f"block {b}"
        elif kind == "flush":
            array.flush()
            m.all_flushed()
        elif kind in ("kill", "fail"):
            d = disks[op[1]]
            other = disks[1 - op[1]]
            st_ = states(array)
            healthy = st_.get(other.name) == "in_sync" and not other.dead
            if not healthy or st_.get(d.name) != "in_sync" or d.dead:
                continue  # never take the last working mirror
            if kind == "kill":
                d.dead = True  # the array finds out at its next I/O to it
            else:
                array.fail(d.name)
        elif kind == "readd":
            d = disks[op[1]]
            if d.dead:
                d.dead = False
            if states(array).get(d.name) in (None, "faulty"):
                bring_back(array, disks)
        elif kind == "cut":
            array.abandon()
            rng = random.Random(op[1])
            for d in disks:
                d.power_cut(rng)
            array = mdraid.Array.assemble(disks, run=True)
            bring_back(array, disks)
            array.resync()
            for b in range(BLOCKS):
                got = array.read(b * BLOCK, BLOCK)
                assert m.allowed_after_cut(b, got), (
                    f"block {b} after a power cut: {got[:24]!r} is neither its last flushed "
                    f"value nor a later write"
                )
                m.flushed[b] = got
                m.since[b] = []
            assert array.check().mismatch_sectors == 0
            array.flush()
        # Reads always see the last write, whatever happened to the members.
        for b in range(0, BLOCKS, 7):
            assert array.read(b * BLOCK, BLOCK) == m.current(b), f"block {b} after {op}"
    array.flush()
    m.all_flushed()
    array.stop()
    for d in disks:
        d.dead = False  # a stale one is kicked as non-fresh
    with mdraid.Array.assemble(disks, run=True) as again:
        for b in range(BLOCKS):
            assert again.read(b * BLOCK, BLOCK) == m.current(b)
