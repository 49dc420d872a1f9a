"""Shared helpers: the md fixtures (arrays made by real mdadm 4.2 / Linux 6.1 md) and their
data pattern, and small devices written in Python.

Fixtures are read in place from ``$MDRAID_FIXTURES`` (default ``../shared/fixtures`` next to
the repository); member images are decompressed once into ``$MDRAID_FIXTURE_CACHE`` (default
``<repo>/target/fixture-cache``, the cache the Rust tests use) and never written: tests that
change an array work on copies in a temporary folder.
"""

from __future__ import annotations

import json
import lzma
import os
import shutil
import threading
from pathlib import Path

import pytest

import mdraid

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(os.environ.get("MDRAID_FIXTURES", REPO.parent / "shared" / "fixtures"))
CACHE = Path(os.environ.get("MDRAID_FIXTURE_CACHE", REPO / "target" / "fixture-cache"))

if not FIXTURES.is_dir():
    raise RuntimeError(
        f"no md fixtures at {FIXTURES}: set MDRAID_FIXTURES (the tests need them; CI has them)"
    )


def fixture_names() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if (p / "fixture.json").exists())


def fixture_members(fx: str) -> list[str]:
    return sorted(p.name[: -len(".img.xz")] for p in (FIXTURES / fx).glob("*.img.xz"))


def fixture_meta(fx: str) -> dict:
    return json.loads((FIXTURES / fx / "fixture.json").read_text())


def fixture_text(fx: str, name: str) -> str:
    return (FIXTURES / fx / name).read_text()


_lock = threading.Lock()


def fixture_image(fx: str, dev: str) -> Path:
    """The decompressed member image (shared, read-only by convention)."""
    out = CACHE / fx / f"{dev}.img"
    with _lock:
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f"{dev}.img.tmp.py.{os.getpid()}")
            with lzma.open(FIXTURES / fx / f"{dev}.img.xz") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            os.replace(tmp, out)
    return out


def fixture_copy(fx: str, dev: str, folder: Path) -> Path:
    """A private writable copy of a member image."""
    p = folder / f"{dev}.img"
    shutil.copyfile(fixture_image(fx, dev), p)
    return p


def pattern_sector(scenario: str, gen: int, s: int) -> bytes:
    line = f"mdraid-fixture {scenario} gen {gen} sector {s:09d}\n".encode()
    return (line * (512 // len(line) + 1))[:512]


def pattern(scenario: str, gen: int, nbytes: int) -> bytes:
    return b"".join(pattern_sector(scenario, gen, s) for s in range(nbytes // 512))


def expected_array(fx: str, size: int) -> bytearray:
    """What the fixture's array holds: its writes in order over zeros."""
    v = bytearray(size)
    for w in fixture_meta(fx)["writes"]:
        off, n = w["array_offset"], w["bytes"]
        v[off : off + n] = pattern(w["scenario"], w["gen"], n)
    return v


def guest_names(fx: str) -> dict[tuple[int, int], str]:
    """The QEMU guest's virtio disks: vda is 254:0, vdb 254:16, ..."""
    return {(254, 16 * i): f"/dev/vd{chr(ord('a') + i)}" for i in range(26)}


class RamDisk(mdraid.BlockDevice):
    """A Python device over a bytearray, with switches to fail requests (fault injection).

    ``fail_reads`` / ``fail_writes`` / ``fail_flushes``: raise on those requests;
    ``fail_next_reads``: that many next reads fail (a transient error); ``short_reads``:
    return one byte less; ``bad_ranges``: byte ranges whose reads fail. Counts every call.
    """

    def __init__(self, size: int, name: str | None = None) -> None:
        self.data = bytearray(size)
        self.name = name
        self.fail_reads = False
        self.fail_writes = False
        self.fail_flushes = False
        self.short_reads = False
        self.fail_next_reads = 0
        self.bad_ranges: list[tuple[int, int]] = []
        self.reads = self.writes = self.flushes = 0
        self.failed_reads = self.failed_writes = 0

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        if self.fail_next_reads > 0:
            self.fail_next_reads -= 1
            self.failed_reads += 1
            raise OSError(5, "injected transient read error")
        if self.fail_reads or any(s < offset + length and offset < e for s, e in self.bad_ranges):
            self.failed_reads += 1
            raise OSError(5, "injected read error")
        if self.short_reads:
            return bytes(self.data[offset : offset + length - 1])
        return bytes(self.data[offset : offset + length])

    def write(self, offset: int, data: bytes) -> None:
        self.writes += 1
        if self.fail_writes:
            self.failed_writes += 1
            raise RuntimeError("injected write error")
        self.data[offset : offset + len(data)] = data

    def flush(self) -> None:
        self.flushes += 1
        if self.fail_flushes:
            raise OSError(5, "injected flush error")

    def size(self) -> int:
        return len(self.data)


@pytest.fixture
def images(tmp_path: Path):
    """Makes sparse image files: ``images(n, size)`` -> list of paths."""

    def make(n: int, size: int = 32 << 20, prefix: str = "m") -> list[Path]:
        out = []
        for i in range(n):
            p = tmp_path / f"{prefix}{i}.img"
            with open(p, "wb") as f:
                f.truncate(size)
            out.append(p)
        return out

    return make
