"""Type stubs of the compiled module ``mdraid._native`` (re-exported by ``mdraid``)."""

from collections.abc import Callable, Iterable
from os import PathLike
from typing import Literal, final

__version__: str
__all__ = [
    "AddResult",
    "Array",
    "BitmapInfo",
    "Detail",
    "FaultyDevice",
    "FileDevice",
    "Handle",
    "LatencyDevice",
    "MemDevice",
    "MemberInfo",
    "Registry",
    "RegistryEntry",
    "Superblock",
    "SyncJob",
    "SyncResult",
    "__version__",
    "examine",
    "examine_bitmap",
]

_Buffer = bytes | bytearray | memoryview

_Member = str | PathLike[str] | MemDevice | FileDevice | FaultyDevice | LatencyDevice | object
_Progress = Callable[[int, int], object] | None

@final
class MemDevice:
    name: str
    def __new__(cls, size: int, name: str | None = None) -> MemDevice: ...
    @staticmethod
    def from_bytes(data: _Buffer, name: str | None = None) -> MemDevice: ...
    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: _Buffer) -> None: ...
    def flush(self) -> None: ...
    def size(self) -> int: ...
    def getvalue(self) -> bytes: ...

@final
class FileDevice:
    name: str
    def __new__(
        cls, path: str | PathLike[str], read_only: bool = False, name: str | None = None
    ) -> FileDevice: ...
    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: _Buffer) -> None: ...
    def flush(self) -> None: ...
    def size(self) -> int: ...

@final
class FaultyDevice:
    name: str
    def __new__(cls, inner: _Member, name: str | None = None) -> FaultyDevice: ...
    def fail(
        self,
        ops: Literal["read", "reads", "write", "writes", "flush", "flushes", "rw", "all"] = "rw",
        start: int | None = None,
        end: int | None = None,
        *,
        nth: int | None = None,
        after: int | None = None,
        times: int | None = None,
        errno: int = 5,
    ) -> int: ...
    def kill(self) -> int: ...
    def remove(self, rule: int) -> bool: ...
    def clear(self) -> None: ...
    def hits(self, rule: int) -> int: ...
    def stats(self) -> dict[str, int]: ...
    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: _Buffer) -> None: ...
    def flush(self) -> None: ...
    def size(self) -> int: ...

@final
class LatencyDevice:
    name: str
    def __new__(cls, inner: _Member, latency_us: int, name: str | None = None) -> LatencyDevice: ...
    def read(self, offset: int, length: int) -> bytes: ...
    def write(self, offset: int, data: _Buffer) -> None: ...
    def flush(self) -> None: ...
    def size(self) -> int: ...

@final
class BitmapInfo:
    chunksize: int
    events: int
    events_cleared: int
    sync_size: int
    daemon_sleep: int
    state: int
    chunks: int
    dirty: int

@final
class Superblock:
    version: str
    array_uuid: str
    device_uuid: str | None
    name: str
    level: int
    raid_disks: int
    events: int
    data_offset: int
    data_size: int
    super_offset: int
    state: str
    dev_role: int | None
    role: str
    feature_map: int
    checksum_ok: bool
    ctime: int
    bitmap: BitmapInfo | None
    bad_blocks: list[tuple[int, int]]
    def examine_text(
        self,
        device: str | None = None,
        homehost: str | None = None,
        device_names: dict[tuple[int, int], str] | None = None,
    ) -> str: ...

def examine(device: _Member) -> Superblock: ...
def examine_bitmap(device: _Member, name: str | None = None) -> str: ...

@final
class SyncResult:
    action: str
    mismatch_sectors: int
    sectors_copied: int
    sectors_done: int
    interrupted: bool

@final
class AddResult:
    outcome: Literal["spare", "rebuilt", "re-added"]
    sync: SyncResult | None

@final
class MemberInfo:
    name: str
    state: Literal["in_sync", "rebuilding", "spare", "faulty"]
    slot: int | None
    reads: int
    writes: int
    flushes: int
    read_bytes: int
    write_bytes: int
    errors: int
    corrected: int
    read_errors: int

@final
class Detail:
    version: str
    uuid: str
    name: str
    level: int
    raid_disks: int
    size: int
    component_sectors: int
    events: int
    state: Literal["clean", "active"]
    degraded: bool
    needs_resync: bool
    bitmap: bool
    active_devices: int
    working_devices: int
    failed_devices: int
    spare_devices: int
    members: list[MemberInfo]

@final
class SyncJob:
    action: str
    @property
    def done(self) -> bool: ...
    def progress(self) -> tuple[int, int]: ...
    def stop(self, freeze: bool = False) -> None: ...
    def wait(self, timeout: float | None = None) -> SyncResult: ...

@final
class Array:
    kicked: list[tuple[str, str]]
    unclean: bool
    @staticmethod
    def create(
        members: Iterable[_Member | None],
        level: int = 1,
        metadata: str = "1.2",
        bitmap: bool | Literal["internal", "none", "auto"] | None = None,
        *,
        raid_disks: int | None = None,
        name: str = "mdraid",
        homehost: str | None = None,
        assume_clean: bool = False,
        size_kib: int | None = None,
        bitmap_chunk: int | None = None,
        uuid: str | bytes | None = None,
        write_mostly: list[int] = ...,
        failfast: list[int] = ...,
    ) -> Array: ...
    @staticmethod
    def assemble(
        members: Iterable[_Member], run: bool = False, force: bool = False, readonly: bool = False
    ) -> Array: ...
    @property
    def size(self) -> int: ...
    @property
    def raid_disks(self) -> int: ...
    @property
    def events(self) -> int: ...
    @property
    def degraded(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def uuid(self) -> str: ...
    @property
    def members(self) -> list[MemberInfo]: ...
    def read(self, offset: int, length: int) -> bytes: ...
    def readinto(self, offset: int, buffer: _Buffer) -> int: ...
    def write(self, offset: int, data: _Buffer, fua: bool = False) -> int: ...
    def flush(self) -> None: ...
    def resync(self, progress: _Progress = None) -> SyncResult: ...
    def check(self, progress: _Progress = None) -> SyncResult: ...
    def repair(self, progress: _Progress = None) -> SyncResult: ...
    def start_sync(self, action: Literal["resync", "check", "repair", "recover", "recovery"]) -> SyncJob: ...
    def sync_stop(self, freeze: bool = False, progress: _Progress = None) -> SyncResult | None: ...
    @property
    def sync_frozen(self) -> bool: ...
    def tick(self) -> None: ...
    def set_speed_limits(self, min_kib: int, max_kib: int) -> None: ...
    def fail(self, member: str | int | object) -> None: ...
    def remove(self, member: str | int | object) -> None: ...
    def add(
        self,
        device: _Member,
        write_mostly: bool = False,
        failfast: bool = False,
        progress: _Progress = None,
    ) -> AddResult: ...
    def re_add(self, device: _Member, progress: _Progress = None) -> AddResult: ...
    def detail(self) -> Detail: ...
    def detail_text(self, device: str = "/dev/md0", homehost: str | None = None) -> str: ...
    def stop(self) -> None: ...
    def abandon(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Array: ...
    def __exit__(self, _exc_type: object = None, _exc: object = None, _tb: object = None) -> bool: ...

@final
class RegistryEntry:
    unit: int
    generation: int
    name: str
    state: Literal["clear", "inactive", "active"]
    members: int
    holders: int
    hold: Literal["none", "until_ioctl", "until_stop"]
    deleted: bool

@final
class Handle:
    unit: int
    generation: int

@final
class Registry:
    def __new__(cls, max_unit: int | None = None) -> Registry: ...
    def probe(self, unit: int) -> Handle: ...
    def get(self, unit: int) -> Handle: ...
    def lookup(self, name: str) -> Handle: ...
    def alloc_named(self, name: str) -> Handle: ...
    def alloc_unit(self, unit: int) -> Handle: ...
    def dup(self, handle: Handle) -> Handle: ...
    def put(self, handle: Handle) -> object | None: ...
    def attach(self, handle: Handle, array: Array) -> None: ...
    def array(self, handle: Handle) -> object | None: ...
    def stop(self, handle: Handle) -> None: ...
    def remove(self, unit: int) -> object | None: ...
    def info(self, unit: int) -> RegistryEntry | None: ...
    def entries(self) -> list[RegistryEntry]: ...
    def __len__(self) -> int: ...
