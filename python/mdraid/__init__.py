"""mdraid: Linux md-compatible RAID1 for Python test harnesses.

Create and assemble RAID1 arrays over image files, in-memory devices or devices written in
Python, drive I/O, inject faults, run resync/check/repair, and read md's on-disk metadata the
way ``mdadm --examine`` prints it. The RAID logic is the ``mdraid`` Rust core (the same code
that runs in the CLI and the kernel module); this package converts and forwards.

Quick tour::

    import mdraid
    a, b = mdraid.MemDevice(32 << 20), mdraid.MemDevice(32 << 20)
    with mdraid.Array.create([a, b], assume_clean=True) as array:
        array.write(0, b"hello" * 100)
        assert array.read(0, 5) == b"hello"

Member devices are paths (opened as :class:`FileDevice`), the ready devices
:class:`MemDevice`, :class:`FileDevice`, :class:`FaultyDevice`, :class:`LatencyDevice`, or
any subclass of :class:`BlockDevice` (the fault-injection hook: a disk written in Python).

The GIL is released while the core works (I/O, sync actions); a Python device's methods take
it back for each call.
"""

from __future__ import annotations

import abc

from .errors import (
    ArrayClosedError,
    AssemblyError,
    DeviceError,
    FormatError,
    InvalidArgument,
    MdraidError,
    ReadOnlyError,
    RegistryError,
    SuperblockError,
)
from ._native import (
    AddResult,
    Array,
    BitmapInfo,
    Detail,
    FaultyDevice,
    FileDevice,
    Handle,
    LatencyDevice,
    MemberInfo,
    MemDevice,
    Registry,
    RegistryEntry,
    Superblock,
    SyncJob,
    SyncResult,
    __version__,
    examine,
    examine_bitmap,
)

__all__ = [
    "AddResult",
    "Array",
    "ArrayClosedError",
    "AssemblyError",
    "BitmapInfo",
    "BlockDevice",
    "Detail",
    "DeviceError",
    "FaultyDevice",
    "FileDevice",
    "FormatError",
    "Handle",
    "InvalidArgument",
    "LatencyDevice",
    "MdraidError",
    "MemberInfo",
    "MemDevice",
    "ReadOnlyError",
    "Registry",
    "RegistryEntry",
    "RegistryError",
    "Superblock",
    "SuperblockError",
    "SyncJob",
    "SyncResult",
    "__version__",
    "examine",
    "examine_bitmap",
]


class BlockDevice(abc.ABC):
    """A member device written in Python: subclass it and implement the four methods.

    The array calls them from whatever thread drives it, holding the GIL for each call:

    - ``read(offset, length)`` returns exactly ``length`` bytes (bytes, bytearray or
      memoryview) read at byte ``offset``;
    - ``write(offset, data)`` stores ``data`` (bytes) at ``offset``; returns None or
      ``len(data)``;
    - ``flush()`` makes completed writes durable;
    - ``size()`` is the size in bytes (read once, when the device joins an array).

    Offsets and lengths are multiples of 512 and within ``size()``. Raising any exception, or
    returning fewer bytes, fails that request: the array sees an I/O error (``errno`` EIO, or
    the ``errno`` of an :class:`OSError` raised) and handles it as md does (reads retried on
    another mirror and the bad range rewritten, failed writes recorded as bad blocks or the
    member failed). The exception itself is not propagated. ``name`` (optional) names the member
    in reports and in :meth:`Array.fail`.
    """

    name: str | None = None

    @abc.abstractmethod
    def read(self, offset: int, length: int) -> bytes:
        """``length`` bytes at byte ``offset``."""

    @abc.abstractmethod
    def write(self, offset: int, data: bytes) -> None:
        """Stores ``data`` at byte ``offset``."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Makes completed writes durable."""

    @abc.abstractmethod
    def size(self) -> int:
        """Size in bytes."""
