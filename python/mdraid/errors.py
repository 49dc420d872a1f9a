"""The exceptions of the ``mdraid`` package.

Every error the bindings raise is an :class:`MdraidError`; the core's error enums map onto
these classes one to one (see ``python/src/error.rs``)::

    MdraidError
    ├── FormatError            on-disk metadata malformed, unsupported or inconsistent
    │   └── SuperblockError    no md superblock, or one that fails the kernel's checks
    ├── AssemblyError          md's assembly rules refuse the devices given
    ├── ReadOnlyError          a write to an array assembled read-only
    ├── RegistryError          registry misuse (carries ``errno`` as md answers)
    ├── DeviceError (OSError)  a member or array I/O error; ``errno`` is the OS error number
    ├── InvalidArgument (ValueError)   bad parameters: offsets, sizes, names, members
    └── ArrayClosedError (ValueError)  the array was stopped, abandoned or closed

``DeviceError`` is an :class:`OSError`, so ``except OSError`` catches it and ``e.errno`` is
``errno.EIO`` for a failed read or write (a Python device that raises or returns a short read
shows up as EIO, or as the ``errno`` of the :class:`OSError` it raised).
"""

from __future__ import annotations

__all__ = [
    "MdraidError",
    "FormatError",
    "SuperblockError",
    "AssemblyError",
    "ReadOnlyError",
    "RegistryError",
    "DeviceError",
    "InvalidArgument",
    "ArrayClosedError",
]


class MdraidError(Exception):
    """Base class of every error raised by mdraid."""


class FormatError(MdraidError):
    """On-disk metadata (superblock, bitmap, bad-block log) is malformed or unsupported."""


class SuperblockError(FormatError):
    """No md superblock was found, or it fails the kernel's load checks."""


class AssemblyError(MdraidError):
    """md's assembly rules refuse to start the array from the devices given."""


class ReadOnlyError(MdraidError):
    """The array was assembled read-only."""


class RegistryError(MdraidError):
    """Registry misuse; ``errno`` is what md would answer (EEXIST, EBUSY, ENODEV, ...)."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(message)
        self.errno = errno


class DeviceError(MdraidError, OSError):
    """An I/O error of a member device or of the array; ``errno`` carries the OS error number."""


class InvalidArgument(MdraidError, ValueError):
    """A parameter was refused: negative or out-of-range offsets, bad sizes, unknown members."""


class ArrayClosedError(MdraidError, ValueError):
    """The array was stopped, abandoned or closed; it takes no more calls."""
